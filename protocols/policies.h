#ifndef TWIST_PROTOCOLS_POLICIES_H_
#define TWIST_PROTOCOLS_POLICIES_H_

#include <atomic>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "framework/delayed_call.h"
#include "framework/protocol.h"
#include "framework/reactor_time.h"

namespace twist {

/// Closes a connection that stays quiet too long (Twisted's
/// policies.TimeoutMixin). Inherit it beside Protocol, call setTimeout() in
/// connectionMade() and resetTimeout() whenever there is activity:
///
///   class Session : public Protocol, public TimeoutMixin {
///    public:
///     explicit Session(ReactorTime* r) : TimeoutMixin(r) {}
///     void connectionMade() override { setTimeout(absl::Seconds(30)); }
///     void dataReceived(absl::string_view d) override { resetTimeout(); ... }
///     void connectionLost(const absl::Status&) override { cancelTimeout(); }
///   };
///
/// The pending call is cancelled when the protocol is destroyed.
class TimeoutMixin {
 public:
  /// Only time is needed: a Reactor, or a task::Clock in tests.
  explicit TimeoutMixin(ReactorTime* reactor) : reactor_(reactor) {}
  virtual ~TimeoutMixin() { cancelTimeout(); }

  /// Starts (or restarts) the countdown; returns the previous period
  /// (InfiniteDuration when there was none). InfiniteDuration disables it.
  absl::Duration setTimeout(absl::Duration period);
  void cancelTimeout() { setTimeout(absl::InfiniteDuration()); }
  /// Restarts the countdown with the current period, if one is set.
  void resetTimeout();
  /// The period passed without a resetTimeout(). Default: loseConnection()
  /// on this protocol's transport.
  virtual void timeoutConnection();

 private:
  ReactorTime* reactor_;
  absl::Duration period_ = absl::InfiniteDuration();
  DelayedCall call_;
};

/// Forwards every callback to another protocol (Twisted's ProtocolWrapper),
/// including half-close and BufferingProtocol's readingResumed(), and is
/// that protocol's transport: every write, pause and close of the wrapped
/// protocol goes through it to the real transport. So a policy can watch
/// and change a connection both ways without the protocol knowing; override
/// a Transport method to see it (call ProtocolWrapper's to pass it on).
/// It is a TcpTransport and a UnixTransport too, passing those calls on
/// (FAILED_PRECONDITION when the transport it wraps is not one).
class ProtocolWrapper : public Protocol,
                        public HalfCloseableProtocol,
                        public BufferingProtocol,
                        public Transport,
                        public TcpTransport,
                        public UnixTransport {
 public:
  explicit ProtocolWrapper(std::unique_ptr<Protocol> wrapped);
  ~ProtocolWrapper() override;
  void connectionMade() override;
  void dataReceived(absl::string_view data) override;
  void readConnectionLost() override;
  void readingResumed() override;
  void connectionLost(const absl::Status& reason) override;
  /// The protocol this wraps (Twisted's ProtocolWrapper.wrappedProtocol).
  Protocol* wrappedProtocol() const override { return wrapped_.get(); }

  // Transport, for the wrapped protocol: each passes the call on to this
  // wrapper's own transport().
  void write(absl::string_view data) override;
  void writeSequence(absl::Span<const absl::string_view> data) override;
  void loseConnection() override;
  void abortConnection() override;
  void loseWriteConnection() override;
  bool disconnecting() const override;
  Address getPeer() const override;
  Address getHost() const override;
  absl::Status setTcpNoDelay(bool enabled) override;
  absl::Status setTcpKeepAlive(bool enabled) override;
  absl::StatusOr<PeerCredentials> getPeerCredentials() const override;
  void pauseProducing() override;
  void resumeProducing() override;
  void stopProducing() override;
  absl::Status registerProducer(Producer* producer, bool streaming) override;
  void unregisterProducer() override;
  bool readingPaused() const override;
  size_t bufferedBytes() const override;
  void setWriteBufferWaterMarks(size_t low, size_t high) override;
  ConnectionHandle makeHandle(Transport* as) override;

  /// Puts the wrapped protocol inside another (startTLS under a policy).
  absl::Status wrapProtocol(ProtocolWrap wrap) override;
  /// `factory`'s protocol for `addr`, with its own factory() set: what a
  /// wrapping factory wraps. nullptr if `factory` refuses.
  static std::unique_ptr<Protocol> buildWrapped(Factory* factory, const Address& addr);

 private:
  void producerGone(Producer*) override {}  // producers are the real transport's

  std::unique_ptr<Protocol> wrapped_;
  HalfCloseableProtocol* half_closeable_;  // wrapped_, if it opts in
  BufferingProtocol* buffering_;           // wrapped_, if it opts in
};

/// The base of the factories that wrap another factory's protocols
/// (Twisted's policies.WrappingFactory): it starts and stops the wrapped
/// factory with itself, and by default builds the wrapped factory's
/// protocol inside a plain ProtocolWrapper. A policy overrides
/// buildProtocol() to wrap it in its own ProtocolWrapper subclass.
/// Unlike Twisted's, it keeps no registry of its protocols
/// (WrappingFactory.protocols) and is not a client factory: each policy
/// keeps only what it needs (a count, a set). The wrapped factory must
/// outlive it.
class WrappingFactory : public Factory {
 public:
  explicit WrappingFactory(Factory* wrapped) : wrapped_(wrapped) {}
  std::unique_ptr<Protocol> buildProtocol(const Address& addr) override;
  void startFactory() override { wrapped_->doStart(); }
  void stopFactory() override { wrapped_->doStop(); }
  Factory* wrappedFactory() const { return wrapped_; }

 protected:
  /// The wrapped factory's protocol for `addr`, with its own factory() set
  /// (ProtocolWrapper::buildWrapped); nullptr if it refuses.
  std::unique_ptr<Protocol> buildWrapped(const Address& addr) {
    return ProtocolWrapper::buildWrapped(wrapped_, addr);
  }

 private:
  Factory* wrapped_;
};

/// Serves at most `max_connections` connections at once with the protocols
/// of `wrapped`; a connection over the limit is closed at once, before any
/// protocol is built (Twisted's LimitTotalConnectionsFactory).
///
/// Thread-safe: the reactors of a ReactorPool may share it, and the limit
/// holds across them. A slot is taken atomically in buildProtocol (never
/// more than `max_connections` at once, whatever the threads) and given
/// back in the protocol's connectionLost, on its own reactor's thread. The
/// wrapped factory must be thread-safe too (Factory::buildProtocol).
class LimitTotalConnectionsFactory : public WrappingFactory {
 public:
  LimitTotalConnectionsFactory(Factory* wrapped, int max_connections)
      : WrappingFactory(wrapped), max_(max_connections) {}
  std::unique_ptr<Protocol> buildProtocol(const Address& addr) override;
  /// Thread-safe; a snapshot when other threads are serving.
  int connectionCount() const { return count_.load(std::memory_order_relaxed); }
  int refusedCount() const { return refused_.load(std::memory_order_relaxed); }

 private:
  class Counted;
  // Takes a slot if one is free.
  bool acquire();
  void release() { count_.fetch_sub(1, std::memory_order_relaxed); }
  int max_;
  std::atomic<int> count_{0};
  std::atomic<int> refused_{0};
};

/// Closes connections quiet for `idle` (Twisted's TimeoutFactory): wraps
/// each protocol of `wrapped`, and restarts the countdown whenever data
/// arrives or the protocol writes, as Twisted's TimeoutProtocol does (so a
/// chat user who only reads stays). The wrapped protocols need not know.
/// On time-out the connection is lost cleanly (queued output is flushed);
/// if that flush has not finished after another `idle`, it is aborted.
/// One reactor's: its countdowns run on `reactor`, so it serves that
/// reactor's connections only (in a ReactorPool, one TimeoutFactory per
/// reactor).
class TimeoutFactory : public WrappingFactory {
 public:
  TimeoutFactory(ReactorTime* reactor, Factory* wrapped, absl::Duration idle)
      : WrappingFactory(wrapped), reactor_(reactor), idle_(idle) {}
  std::unique_ptr<Protocol> buildProtocol(const Address& addr) override;
  int timedOutCount() const { return timed_out_; }

 private:
  class TimeoutProtocol;
  ReactorTime* reactor_;
  absl::Duration idle_;
  int timed_out_ = 0;
};

}  // namespace twist

#endif  // TWIST_PROTOCOLS_POLICIES_H_
