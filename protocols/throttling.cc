#include "protocols/throttling.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace twist {

// The wrapped protocol's transport. It keeps two pauses apart on each side,
// so that lifting the throttle never undoes a pause someone else asked for
// (Twisted's ThrottlingProtocol resumes regardless):
// - reading: the wrapped protocol's own pauseProducing() and the throttle;
//   the real transport reads only when neither holds.
// - writing: the wrapped protocol's producer is registered with the real
//   transport through `gate_`, so it runs only when neither the transport
//   (its buffer above the high water mark) nor the throttle pauses it.
class ThrottlingFactory::ThrottlingProtocol final : public ProtocolWrapper {
 public:
  ThrottlingProtocol(ThrottlingFactory* f, std::unique_ptr<Protocol> p)
      : ProtocolWrapper(std::move(p)), f_(f), gate_(this) {
    ++f_->connection_count_;
  }
  ~ThrottlingProtocol() override {
    if (producer_ != nullptr) unlinkProducer(producer_);
    if (!lost_) forget();  // built, but never connected or never lost
  }

  void connectionMade() override {
    f_->protocols_.insert(this);
    if (f_->reads_.throttled) transport()->pauseProducing();
    ProtocolWrapper::connectionMade();
  }
  void dataReceived(absl::string_view data) override {
    f_->count(f_->reads_, data.size());
    ProtocolWrapper::dataReceived(data);
  }
  void connectionLost(const absl::Status& reason) override {
    forget();
    lost_ = true;
    ProtocolWrapper::connectionLost(reason);
  }

  void write(absl::string_view data) override {
    f_->count(f_->writes_, data.size());
    ProtocolWrapper::write(data);
  }
  void writeSequence(absl::Span<const absl::string_view> data) override {
    size_t n = 0;
    for (absl::string_view piece : data) n += piece.size();
    f_->count(f_->writes_, n);
    ProtocolWrapper::writeSequence(data);
  }

  // Reading, as the wrapped protocol asks for it.
  void pauseProducing() override {
    wrapped_paused_ = true;
    transport()->pauseProducing();
  }
  void resumeProducing() override {
    wrapped_paused_ = false;
    if (!f_->reads_.throttled) transport()->resumeProducing();
  }

  // Writing: the producer goes through the gate.
  absl::Status registerProducer(Producer* producer, bool streaming) override {
    if (producer_ != nullptr) {
      return absl::FailedPreconditionError(
          "a producer is already registered with this transport");
    }
    if (absl::Status s = transport()->registerProducer(&gate_, streaming); !s.ok()) {
      return s;
    }
    producer_ = producer;
    streaming_ = streaming;
    pull_asked_ = false;
    linkProducer(producer);  // told if it is destroyed first: producerGone
    if (streaming && f_->writes_.throttled && !transport_paused_) producer->pauseProducing();
    return absl::OkStatus();
  }
  void unregisterProducer() override {
    if (producer_ == nullptr) return;
    unlinkProducer(std::exchange(producer_, nullptr));
    transport_paused_ = false;
    transport()->unregisterProducer();
  }

  void throttleReads() { transport()->pauseProducing(); }
  void unthrottleReads() {
    if (!wrapped_paused_) transport()->resumeProducing();
  }
  void throttleWrites() {
    if (producer_ != nullptr && streaming_ && !transport_paused_) producer_->pauseProducing();
  }
  void unthrottleWrites() {
    if (producer_ == nullptr) return;
    if (streaming_) {
      if (!transport_paused_) producer_->resumeProducing();
    } else if (pull_asked_) {
      pull_asked_ = false;
      producer_->resumeProducing();
    }
  }

 private:
  // What the real transport sees as this connection's producer.
  class Gate final : public Producer {
   public:
    explicit Gate(ThrottlingProtocol* p) : p_(p) {}
    void pauseProducing() override { p_->transportPaused(true); }
    void resumeProducing() override { p_->transportPaused(false); }
    void stopProducing() override { p_->transportStopped(); }

   private:
    ThrottlingProtocol* p_;
  };

  void transportPaused(bool paused) {
    if (producer_ == nullptr) return;
    const bool throttled = f_->writes_.throttled;
    if (streaming_) {
      transport_paused_ = paused;
      if (throttled) return;  // already paused; the throttle's end resumes it
      paused ? producer_->pauseProducing() : producer_->resumeProducing();
    } else if (!paused) {
      // A pull producer asked for more while throttled waits for its end.
      if (throttled) {
        pull_asked_ = true;
      } else {
        producer_->resumeProducing();
      }
    }
  }
  void transportStopped() {
    Producer* p = std::exchange(producer_, nullptr);
    if (p == nullptr) return;
    unlinkProducer(p);
    // A protocol producing for itself (Echo) is this wrapper: the
    // connection is already closing, as a transport's own producer is not
    // stopped either.
    if (p != this) p->stopProducing();
  }
  void producerGone(Producer* p) override {
    if (p != producer_) return;
    producer_ = nullptr;  // already unlinked by the producer
    transport()->unregisterProducer();
  }
  void forget() {
    f_->protocols_.erase(this);
    if (--f_->connection_count_ == 0) f_->stopChecks();
  }

  ThrottlingFactory* f_;
  Gate gate_;
  Producer* producer_ = nullptr;  // the wrapped protocol's, for writing
  bool streaming_ = false;
  bool transport_paused_ = false;  // the real transport paused producer_
  bool pull_asked_ = false;        // ... or asked it for more while throttled
  bool wrapped_paused_ = false;    // the wrapped protocol paused reading
  bool lost_ = false;
};

ThrottlingFactory::ThrottlingFactory(ReactorTime* reactor, Factory* wrapped,
                                     int max_connection_count, int64_t read_limit,
                                     int64_t write_limit)
    : WrappingFactory(wrapped), reactor_(reactor), max_connection_count_(max_connection_count) {
  // 0 or less: no limit, as a flag's 0 means.
  reads_.limit = read_limit > 0 ? read_limit : kNoLimit;
  writes_.limit = write_limit > 0 ? write_limit : kNoLimit;
}

ThrottlingFactory::~ThrottlingFactory() {
  for (Meter* m : {&reads_, &writes_}) {
    if (m->check.active()) m->check.cancel().IgnoreError();
    if (m->unthrottle.active()) m->unthrottle.cancel().IgnoreError();
  }
}

std::unique_ptr<Protocol> ThrottlingFactory::buildProtocol(const Address& addr) {
  if (connection_count_ >= max_connection_count_) {
    ++refused_;
    return nullptr;
  }
  std::unique_ptr<Protocol> p = buildWrapped(addr);
  if (p == nullptr) return nullptr;
  // Time is checked only while there are connections, as in Twisted.
  if (connection_count_ == 0) startChecks();
  return std::make_unique<ThrottlingProtocol>(this, std::move(p));
}

void ThrottlingFactory::startChecks() {
  const absl::Time now = reactor_->seconds();
  for (Meter* m : {&reads_, &writes_}) {
    if (!m->limited()) continue;
    m->last_check = now;
    m->allowance = allowance(*m, now);
    m->check = reactor_->callLater(absl::Seconds(1), [this, m] { check(*m); });
    // The excess of connections gone before is still owed: reconnecting
    // does not reset the limit.
    if (m->due > now) {
      m->throttled = true;
      m->unthrottle = reactor_->callLater(m->due - now, [this, m] { setThrottled(*m, false); });
    }
  }
}

void ThrottlingFactory::stopChecks() {
  for (Meter* m : {&reads_, &writes_}) {
    if (!m->limited()) continue;
    if (m->this_second > 0) {
      m->due = std::max(m->due, m->last_check) +
               absl::Seconds(static_cast<double>(m->this_second) / m->limit);
      m->this_second = 0;
    }
    if (m->check.active()) m->check.cancel().IgnoreError();
    if (m->unthrottle.active()) m->unthrottle.cancel().IgnoreError();
    m->throttled = false;  // no connection is left to be paused
    m->allowance = kNoLimit;
  }
}

void ThrottlingFactory::check(Meter& m) {
  const absl::Time now = reactor_->seconds();
  // This second's bytes are due after those let through before, and not
  // before the second began: an allowance left unused is lost, as in
  // Twisted. Twisted compares each second with the limit afresh, so a
  // second begun inside a pause allows a whole second's bytes in its
  // unpaused part; carrying `due` over allows only that part's share.
  m.due = std::max(m.due, m.last_check) +
          absl::Seconds(static_cast<double>(m.this_second) / m.limit);
  m.this_second = 0;
  m.last_check = now;
  m.allowance = allowance(m, now);
  if (m.due > now) {
    if (!m.throttled) setThrottled(m, true);
    if (m.unthrottle.active()) {
      m.unthrottle.reset(m.due - now).IgnoreError();
    } else {
      m.unthrottle = reactor_->callLater(m.due - now, [this, &m] { setThrottled(m, false); });
    }
  } else if (m.throttled && !m.unthrottle.active()) {
    // Paused when the allowance ran out, and a late check (a busy loop)
    // finds the excess already paid for.
    setThrottled(m, false);
  }
  m.check = reactor_->callLater(absl::Seconds(1), [this, &m] { check(m); });
}

int64_t ThrottlingFactory::allowance(const Meter& m, absl::Time now) {
  const double free =
      absl::ToDoubleSeconds(now + absl::Seconds(1) - std::max(m.due, now));
  return free > 0 ? static_cast<int64_t>(free * static_cast<double>(m.limit)) : 0;
}

void ThrottlingFactory::setThrottled(Meter& m, bool throttled) {
  m.throttled = throttled;
  const bool reads = &m == &reads_;
  forEachProtocol([&](ThrottlingProtocol* p) {
    // A resumed protocol's input may have spent the allowance again.
    if (m.throttled != throttled) return;
    if (reads) {
      throttled ? p->throttleReads() : p->unthrottleReads();
    } else {
      throttled ? p->throttleWrites() : p->unthrottleWrites();
    }
  });
}

void ThrottlingFactory::forEachProtocol(absl::FunctionRef<void(ThrottlingProtocol*)> fn) {
  // A resumed protocol may deliver input, write, and close others.
  std::vector<ThrottlingProtocol*> all(protocols_.begin(), protocols_.end());
  for (ThrottlingProtocol* p : all) {
    if (protocols_.contains(p)) fn(p);
  }
}

}  // namespace twist
