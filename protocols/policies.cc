#include "protocols/policies.h"

#include <utility>

namespace twist {
namespace {
absl::Status NotTcp() {
  return absl::FailedPreconditionError("the wrapped transport is not a TCP connection");
}
}  // namespace

absl::Duration TimeoutMixin::setTimeout(absl::Duration period) {
  absl::Duration previous = period_;
  period_ = period;
  if (call_.active()) call_.cancel().IgnoreError();
  if (period != absl::InfiniteDuration()) {
    call_ = reactor_->callLater(period, [this] { timeoutConnection(); });
  }
  return previous;
}

void TimeoutMixin::resetTimeout() {
  if (call_.active()) call_.reset(period_).IgnoreError();
}

void TimeoutMixin::timeoutConnection() {
  // A cross-cast: the protocol that mixes this in.
  if (auto* p = dynamic_cast<Protocol*>(this); p && p->transport()) {
    p->transport()->loseConnection();
  }
}

ProtocolWrapper::ProtocolWrapper(std::unique_ptr<Protocol> wrapped)
    : wrapped_(std::move(wrapped)),
      half_closeable_(dynamic_cast<HalfCloseableProtocol*>(wrapped_.get())),
      buffering_(dynamic_cast<BufferingProtocol*>(wrapped_.get())) {}

std::unique_ptr<Protocol> ProtocolWrapper::buildWrapped(Factory* factory,
                                                        const Address& addr) {
  std::unique_ptr<Protocol> p = factory->buildProtocol(addr);
  // The wrapped protocol's factory() is its own, not the wrapping one.
  if (p != nullptr && p->factory() == nullptr) p->setFactory(factory);
  return p;
}

ProtocolWrapper::~ProtocolWrapper() = default;

void ProtocolWrapper::connectionMade() { wrapped_->makeConnection(this); }

void ProtocolWrapper::dataReceived(absl::string_view data) {
  wrapped_->dataReceived(data);
}

void ProtocolWrapper::readConnectionLost() {
  if (half_closeable_ != nullptr) {
    half_closeable_->readConnectionLost();
  } else {
    transport()->loseConnection();  // what the transport does for others
  }
}

void ProtocolWrapper::readingResumed() {
  if (buffering_ != nullptr) buffering_->readingResumed();
}

void ProtocolWrapper::connectionLost(const absl::Status& reason) {
  wrapped_->connectionLost(reason);
}

void ProtocolWrapper::write(absl::string_view data) { transport()->write(data); }
void ProtocolWrapper::writeSequence(absl::Span<const absl::string_view> data) {
  transport()->writeSequence(data);
}
void ProtocolWrapper::loseConnection() { transport()->loseConnection(); }
void ProtocolWrapper::abortConnection() { transport()->abortConnection(); }
void ProtocolWrapper::loseWriteConnection() { transport()->loseWriteConnection(); }
bool ProtocolWrapper::disconnecting() const { return transport()->disconnecting(); }
Address ProtocolWrapper::getPeer() const { return transport()->getPeer(); }
Address ProtocolWrapper::getHost() const { return transport()->getHost(); }
absl::Status ProtocolWrapper::setTcpNoDelay(bool enabled) {
  auto* tcp = dynamic_cast<TcpTransport*>(transport());
  return tcp != nullptr ? tcp->setTcpNoDelay(enabled) : NotTcp();
}
absl::Status ProtocolWrapper::setTcpKeepAlive(bool enabled) {
  auto* tcp = dynamic_cast<TcpTransport*>(transport());
  return tcp != nullptr ? tcp->setTcpKeepAlive(enabled) : NotTcp();
}
absl::StatusOr<PeerCredentials> ProtocolWrapper::getPeerCredentials() const {
  auto* local = dynamic_cast<UnixTransport*>(transport());
  if (local == nullptr) {
    return absl::FailedPreconditionError("the wrapped transport is not a Unix socket");
  }
  return local->getPeerCredentials();
}
void ProtocolWrapper::pauseProducing() { transport()->pauseProducing(); }
void ProtocolWrapper::resumeProducing() { transport()->resumeProducing(); }
void ProtocolWrapper::stopProducing() { transport()->stopProducing(); }
absl::Status ProtocolWrapper::registerProducer(Producer* producer, bool streaming) {
  return transport()->registerProducer(producer, streaming);
}
void ProtocolWrapper::unregisterProducer() { transport()->unregisterProducer(); }
bool ProtocolWrapper::readingPaused() const { return transport()->readingPaused(); }
size_t ProtocolWrapper::bufferedBytes() const { return transport()->bufferedBytes(); }
void ProtocolWrapper::setWriteBufferWaterMarks(size_t low, size_t high) {
  transport()->setWriteBufferWaterMarks(low, high);
}

ConnectionHandle ProtocolWrapper::makeHandle(Transport* as) {
  return transport()->makeHandle(as);
}

absl::Status ProtocolWrapper::wrapProtocol(ProtocolWrap wrap) {
  if (transport() == nullptr || transport()->disconnecting()) {
    return absl::FailedPreconditionError("the connection is closing");
  }
  Factory* factory = wrapped_->factory();
  wrapped_ = wrap(std::move(wrapped_));
  if (wrapped_->factory() == nullptr) wrapped_->setFactory(factory);
  half_closeable_ = dynamic_cast<HalfCloseableProtocol*>(wrapped_.get());
  buffering_ = dynamic_cast<BufferingProtocol*>(wrapped_.get());
  wrapped_->makeConnection(this);
  return absl::OkStatus();
}

std::unique_ptr<Protocol> WrappingFactory::buildProtocol(const Address& addr) {
  std::unique_ptr<Protocol> p = buildWrapped(addr);
  if (p == nullptr) return nullptr;
  return std::make_unique<ProtocolWrapper>(std::move(p));
}

class LimitTotalConnectionsFactory::Counted final : public ProtocolWrapper {
 public:
  // Holds the slot buildProtocol took.
  Counted(LimitTotalConnectionsFactory* f, std::unique_ptr<Protocol> p)
      : ProtocolWrapper(std::move(p)), f_(f) {}
  ~Counted() override {
    if (!lost_) f_->release();
  }
  void connectionLost(const absl::Status& reason) override {
    lost_ = true;
    f_->release();  // the slot is free for the next connection at once
    ProtocolWrapper::connectionLost(reason);
  }

 private:
  LimitTotalConnectionsFactory* f_;
  bool lost_ = false;
};

std::unique_ptr<Protocol> LimitTotalConnectionsFactory::buildProtocol(
    const Address& addr) {
  if (!acquire()) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  std::unique_ptr<Protocol> p = buildWrapped(addr);
  if (p == nullptr) {
    release();
    return nullptr;
  }
  return std::make_unique<Counted>(this, std::move(p));
}

bool LimitTotalConnectionsFactory::acquire() {
  // A compare-and-swap, not a check then an increment: two reactors'
  // threads must not both take the last slot.
  int n = count_.load(std::memory_order_relaxed);
  do {
    if (n >= max_) return false;
  } while (!count_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
  return true;
}

class TimeoutFactory::TimeoutProtocol final : public ProtocolWrapper,
                                              public TimeoutMixin {
 public:
  TimeoutProtocol(TimeoutFactory* f, std::unique_ptr<Protocol> p)
      : ProtocolWrapper(std::move(p)), TimeoutMixin(f->reactor_), f_(f) {}
  void connectionMade() override {
    setTimeout(f_->idle_);
    ProtocolWrapper::connectionMade();
  }
  void dataReceived(absl::string_view data) override {
    activity();
    ProtocolWrapper::dataReceived(data);
  }
  void write(absl::string_view data) override {
    activity();
    ProtocolWrapper::write(data);
  }
  void writeSequence(absl::Span<const absl::string_view> data) override {
    activity();
    ProtocolWrapper::writeSequence(data);
  }
  void connectionLost(const absl::Status& reason) override {
    cancelTimeout();
    ProtocolWrapper::connectionLost(reason);
  }
  void timeoutConnection() override {
    if (closing_) {
      // The peer did not even read what was left to flush: drop it.
      transport()->abortConnection();
      return;
    }
    ++f_->timed_out_;
    closing_ = true;
    transport()->loseConnection();
    setTimeout(f_->idle_);
  }

 private:
  // Once timed out, the countdown is the flush's: writes the protocol still
  // makes must not postpone the abort.
  void activity() {
    if (!closing_) resetTimeout();
  }

  TimeoutFactory* f_;
  bool closing_ = false;
};

std::unique_ptr<Protocol> TimeoutFactory::buildProtocol(const Address& addr) {
  std::unique_ptr<Protocol> p = buildWrapped(addr);
  if (p == nullptr) return nullptr;
  return std::make_unique<TimeoutProtocol>(this, std::move(p));
}

}  // namespace twist
