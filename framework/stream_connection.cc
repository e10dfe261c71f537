#include "framework/stream_connection.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "framework/errors.h"
#include "framework/connection_host.h"
#include "framework/tcp_connector.h"

namespace twist {
namespace {
// At most this many iovecs per sendmsg(); IOV_MAX is 1024, but a few dozen
// already fill any socket buffer.
constexpr int kMaxIov = 64;
}  // namespace

StreamConnection::StreamConnection(ConnectionHost* reactor, int fd,
                                   std::unique_ptr<Protocol> protocol)
    : reactor_(reactor), protocol_(std::move(protocol)), fd_(fd) {}

absl::Status StreamConnection::checkOpen() const {
  if (fd_ < 0) return absl::FailedPreconditionError("the connection is closed");
  return absl::OkStatus();
}

StreamConnection::~StreamConnection() {
  dropProducer();
  if (fd_ >= 0) {
    if (registered_) reactor_->poller().remove(fd_);
    ::close(fd_);
  }
}

absl::Status StreamConnection::start() {
  absl::Status s = reactor_->poller().add(fd_, kReadable, this);
  if (!s.ok()) return s;
  registered_ = true;
  interest_ = kReadable;
  protocol_->makeConnection(this);
  return absl::OkStatus();
}

ConnectionHandle StreamConnection::makeHandle(Transport* as) {
  return reactor_->connectionHandle(this, as);
}

// ---- Writing ---------------------------------------------------------------

ssize_t StreamConnection::sendNow(const iovec* iov, int n) {
  msghdr msg = {};
  msg.msg_iov = const_cast<iovec*>(iov);
  msg.msg_iovlen = n;
  ssize_t w;
  do {
    // MSG_NOSIGNAL: a peer that went away yields EPIPE, never SIGPIPE.
    w = n == 1 ? ::send(fd_, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL)
               : ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
  } while (w < 0 && errno == EINTR);
  return w;
}

void StreamConnection::loseConnectionFromApplication() {
  Transport* top = this;
  Protocol* p = protocol_.get();
  while (p != nullptr) {
    Protocol* inner = p->wrappedProtocol();
    if (inner != nullptr && inner->transport() != nullptr) top = inner->transport();
    p = inner;
  }
  top->loseConnection();
}

void StreamConnection::write(absl::string_view data) {
  writeSequence(absl::MakeConstSpan(&data, 1));
}

void StreamConnection::writeSequence(absl::Span<const absl::string_view> data) {
  // After loseConnection() writes still go out before the close (Twisted);
  // abortConnection() and loseWriteConnection() close the write side.
  if (state_ == State::kClosed || write_side_ != WriteSide::kOpen) return;
  if (producer_mode_ == ProducerMode::kPullAsked) {
    producer_mode_ = ProducerMode::kPullWrote;  // ask again once this drains
    updateInterest();
  }
  size_t sent = 0;
  if (out_.empty()) {
    iovec iov[kMaxIov];
    int n = 0;
    size_t total = 0;
    for (absl::string_view piece : data) {
      if (piece.empty()) continue;
      if (n == kMaxIov) break;
      iov[n].iov_base = const_cast<char*>(piece.data());
      iov[n].iov_len = piece.size();
      total += piece.size();
      ++n;
    }
    if (n == 0) return;
    ssize_t w = sendNow(iov, n);
    if (w < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        failWrite(errno);
        return;
      }
      w = 0;
    }
    sent = static_cast<size_t>(w);
    if (sent == total && n == static_cast<int>(data.size())) return;
  }
  queue(data, sent);
  afterQueue();
}

void StreamConnection::queue(absl::Span<const absl::string_view> pieces,
                          size_t skip) {
  for (absl::string_view piece : pieces) {
    if (skip >= piece.size()) {
      skip -= piece.size();
      continue;
    }
    out_.append(piece.substr(skip));
    skip = 0;
  }
}

void StreamConnection::afterQueue() {
  if (out_.empty()) return;
  updateInterest();
  if (producer_mode_ == ProducerMode::kPushing && out_.size() > high_water_) {
    producer_mode_ = ProducerMode::kPushPaused;
    producer_->pauseProducing();
  }
}

void StreamConnection::doWrite() {
  if (!out_.empty()) {
    iovec iov[kMaxIov];
    int n = out_.peek(iov, kMaxIov);
    ssize_t w = sendNow(iov, n);
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      closeNow(ConnectionLost(errno));
      return;
    }
    out_.consume(static_cast<size_t>(w));
  }
  afterDrain();
}

void StreamConnection::afterDrain() {
  if (out_.empty()) {
    if (state_ == State::kDisconnecting) {
      closeNow(ConnectionDone());
      return;
    }
    if (write_side_ == WriteSide::kShutdownPending) {
      ::shutdown(fd_, SHUT_WR);
      write_side_ = WriteSide::kShut;
      if (read_eof_) {
        closeNow(ConnectionDone());
        return;
      }
    }
  }
  updateInterest();
  if (producer_mode_ == ProducerMode::kPushPaused) {
    if (out_.size() <= low_water_) {
      producer_mode_ = ProducerMode::kPushing;
      producer_->resumeProducing();
    }
  } else if (producer_mode_ == ProducerMode::kPullWrote && out_.empty()) {
    producer_mode_ = ProducerMode::kPullAsked;
    updateInterest();
    producer_->resumeProducing();
  }
}

void StreamConnection::failWrite(int error_number) {
  out_.clear();
  write_side_ = WriteSide::kShut;
  updateInterest();
  scheduleClose(ConnectionLost(error_number));
}

// ---- Reading ---------------------------------------------------------------

void StreamConnection::doRead() {
  char* buf = reactor_->readBuffer();
  ssize_t n;
  do {
    // recv, not read: the socket call skips the file layer's work on every
    // read (position lock, permission hook, fsnotify), as nginx does.
    n = ::recv(fd_, buf, kReadBufferSize, 0);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    protocol_->dataReceived(absl::string_view(buf, static_cast<size_t>(n)));
    return;
  }
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    closeNow(ConnectionLost(errno));
    return;
  }
  // End of input: the peer shut down its write side.
  read_eof_ = true;
  // Looked up here, not kept: once per connection at most.
  auto* half_closeable = dynamic_cast<HalfCloseableProtocol*>(protocol_.get());
  if (half_closeable == nullptr) {
    loseConnection();  // flush what is queued, then close cleanly
    return;
  }
  updateInterest();
  half_closeable->readConnectionLost();
  if (state_ != State::kClosed && write_side_ == WriteSide::kShut) closeNow(ConnectionDone());
}

void StreamConnection::handleEvents(uint32_t ready) {
  if (state_ == State::kClosed) return;
  if (interest_ & kReadable) {
    if (ready & (kReadable | kErrorOrHangup)) {
      doRead();
      if (state_ == State::kClosed) return;
    }
  } else if (interest_ == 0) {
    // Watched for hang-ups only (half-closed): the peer reset us. (Anything
    // else is a stale event from before the interest dropped to nothing.)
    if (ready & kErrorOrHangup) {
      int error = 0;
      socklen_t len = sizeof(error);
      getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &len);
      closeNow(ConnectionLost(error != 0 ? error : ECONNRESET));
    }
    return;
  }
  if ((interest_ & kWritable) && (ready & (kWritable | kErrorOrHangup))) {
    doWrite();
  }
}

// ---- Flow control ----------------------------------------------------------

void StreamConnection::updateInterest() {
  if (state_ == State::kClosed) return;
  uint32_t want = 0;
  if (state_ == State::kConnected && !reading_paused_ && !read_eof_) {
    want |= kReadable;
  }
  const bool pull_waiting = producer_mode_ == ProducerMode::kPullWrote &&
                            state_ == State::kConnected && write_side_ == WriteSide::kOpen;
  if (write_side_ != WriteSide::kShut && (!out_.empty() || pull_waiting)) want |= kWritable;
  // Half-closed by the peer and waiting for the protocol: still watched, for
  // nothing, since the pollers report errors and hang-ups whatever the
  // interest: a reset is heard. (Only a reset hangs it up: our own FIN
  // after the peer's closes the connection anyway.)
  const bool watch_hangup = read_eof_ && write_side_ != WriteSide::kShut;
  if (want == interest_ && (want != 0 || registered_ == watch_hangup)) return;
  absl::Status s;
  if (want == 0 && !watch_hangup) {
    // Unwatched rather than watched for nothing: a hung-up socket would
    // otherwise wake a level-triggered poller forever.
    reactor_->poller().remove(fd_);
    registered_ = false;
  } else if (!registered_) {
    s = reactor_->poller().add(fd_, want, this);
    registered_ = s.ok();
  } else {
    s = reactor_->poller().modify(fd_, want, this);
  }
  if (!s.ok()) {
    scheduleClose(ConnectionLost(s.message()));
    return;
  }
  interest_ = want;
}

void StreamConnection::pauseProducing() {
  reading_paused_ = true;
  updateInterest();
}

void StreamConnection::resumeProducing() {
  const bool was_paused = std::exchange(reading_paused_, false);
  updateInterest();
  // Input the protocol held back while we were paused is due now; it may
  // not get more from the peer to wake it.
  if (was_paused && state_ == State::kConnected) {
    // Looked up here, not kept: once per pause at most.
    if (auto* b = dynamic_cast<BufferingProtocol*>(protocol_.get())) b->readingResumed();
  }
}

void StreamConnection::stopProducing() { loseConnection(); }

absl::Status StreamConnection::wrapProtocol(ProtocolWrap wrap) {
  if (state_ != State::kConnected) {
    return absl::FailedPreconditionError("the connection is closing");
  }
  // The old protocol may be in the middle of a callback of ours: it lives
  // on inside the new one, so nothing is destroyed under it.
  Factory* factory = protocol_->factory();
  protocol_ = wrap(std::move(protocol_));
  if (protocol_->factory() == nullptr) protocol_->setFactory(factory);
  protocol_->makeConnection(this);
  return absl::OkStatus();
}

absl::Status StreamConnection::registerProducer(Producer* producer,
                                             bool streaming) {
  if (producer_ != nullptr) {
    return absl::FailedPreconditionError(
        "a producer is already registered with this transport");
  }
  if (state_ == State::kClosed) {
    return absl::FailedPreconditionError("the connection is closed");
  }
  producer_ = producer;
  linkProducer(producer);
  producer_mode_ = streaming ? ProducerMode::kPushing : ProducerMode::kPullWrote;
  if (streaming && out_.size() > high_water_) {
    producer_mode_ = ProducerMode::kPushPaused;
    producer->pauseProducing();
  }
  updateInterest();  // a pull producer is asked for data once writable
  return absl::OkStatus();
}

void StreamConnection::unregisterProducer() {
  dropProducer();
  updateInterest();
}

void StreamConnection::dropProducer() {
  unlinkProducer(producer_);
  producer_ = nullptr;
  producer_mode_ = ProducerMode::kNone;
}

void StreamConnection::producerGone(Producer* p) {
  if (producer_ != p) return;
  producer_ = nullptr;  // already unlinked by the producer
  producer_mode_ = ProducerMode::kNone;
  updateInterest();
}

void StreamConnection::setWriteBufferWaterMarks(size_t low, size_t high) {
  // Kept in 32 bits (idle connections stay small): marks up to 4 GiB.
  constexpr size_t kMax = UINT32_MAX;
  low = std::min(low, kMax);
  high = std::min(std::max(high, low), kMax);
  low_water_ = static_cast<uint32_t>(low);
  high_water_ = static_cast<uint32_t>(high);
}

// ---- Closing ---------------------------------------------------------------

void StreamConnection::loseConnection() {
  if (state_ != State::kConnected) return;
  state_ = State::kDisconnecting;
  if (out_.empty()) {
    scheduleClose(ConnectionDone());
  } else {
    updateInterest();  // stop reading; keep flushing
  }
}

void StreamConnection::abortConnection() {
  if (state_ == State::kClosed) return;
  state_ = State::kDisconnecting;
  out_.clear();
  write_side_ = WriteSide::kShut;
  updateInterest();
  scheduleClose(ConnectionAborted());
}

void StreamConnection::loseWriteConnection() {
  if (state_ == State::kClosed || write_side_ != WriteSide::kOpen) return;
  write_side_ = WriteSide::kShutdownPending;
  if (out_.empty()) {
    ::shutdown(fd_, SHUT_WR);
    write_side_ = WriteSide::kShut;
    if (read_eof_) scheduleClose(ConnectionDone());
  }
  updateInterest();
}

void StreamConnection::scheduleClose(absl::Status reason) {
  if (state_ == State::kClosed) return;
  if (close_pending_) {
    // An abort, or a failure after a clean close was asked, says more.
    if (IsConnectionAborted(reason) || close_reason_.ok()) close_reason_ = std::move(reason);
    return;
  }
  close_pending_ = true;
  close_reason_ = std::move(reason);
  reactor_->enqueueClose(this);
}

void StreamConnection::closeNow(absl::Status reason) {
  if (state_ == State::kClosed) return;
  if (state_ == State::kDisconnecting && IsConnectionDone(reason) && !out_.empty() &&
      write_side_ != WriteSide::kShut) {
    // loseConnection() found nothing queued, but the protocol wrote after it:
    // flush that first; afterDrain() closes.
    close_pending_ = false;
    updateInterest();
    return;
  }
  state_ = State::kClosed;
  if (registered_) {
    reactor_->poller().remove(fd_);
    registered_ = false;
  }
  if (IsConnectionDone(reason)) {
    // Input left unread turns close() into a reset, which can destroy the
    // last bytes we sent before the peer reads them. Drain a bounded amount.
    char* buf = reactor_->readBuffer();
    for (int i = 0; i < 16; ++i) {
      ssize_t n = ::read(fd_, buf, kReadBufferSize);
      if (n <= 0 && !(n < 0 && errno == EINTR)) break;
    }
  }
  ::close(fd_);
  fd_ = -1;
  out_.clear();
  // Transports we produce for (a proxy) call nothing more on a closed
  // connection: they lose their producer now, not when we are destroyed.
  unlinkConsumers(this);
  Producer* p = producer_;
  dropProducer();
  if (p != nullptr && p != this) p->stopProducing();
  protocol_->connectionLost(reason);
  if (Connector* c = std::exchange(connector_, nullptr)) c->connectionLost(reason);
  reactor_->retire(this);
}

}  // namespace twist
