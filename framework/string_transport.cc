#include "framework/string_transport.h"

#include <utility>

#include "framework/errors.h"

namespace twist {

StringTransport::StringTransport()
    : StringTransport(*Address::Parse("127.0.0.1", 8000),
                      *Address::Parse("127.0.0.1", 54321)) {}

StringTransport::StringTransport(const Address& host, const Address& peer)
    : host_(host), peer_(peer) {}

void StringTransport::connect(Protocol* protocol) {
  protocol_ = protocol;
  protocol->makeConnection(this);
}

void StringTransport::receive(absl::string_view data) {
  // A real transport stops reading once asked to close.
  if (protocol_ == nullptr || disconnecting_) return;
  protocol_->dataReceived(data);
}

void StringTransport::disconnect() {
  disconnect(aborted_ ? ConnectionAborted() : ConnectionDone());
}

void StringTransport::disconnect(const absl::Status& reason) {
  if (disconnected_) return;
  disconnected_ = true;
  disconnecting_ = true;
  if (producer_ != nullptr) {
    Producer* p = std::exchange(producer_, nullptr);
    unlinkProducer(p);
    p->stopProducing();
  }
  if (protocol_ != nullptr) protocol_->connectionLost(reason);
}

std::string StringTransport::take() { return std::exchange(written_, std::string()); }

void StringTransport::write(absl::string_view data) {
  if (writable()) written_.append(data.data(), data.size());
}

void StringTransport::writeSequence(absl::Span<const absl::string_view> data) {
  for (absl::string_view piece : data) write(piece);
}

void StringTransport::loseConnection() { disconnecting_ = true; }

void StringTransport::abortConnection() {
  disconnecting_ = true;
  aborted_ = true;
}

void StringTransport::loseWriteConnection() { write_lost_ = true; }

absl::Status StringTransport::setTcpNoDelay(bool enabled) {
  no_delay_ = enabled;
  return absl::OkStatus();
}

absl::Status StringTransport::setTcpKeepAlive(bool enabled) {
  keep_alive_ = enabled;
  return absl::OkStatus();
}

void StringTransport::pauseProducing() {
  if (producer_state_ != ProducerState::kStopped) producer_state_ = ProducerState::kPaused;
}

void StringTransport::resumeProducing() {
  if (producer_state_ != ProducerState::kPaused) return;
  producer_state_ = ProducerState::kProducing;
  // Like a TCP transport: a protocol holding input back gets to deliver it.
  if (auto* b = dynamic_cast<BufferingProtocol*>(protocol_);
      b != nullptr && !disconnected_) {
    b->readingResumed();
  }
}

void StringTransport::stopProducing() {
  producer_state_ = ProducerState::kStopped;
  loseConnection();
}

absl::Status StringTransport::registerProducer(Producer* producer, bool streaming) {
  if (producer_ != nullptr) {
    return absl::FailedPreconditionError(
        "a producer is already registered with this transport");
  }
  if (disconnected_) return absl::FailedPreconditionError("the connection is closed");
  producer_ = producer;
  linkProducer(producer);
  streaming_ = streaming;
  return absl::OkStatus();
}

void StringTransport::unregisterProducer() {
  unlinkProducer(producer_);
  producer_ = nullptr;
}

void StringTransport::producerGone(Producer* p) {
  if (producer_ == p) producer_ = nullptr;
}

StringTransport::~StringTransport() { unregisterProducer(); }

void StringTransport::setWriteBufferWaterMarks(size_t low, size_t high) {
  if (high < low) high = low;
  low_water_ = low;
  high_water_ = high;
}

}  // namespace twist
