#ifndef TWIST_FRAMEWORK_CLIENT_FACTORY_H_
#define TWIST_FRAMEWORK_CLIENT_FACTORY_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <tuple>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "framework/protocol.h"

namespace twist {

class Connector;

/// A factory for outgoing connections (Twisted's ClientFactory): hears how
/// each connection attempt made with Reactor::connectTCP goes. Every
/// callback runs on the reactor's thread, never inside the call that caused
/// it.
class ClientFactory : public Factory {
 public:
  using Factory::Factory;

  /// The attempt has begun (name resolution, then the TCP handshake).
  virtual void startedConnecting(Connector* connector) {}
  /// The attempt failed: refused, unreachable, timed out, the name did not
  /// resolve, or stopConnecting() (see framework/errors.h to tell which).
  virtual void clientConnectionFailed(Connector* connector,
                                      const absl::Status& reason) {}
  /// A connection this factory's protocol had is over; runs right after the
  /// protocol's connectionLost(), with the same reason.
  virtual void clientConnectionLost(Connector* connector,
                                    const absl::Status& reason) {}
};

/// Reconnects with exponential back-off after a failed or lost connection
/// (Twisted's ReconnectingClientFactory). Each retry waits the previous
/// delay times `factor`, at most `maxDelay`, then varied by up to `jitter`
/// times itself either way (uniformly: Twisted draws from a normal
/// distribution, which is unbounded; here every delay stays within
/// d*(1±jitter)). buildProtocol() calls resetDelay(): a connection that
/// succeeds starts the back-off over.
///
/// With your own protocol, no subclass is needed:
///
///   auto factory = ReconnectingClientFactory::forProtocol<MyClient>(args...);
///   reactor->connectTCP(host, port, factory.get());
///
/// or `ReconnectingClientFactory factory([] { return std::make_unique<MyClient>(); });`.
/// A subclass that overrides buildProtocol(), startedConnecting(),
/// clientConnectionFailed() or clientConnectionLost() calls this class's
/// version too (an override of buildProtocol() may instead call
/// resetDelay() itself, as Twisted's documentation shows).
///
/// Delays are measured on the reactor's clock, so a test drives them with a
/// FakeClock. One factory drives one Connector.
class ReconnectingClientFactory : public ClientFactory {
 public:
  ReconnectingClientFactory() = default;
  /// A factory whose buildProtocol() resets the delay and calls `make`.
  explicit ReconnectingClientFactory(
      absl::AnyInvocable<std::unique_ptr<Protocol>()> make)
      : ClientFactory(std::move(make)) {}

  /// Twisted's forProtocol: a reconnecting factory that builds P(args...)
  /// (copies of the arguments) for each connection.
  template <typename P, typename... Args>
  static std::unique_ptr<ReconnectingClientFactory> forProtocol(Args... args) {
    return std::make_unique<ReconnectingClientFactory>(
        [args = std::make_tuple(std::move(args)...)]() -> std::unique_ptr<Protocol> {
          return std::apply(
              [](const Args&... a) { return std::make_unique<P>(a...); }, args);
        });
  }

  // Twisted's defaults.
  absl::Duration initialDelay = absl::Seconds(1);
  double factor = 2.7182818284590451;
  double jitter = 0.11962656472;
  absl::Duration maxDelay = absl::Seconds(3600);
  /// Give up after this many retries in a row; nullopt: never.
  std::optional<int> maxRetries;

  std::unique_ptr<Protocol> buildProtocol(const Address& addr) override;
  void startedConnecting(Connector* connector) override;
  void clientConnectionFailed(Connector* connector,
                              const absl::Status& reason) override;
  void clientConnectionLost(Connector* connector,
                            const absl::Status& reason) override;

  /// Schedules connector->connect() after the next delay, unless
  /// stopTrying() was called or maxRetries is used up.
  void retry(Connector* connector);
  /// Back to initialDelay and zero retries; trying again if stopped.
  void resetDelay();
  /// No more retries; a pending retry or a connection attempt in progress
  /// is abandoned (the attempt ends with a cancelled clientConnectionFailed
  /// on the next loop turn). Safe whenever the factory is alive, even after
  /// the reactor is gone: the factory never uses a destroyed connector.
  void stopTrying();

  /// The delay the last retry waited (initialDelay before any).
  absl::Duration delay() const { return delay_started_ ? delay_ : initialDelay; }
  int retries() const { return retries_; }
  bool continueTrying() const { return continue_trying_; }
  /// Makes the jitter repeatable.
  void seedJitter(uint64_t seed) { random_.seed(seed); }

 private:
  absl::Duration delay_ = absl::Seconds(1);
  bool delay_started_ = false;  // delay_ follows initialDelay until the first retry
  int retries_ = 0;
  bool continue_trying_ = true;
  // The one a retry or an attempt is pending on, and whether it still
  // exists (the reactor may have destroyed it without us hearing).
  Connector* connector_ = nullptr;
  std::weak_ptr<const void> connector_alive_;
  std::mt19937_64 random_{std::random_device{}()};
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_CLIENT_FACTORY_H_
