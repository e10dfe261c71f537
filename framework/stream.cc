#include "framework/stream.h"

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"

namespace twist {

absl::Status EndOfStream() {
  return absl::OutOfRangeError("end of stream: the peer closed the connection");
}

Stream::~Stream() {
  if (reader_) reader_.destroy();
  if (drainer_) drainer_.destroy();
}

Stream::Read Stream::read() { return start(Want::kSome, "", 0); }

void Stream::dropConsumed() {
  if (consumed_ == 0) return;
  in_.erase(0, consumed_);
  consumed_ = 0;
  scanned_ = 0;
}

absl::StatusOr<absl::string_view> Stream::takeBufferedView() {
  if (!in_.empty()) {
    consumed_ = in_.size();
    setReading(true);
    return absl::string_view(in_);
  }
  if (input_ended_) return readEnd();
  return absl::FailedPreconditionError("nothing to read");
}

Stream::Read Stream::readLine(absl::string_view delimiter, size_t max_length) {
  return start(Want::kLine, delimiter, max_length);
}

Stream::Read Stream::readExactly(size_t n) { return start(Want::kExactly, "", n); }


Stream::Read Stream::start(Want want, absl::string_view delimiter, size_t n) {
  dropConsumed();
  if (want_ != Want::kNone) {
    return Read(this, absl::FailedPreconditionError("another read is pending on this stream"));
  }
  want_ = want;
  if (want == Want::kLine && delimiter != delimiter_) {
    delimiter_ = std::string(delimiter);
    scanned_ = 0;
  }
  n_ = n;
  return Read(this, std::nullopt);
}

bool Stream::readReady() {
  if (error_.has_value()) return true;
  switch (want_) {
    case Want::kNone:
      return false;
    case Want::kSome:
      if (!in_.empty()) return true;
      break;
    case Want::kView:
      if (has_direct_ || !in_.empty()) return true;
      break;
    case Want::kExactly:
      if (in_.size() >= n_) return true;
      break;
    case Want::kLine: {
      if (line_found_) return true;
      // Resume the search where the last one stopped.
      size_t from = scanned_ >= delimiter_.size() ? scanned_ - delimiter_.size() + 1 : 0;
      size_t pos = in_.find(delimiter_, from);
      if (pos != std::string::npos && pos <= n_) {
        line_end_ = pos;
        line_found_ = true;
        return true;
      }
      scanned_ = in_.size();
      if (pos != std::string::npos || in_.size() > n_ + delimiter_.size()) {
        error_ = absl::ResourceExhaustedError(absl::StrCat("line longer than ", n_, " bytes"));
        loseConnection();
        return true;
      }
      break;
    }
  }
  return input_ended_;
}

absl::StatusOr<std::string> Stream::take() {
  const Want want = std::exchange(want_, Want::kNone);
  if (error_.has_value()) {
    absl::Status e = std::move(*error_);
    error_.reset();
    return e;
  }
  std::string out;
  bool got = false;
  switch (want) {
    case Want::kNone:
    case Want::kView:
      break;
    case Want::kSome:
      if (!in_.empty()) {
        out.swap(in_);
        scanned_ = 0;
        got = true;
      }
      break;
    case Want::kExactly:
      if (in_.size() >= n_) {
        out.assign(in_, 0, n_);
        in_.erase(0, n_);
        scanned_ = 0;
        got = true;
      }
      break;
    case Want::kLine:
      if (line_found_) {
        out.assign(in_, 0, line_end_);
        in_.erase(0, line_end_ + delimiter_.size());
        scanned_ = 0;
        line_found_ = false;
        got = true;
      }
      break;
  }
  setReading(in_.size() < max_buffered_);
  if (!got) {
    if (input_ended_) return readEnd();
    return absl::FailedPreconditionError("nothing to read");
  }
  return out;
}

void Stream::resumeReader() {
  if (reader_ && readReady()) std::exchange(reader_, nullptr).resume();
}

void Stream::receivedSlow(absl::string_view data) {
  if (input_ended_) return;
  dropConsumed();
  in_.append(data.data(), data.size());
  if (in_.size() >= max_buffered_) setReading(false);
  resumeReader();
}

void Stream::inputEnded() {
  if (input_ended_) return;
  input_ended_ = true;
  resumeReader();
}

void Stream::lost(const absl::Status& reason) {
  transport_ = nullptr;
  loss_ = reason.ok() ? EndOfStream() : reason;
  input_ended_ = true;
  // Either may end the coroutine, and with it the last owner of this
  // stream: keep what is needed on the stack.
  std::coroutine_handle<> drainer = std::exchange(drainer_, nullptr);
  if (reader_) std::exchange(reader_, nullptr).resume();
  if (drainer) drainer.resume();
}

void Stream::writePaused(bool paused) {
  write_paused_ = paused;
  if (!paused && drainer_) std::exchange(drainer_, nullptr).resume();
}

void Stream::setReading(bool on) {
  if (transport_ == nullptr || on != reading_paused_) return;
  reading_paused_ = !on;
  if (on) {
    transport_->resumeProducing();
  } else {
    transport_->pauseProducing();
  }
}

void Stream::loseConnection() {
  if (transport_ != nullptr) transport_->loseConnection();
}

void Stream::abortConnection() {
  if (transport_ != nullptr) transport_->abortConnection();
}

StreamProtocol::~StreamProtocol() { stream_->attach(nullptr); }

void StreamProtocol::connectionMade() {
  stream_->attach(transport());
  transport()->registerProducer(this, /*streaming=*/true).IgnoreError();
  std::weak_ptr<Stream> weak = stream_;
  handler_(stream_).addBoth([weak](absl::StatusOr<Unit> r) {
    if (!r.ok() && !IsEndOfStream(r.status())) {
      fprintf(stderr, "twist: stream handler failed: %s\n", r.status().ToString().c_str());
    }
    if (std::shared_ptr<Stream> s = weak.lock()) s->loseConnection();
  });
}

void StreamProtocol::dataReceived(absl::string_view data) { stream_->received(data); }

void StreamProtocol::connectionLost(const absl::Status& reason) {
  std::shared_ptr<Stream> keep = stream_;
  keep->lost(reason);
}

namespace {
// What a connectStream() caller holds (through an aliasing shared_ptr to
// the Stream): the last copy gone, it fires the handler's Deferred, and
// StreamProtocol closes the connection.
struct ClientStream {
  std::shared_ptr<Stream> stream;
  Deferred<Unit> released;
  ~ClientStream() { released.callback(Unit{}).IgnoreError(); }
};
}  // namespace

Deferred<std::shared_ptr<Stream>> connectStream(ClientEndpoint& endpoint, size_t max_buffered) {
  // Filled in connectionMade, handed over when the connect Deferred fires
  // (right after it).
  auto made = std::make_shared<std::shared_ptr<ClientStream>>();
  auto protocol = std::make_unique<StreamProtocol>(
      [made](std::shared_ptr<Stream> stream) {
        *made = std::make_shared<ClientStream>();
        (*made)->stream = std::move(stream);
        return (*made)->released;
      },
      max_buffered);
  return connectProtocol(endpoint, std::move(protocol))
      .then([made](StreamProtocol*) -> std::shared_ptr<Stream> {
        std::shared_ptr<ClientStream> held = std::move(*made);
        Stream* stream = held->stream.get();
        return std::shared_ptr<Stream>(std::move(held), stream);
      });
}

}  // namespace twist
