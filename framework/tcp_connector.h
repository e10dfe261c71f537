#ifndef TWIST_FRAMEWORK_TCP_CONNECTOR_H_
#define TWIST_FRAMEWORK_TCP_CONNECTOR_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "framework/address.h"
#include "framework/delayed_call.h"
#include "framework/poller.h"
#include "framework/protocol.h"

namespace twist {

class ClientFactory;
class ConnectionHost;
class StreamConnection;
class Transport;

/// One outgoing stream connection and its attempts (Twisted's IConnector),
/// made by Reactor::connectTCP or connectUNIX. Owned by the reactor.
///
/// Every attempt (connect()) ends with exactly one of the factory's
/// clientConnectionFailed() or (after a connection) clientConnectionLost(),
/// whatever the timing: stopping or destroying the reactor ends an attempt
/// in progress, and delivers a failure still waiting for its loop turn.
///
/// A name is resolved on the reactor's thread pool; every address it
/// resolves to (IPv6 and IPv4, in the resolver's order) is tried in turn
/// until one connects. The timeout covers the resolution and every address.
///
/// Lifetime: a connector lives while it is connecting, connected, or waiting
/// for a connectLater(). Once it is none of these after its factory's
/// clientConnectionFailed() or clientConnectionLost() returns, the reactor
/// destroys it at the end of that loop iteration: keep a Connector* past
/// those callbacks only by calling connect() or connectLater() in them.
class Connector final : private Selectable {
 public:
  enum class State { kDisconnected, kConnecting, kConnected };

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
  /// Connecting: stopConnecting(). Connected (from connectionMade() on):
  /// loseConnection().
  void disconnect();

  /// "host:port" as given to connectTCP; "unix:PATH" for connectUNIX.
  std::string getDestination() const;
  State state() const { return state_; }
  /// The connection's transport while connected (from the protocol's
  /// connectionMade() on, until its connectionLost()), else nullptr.
  Transport* transport() const;
  /// Expires when this connector is destroyed: lets whoever keeps a
  /// Connector* past the callbacks (ReconnectingClientFactory, an endpoint's
  /// ConnectingAttempt) tell whether it still exists.
  std::weak_ptr<const void> liveness() const { return alive_; }
  /// Counts the attempts connect() began: a handle on one attempt (an
  /// endpoint's ConnectingAttempt) stops that one only.
  uint64_t attemptNumber() const { return attempt_; }

  // ---- For the ConnectionHost that owns it (framework-internal) ----------
  // (What the connector asks of the host is in connection_host.h.)
  /// Made by the host's connectTCP, to host:port.
  Connector(ConnectionHost* reactor, std::string host, int port,
            ClientFactory* factory, absl::Duration timeout,
            std::optional<Address> bind_address);
  /// Made by the host's connectUNIX, to the Unix socket `path`.
  Connector(ConnectionHost* reactor, std::string path, ClientFactory* factory,
            absl::Duration timeout);
  /// The first connect(), right after construction: if it cannot even
  /// begin (the host is stopping) the factory still hears, on the next turn.
  void start();
  /// Whether abandon() has something to end.
  bool abandonable() const;
  /// The host is stopping: an attempt in progress, or a pending
  /// connectLater(), ends now with a cancelled clientConnectionFailed; a
  /// failure waiting for the next turn is delivered now.
  void abandon();
  /// Whether it has nothing left to do (not connecting, not connected, no
  /// connectLater pending, no failure to deliver): the host may destroy it.
  bool idle() const;
  /// The host's startConnection made `connection` from this connector's
  /// socket; called before the protocol's connectionMade, so transport()
  /// answers there.
  void attachConnection(StreamConnection* connection) { connection_ = connection; }
  /// The connection attached above lost: called by it right after its
  /// protocol's connectionLost, with the same reason.
  void connectionLost(const absl::Status& reason);

 private:
  void handleEvents(uint32_t ready) override;
  // Resolves host_ through Reactor::resolve; resolved() gets the answer.
  void resolve();
  void resolved(absl::StatusOr<std::vector<Address>> addresses);
  // Forgets the resolution under way, if any: its answer will not come.
  void cancelResolution();
  // Starts connecting to the next address to try; when every one has
  // failed, fails the attempt with the first address's reason.
  void tryNextAddress(bool deferred);
  // Starts a non-blocking connect; an error if it failed at once.
  absl::Status beginConnect(const Address& address);
  void connected();
  // Ends the attempt now; tells the factory now, or on the next loop turn
  // when `deferred` (inside a user's call).
  void fail(absl::Status reason, bool deferred);
  void reportFailure(const absl::Status& reason);
  void deliverPendingFailure();
  // After the factory heard how an attempt ended: stops the factory and
  // lets the reactor reap this connector, unless it connects again.
  void afterAttempt();
  void closeSocket();
  // Stops watching the socket and hands it over (-1 if there is none).
  int releaseSocket();

  ConnectionHost* reactor_;  // the reactor that owns this connector
  std::string host_;
  int port_;
  // A factory destroyed before the reactor (declared after it, say) is not
  // called again, as a port does for its factory.
  FactoryRef<ClientFactory> factory_;
  absl::Duration timeout_;
  std::optional<Address> bind_;
  State state_ = State::kDisconnected;
  uint64_t attempt_ = 0;      // an attempt begun inside startedConnecting() is newer
  uint64_t resolution_ = 0;   // Reactor::resolve's id while resolving, else 0
  bool factory_started_ = false;
  bool failing_ = false;       // a deferred failure report is pending
  absl::Status pending_failure_;  // what it will report
  DelayedCall failure_call_;      // when
  int fd_ = -1;
  bool registered_ = false;
  std::vector<Address> addresses_;  // to try, in order
  size_t next_address_ = 0;
  absl::Status first_error_;        // of the addresses tried so far
  DelayedCall timeout_call_;
  DelayedCall reconnect_call_;
  StreamConnection* connection_ = nullptr;
  // connectUNIX: the path, and the wait before trying a listener whose
  // backlog was full again (a non-blocking Unix connect does not queue).
  std::optional<std::string> unix_path_;
  absl::Duration backlog_wait_;
  DelayedCall backlog_retry_;
  // Expires with this connector (liveness()).
  std::shared_ptr<const char> alive_ = std::make_shared<const char>();
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_TCP_CONNECTOR_H_
