#ifndef TWIST_FRAMEWORK_HOSTNAME_ENDPOINT_H_
#define TWIST_FRAMEWORK_HOSTNAME_ENDPOINT_H_

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "framework/address.h"
#include "framework/delayed_call.h"
#include "framework/endpoints.h"
#include "framework/reactor_time.h"

namespace twist {

class ClientFactory;
class Reactor;

/// The order and the stagger of a HostnameEndpoint's connection attempts
/// (RFC 8305, "Happy Eyeballs"), apart from sockets so that a test drives it
/// on a task::Clock. It only decides; the hooks do:
///
/// - start(): the addresses, interleaved by family (the first address's
///   family first, then the other, alternately), are started one at a time:
///   the next `attempt_delay` after the previous one, or at once when every
///   attempt started so far has failed.
/// - The first attempt to succeed wins: succeeded() returns true for it
///   only, every other running attempt is cancelled (the cancel hook) and
///   no more are started.
/// - When every address has failed, done() gets the last failure.
///
/// done() runs exactly once (success, failure or abort()); after it the
/// object ignores what it is told. Not thread-safe; runs on `time`'s thread.
class HappyEyeballs {
 public:
  struct Hooks {
    /// Start attempt `index` on `address`; report back with succeeded(index)
    /// or failed(index, reason), later (not inside this call).
    absl::AnyInvocable<void(size_t index, const Address& address)> start;
    /// Stop attempt `index`, which lost; it need not report back.
    absl::AnyInvocable<void(size_t index)> cancel;
    /// The winner's index, or why every attempt failed.
    absl::AnyInvocable<void(absl::StatusOr<size_t> winner)> done;
  };

  HappyEyeballs(ReactorTime* time, absl::Duration attempt_delay, Hooks hooks);
  ~HappyEyeballs();
  HappyEyeballs(const HappyEyeballs&) = delete;
  HappyEyeballs& operator=(const HappyEyeballs&) = delete;

  /// RFC 8305's interleaving: first family of the first address, then
  /// alternating, each family in its given order, without repeats.
  static std::vector<Address> Interleave(std::vector<Address> addresses);

  /// Begins with `addresses` (not empty), in Interleave's order.
  void start(std::vector<Address> addresses);
  /// Attempt `index` connected. True if it is the winner (the caller keeps
  /// it); false if another won first or it is over (the caller drops it).
  bool succeeded(size_t index);
  /// Attempt `index` failed with `reason`.
  void failed(size_t index, absl::Status reason);
  /// Ends everything now: running attempts are cancelled, done(reason).
  void abort(absl::Status reason);

  /// The addresses in the order they are tried.
  const std::vector<Address>& order() const { return order_; }
  /// Attempts started so far.
  size_t started() const { return next_; }
  bool finished() const { return finished_; }

 private:
  void startNext();
  void finish(absl::StatusOr<size_t> result);

  ReactorTime* time_;
  absl::Duration attempt_delay_;
  Hooks hooks_;
  std::vector<Address> order_;
  std::vector<bool> running_;
  size_t next_ = 0;     // the next address to start
  size_t running_count_ = 0;
  absl::Status last_failure_;
  DelayedCall stagger_;
  bool finished_ = false;
};

/// A client endpoint for a host name and port (Twisted's HostnameEndpoint):
/// connect() resolves the name on the reactor's thread pool (a numeric
/// address needs no resolution), then races the addresses with
/// HappyEyeballs: each attempt is a connectTCP to one address; the first to
/// connect gets the factory's protocol, the others are cancelled; when all
/// fail, clientConnectionFailed gets the last failure. `timeout` bounds the
/// name's resolution and each address's attempt (as in Twisted, per
/// attempt); `attempt_delay` is Twisted's attemptDelay (0.3 s).
class HostnameEndpoint final : public ClientEndpoint {
 public:
  static constexpr absl::Duration kDefaultAttemptDelay = absl::Milliseconds(300);

  HostnameEndpoint(Reactor* reactor, std::string host, int port,
                   absl::Duration timeout = absl::Seconds(30),
                   std::optional<Address> bind_address = std::nullopt,
                   absl::Duration attempt_delay = kDefaultAttemptDelay);

  std::string describe() const override;

 protected:
  /// Starts an attempt; every attempt ends with exactly one of `factory`'s
  /// clientConnectionFailed() or (after its protocol's connectionLost)
  /// clientConnectionLost(), even when the reactor stops or is destroyed
  /// first. The attempt owns itself; the endpoint may go at once. Cancelling
  /// it stops the resolution and every address's attempt.
  absl::StatusOr<ConnectingAttempt> startConnecting(ClientFactory* factory) override;

 private:
  class Attempt;

  Reactor* reactor_;
  std::string host_;
  int port_;
  absl::Duration timeout_;
  std::optional<Address> bind_address_;
  absl::Duration attempt_delay_;
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_HOSTNAME_ENDPOINT_H_
