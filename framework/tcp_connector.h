#ifndef TWIST_FRAMEWORK_TCP_CONNECTOR_H_
#define TWIST_FRAMEWORK_TCP_CONNECTOR_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "framework/address.h"
#include "framework/delayed_call.h"
#include "framework/poller.h"

namespace twist {

class ClientFactory;
class Reactor;
class TcpConnection;
class Transport;

/// One outgoing TCP connection and its attempts (Twisted's IConnector), made
/// by Reactor::connectTCP. Owned by the reactor.
///
/// Lifetime: a connector lives while it is connecting, connected, or waiting
/// for a connectLater(). Once it is none of these after its factory's
/// clientConnectionFailed() or clientConnectionLost() returns, the reactor
/// destroys it at the end of that loop iteration: keep a Connector* past
/// those callbacks only by calling connect() or connectLater() in them.
class Connector final : private Selectable {
 public:
  enum class State { kDisconnected, kConnecting, kConnected };

  Connector(Reactor* reactor, std::string host, int port,
            ClientFactory* factory, absl::Duration timeout,
            std::optional<Address> bind_address);
  ~Connector() override;
  Connector(const Connector&) = delete;
  Connector& operator=(const Connector&) = delete;

  /// Starts a new attempt. Only when disconnected (FailedPrecondition
  /// otherwise), as after a failed or lost connection.
  absl::Status connect();
  /// connect() after `delay` on the reactor's clock (how retries wait).
  /// FailedPrecondition, scheduling nothing, while the reactor is stopping.
  absl::Status connectLater(absl::Duration delay);
  /// Abandons the attempt in progress: the factory's clientConnectionFailed
  /// gets a cancelled reason on the next loop turn. Also cancels a pending
  /// connectLater(), silently. FailedPrecondition when neither is under way.
  absl::Status stopConnecting();
  /// Connecting: stopConnecting(). Connected: loseConnection().
  void disconnect();

  /// "host:port" as given to connectTCP.
  std::string getDestination() const;
  State state() const { return state_; }
  /// The connection's transport while connected, else nullptr.
  Transport* transport() const;

 private:
  friend class Reactor;
  friend class TcpConnection;  // connectionLost()

  void handleEvents(uint32_t ready) override;
  // The first connect(), from connectTCP: if it cannot even begin (the
  // reactor is stopping) the factory still hears, on the next turn.
  void start();
  // The reactor is stopping: an attempt in progress, or a pending
  // connectLater(), ends now with a cancelled clientConnectionFailed.
  void abandon();
  void resolved(uint64_t attempt, absl::StatusOr<Address> address);
  void beginConnect(const Address& address);
  void connected();
  // Ends the attempt now; tells the factory now, or on the next loop turn
  // when `deferred` (inside a user's call).
  void fail(absl::Status reason, bool deferred);
  void reportFailure(const absl::Status& reason);
  void connectionLost(const absl::Status& reason);
  // After the factory heard how an attempt ended: stops the factory and
  // lets the reactor reap this connector, unless it connects again.
  void afterAttempt();
  void closeSocket();
  // Stops watching the socket and hands it over (-1 if there is none).
  int releaseSocket();
  bool idle() const;

  // Shared with a resolver thread: lets it reach the reactor only while
  // this connector exists.
  struct Handoff;

  Reactor* reactor_;
  std::string host_;
  int port_;
  ClientFactory* factory_;
  absl::Duration timeout_;
  std::optional<Address> bind_;
  State state_ = State::kDisconnected;
  uint64_t attempt_ = 0;      // tells stale resolver answers from current ones
  bool factory_started_ = false;
  bool failing_ = false;       // a deferred failure report is pending
  int fd_ = -1;
  bool registered_ = false;
  Address address_;
  DelayedCall timeout_call_;
  DelayedCall reconnect_call_;
  TcpConnection* connection_ = nullptr;
  std::shared_ptr<Handoff> handoff_;
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_TCP_CONNECTOR_H_
