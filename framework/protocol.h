#ifndef TWIST_FRAMEWORK_PROTOCOL_H_
#define TWIST_FRAMEWORK_PROTOCOL_H_

#include <atomic>
#include <memory>
#include <tuple>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "framework/address.h"
#include "framework/transport.h"

namespace twist {

class Factory;

/// The user's side of a connection (twisted.internet.protocol.Protocol).
///
/// Callback order, guaranteed by the reactor: makeConnection() once, which
/// calls connectionMade(); then dataReceived() zero or more times; then
/// connectionLost() exactly once; then the protocol is destroyed, at the end
/// of that loop iteration. Nothing calls into a protocol after
/// connectionLost(), and its transport must not be used after it returns.
class Protocol {
 public:
  virtual ~Protocol() = default;

  /// Attaches the transport and calls connectionMade().
  void makeConnection(Transport* transport);

  virtual void connectionMade() {}
  /// `data` points into a buffer reused by the reactor: copy what you keep.
  virtual void dataReceived(absl::string_view data) {}
  /// `reason`: OK for a clean close (ConnectionDone), ABORTED after
  /// abortConnection(), UNAVAILABLE with the cause when the connection was
  /// lost. See framework/errors.h.
  virtual void connectionLost(const absl::Status& reason) {}
  /// The protocol this one is a layer over (a ProtocolWrapper: a policy,
  /// TLS); nullptr for an application's own protocol. The reactor's
  /// shutdown closes a connection through the transport the innermost
  /// protocol sees, so that every layer takes part (TLS: close_notify).
  virtual Protocol* wrappedProtocol() const { return nullptr; }

  Transport* transport() const { return transport_; }
  Factory* factory() const { return factory_; }
  /// factory() as the user's own factory type (Twisted's `self.factory`,
  /// typed), so a protocol reaches its factory's state without a cast:
  /// `factoryAs<QotdFactory>()->quote()`. nullptr when there is no factory
  /// or it is not an F (a checked dynamic_cast).
  template <typename F>
  F* factoryAs() const {
    return dynamic_cast<F*>(factory_);
  }
  /// Points this protocol at another transport without connecting it
  /// again (connectionMade does not run): for a layer slipped under a
  /// protocol in the middle of its connection (Transport::wrapProtocol,
  /// startTLS), as Twisted assigns `protocol.transport`.
  void moveToTransport(Transport* transport) { transport_ = transport; }
  /// Set by the reactor (or a test) before makeConnection().
  void setFactory(Factory* factory) { factory_ = factory; }

 private:
  Transport* transport_ = nullptr;
  Factory* factory_ = nullptr;
};

/// A protocol that also inherits this hears about the peer's half-close
/// (Twisted's IHalfCloseableProtocol): when the peer shuts down its write
/// side, readConnectionLost() runs and the connection stays open for
/// writing until loseConnection(). Without it, end of input means
/// loseConnection(): queued output is still sent, then the connection closes.
class HalfCloseableProtocol {
 public:
  virtual ~HalfCloseableProtocol() = default;
  virtual void readConnectionLost() = 0;
};

/// A protocol that buffers input it has parsed ahead (the framing receivers)
/// inherits this so that pausing its transport holds back that input too:
/// it stops delivering while transport()->readingPaused(), and the transport
/// calls readingResumed() when reading resumes, to deliver what was held.
class BufferingProtocol {
 public:
  virtual ~BufferingProtocol() = default;
  virtual void readingResumed() = 0;
};

/// Builds a protocol for each connection (twisted.internet.protocol.Factory).
/// A factory is not owned by the ports that use it. It may be destroyed
/// before them (declared after the reactor, say): a port whose factory is
/// gone stops listening without calling into it. Its protocols still get
/// connectionLost when the reactor closes them; a protocol that uses its
/// factory there needs the factory to outlive the reactor.
class Factory {
 public:
  Factory() = default;
  /// A factory whose buildProtocol() calls `make`.
  explicit Factory(absl::AnyInvocable<std::unique_ptr<Protocol>()> make)
      : make_(std::move(make)) {}
  virtual ~Factory() = default;
  Factory(const Factory&) = delete;
  Factory& operator=(const Factory&) = delete;

  /// Twisted's Factory.forProtocol: a factory that builds P(args...).
  template <typename P, typename... Args>
  static std::unique_ptr<Factory> forProtocol(Args... args);

  /// Returns the protocol for a new connection from `addr`, or nullptr to
  /// refuse it (the connection is closed at once). The reactor sets the
  /// protocol's factory().
  ///
  /// Threads: a factory served by one reactor is called on that reactor's
  /// thread only. One served by several (a ReactorPool's listenTCP, or the
  /// same factory given to several reactors) gets buildProtocol on each
  /// reactor's thread, at the same time: it must be thread-safe, and so
  /// must whatever its protocols share through it (a count: atomic; a
  /// registry: a mutex, or a structure per reactor). Each protocol it
  /// builds lives and is called on the one reactor that serves its
  /// connection. forProtocol's factories are safe (they only copy their
  /// arguments); LimitTotalConnectionsFactory counts atomically; the other
  /// policies of protocols/policies.h say whether they are.
  virtual std::unique_ptr<Protocol> buildProtocol(const Address& addr);

  /// Called before the first port starts using this factory and after the
  /// last one stops: once per such transition, whichever reactor's thread
  /// it happens on (the count is atomic). In a pool, ports start on the
  /// thread that sets the pool up, and stop on their reactors' threads as
  /// the pool shuts down, so stopFactory may run on any of them, after
  /// every other port of the factory has stopped. (A PerReactorFactory
  /// hands each of its per-reactor factories' calls to that factory's own
  /// reactor.)
  virtual void startFactory() {}
  virtual void stopFactory() {}

  /// Reference-counted wrappers the ports call (thread-safe).
  void doStart();
  void doStop();

  /// Expires when this factory is destroyed: what a port or connector that
  /// keeps a Factory* checks before calling into it.
  std::weak_ptr<const void> liveness() const { return alive_; }

 private:
  absl::AnyInvocable<std::unique_ptr<Protocol>()> make_;
  std::atomic<int> num_ports_{0};
  std::shared_ptr<const int> alive_ = std::make_shared<const int>(0);
};

/// A factory kept by something it does not own, that may be destroyed first
/// (declared after the reactor, say): get() is nullptr once it is gone, so
/// ports, connectors and endpoints never call a dead factory.
template <class F>
class FactoryRef {
 public:
  explicit FactoryRef(F* f) : f_(f), alive_(f->liveness()) {}
  F* get() const { return alive_.expired() ? nullptr : f_; }
  /// The pointer whatever its state: to hand on, never to call.
  F* raw() const { return f_; }

 private:
  F* f_;
  std::weak_ptr<const void> alive_;
};

namespace internal {
// What Factory::forProtocol<P>(args...) returns: builds P(args...) for each
// connection, with copies of the arguments it was given.
template <typename P, typename... Args>
class ProtocolFactory final : public Factory {
 public:
  explicit ProtocolFactory(Args... args) : args_(std::move(args)...) {}
  std::unique_ptr<Protocol> buildProtocol(const Address&) override {
    return std::apply(
        [](const Args&... a) -> std::unique_ptr<Protocol> {
          return std::make_unique<P>(a...);
        },
        args_);
  }

 private:
  std::tuple<Args...> args_;
};
}  // namespace internal

template <typename P, typename... Args>
std::unique_ptr<Factory> Factory::forProtocol(Args... args) {
  return std::make_unique<internal::ProtocolFactory<P, Args...>>(std::move(args)...);
}

}  // namespace twist

#endif  // TWIST_FRAMEWORK_PROTOCOL_H_
