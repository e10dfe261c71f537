#ifndef TWIST_FRAMEWORK_TCP_PORT_H_
#define TWIST_FRAMEWORK_TCP_PORT_H_

#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "framework/address.h"
#include "framework/delayed_call.h"
#include "framework/dual_stack.h"
#include "framework/poller.h"
#include "framework/protocol.h"
#include "framework/unix_socket_file.h"

namespace twist {

class ConnectionHost;

/// A TCP socket bound to `addr` (SO_REUSEADDR; SO_REUSEPORT if asked; an
/// IPv6 "::" also serves IPv4 unless dual_stack is off), not yet listening:
/// what Reactor::listenTCP and a ReactorPool's port probe share. The error
/// names the address ("cannot listen on ADDR: ...").
absl::StatusOr<int> BoundTcpSocket(const Address& addr, DualStack dual_stack, bool reuse_port);

/// A listening stream socket, TCP or Unix (Twisted's tcp.Port / unix.Port,
/// IListeningPort), returned by Reactor::listenTCP and listenUNIX and owned
/// by the reactor.
class Port final : private Selectable {
 public:
  ~Port() override;

  /// The bound address; the real port when 0 was asked for; for a Unix
  /// port, its path ("unix:/tmp/echo.sock") or abstract name.
  Address getHost() const { return host_; }
  /// Closes the listening socket; connections already accepted carry on.
  /// A Unix port removes the socket file it created (unless another has
  /// replaced it since) and its lock file. The factory's stopFactory() runs
  /// if this was its last port. Idempotent.
  void stopListening();
  bool listening() const { return fd_ >= 0; }
  /// The listening socket's descriptor, -1 once stopped (Twisted's
  /// fileno()): for socket options the port does not offer.
  int fileno() const { return fd_; }
  /// Accepts at most `per_second` connections a second on average, in
  /// bursts of at most `burst` (a token bucket on the reactor's clock);
  /// further connections wait in the kernel's backlog. per_second <= 0
  /// removes the limit.
  void setAcceptRateLimit(double per_second, int burst = 1);
  Factory* factory() const { return factory_.raw(); }

  /// Where accepted sockets go instead of this port's own reactor: `fd`
  /// (non-blocking, taken by the call) and its peer. A ReactorPool's round
  /// robin sets it, to hand each socket to the next reactor. Called on
  /// this port's reactor's thread, from its accept loop.
  using HandOff = absl::AnyInvocable<void(int fd, const Address& peer)>;
  void setHandOff(HandOff hand_off) { hand_off_ = std::move(hand_off); }

  // ---- For the ConnectionHost that owns it (framework-internal) ----------
  /// Made by the host's listenTCP or listenUNIX around a socket `fd` that is
  /// bound and listening, which the port takes, with `unix_file` (the socket
  /// file of a Unix port bound to a path; removed with the port).
  Port(ConnectionHost* reactor, Factory* factory, int fd, const Address& host,
       std::unique_ptr<UnixSocketFile> unix_file = nullptr);
  /// Starts watching for connections; the host calls the factory's
  /// doStart() after this succeeds. On failure the socket is closed and the
  /// port is done: it is not listening, and its factory is not stopped.
  absl::Status startListening();

 private:

  void handleEvents(uint32_t ready) override;
  // Stops accepting for `pause` (out of descriptors or kernel memory):
  // retrying at once would spin the loop.
  void backOff(absl::Duration pause);

  ConnectionHost* reactor_;  // the reactor that owns this port
  FactoryRef<Factory> factory_;  // not owned
  int fd_;
  Address host_;
  DelayedCall resume_;
  HandOff hand_off_;  // empty: this port's reactor serves the connections
  std::unique_ptr<UnixSocketFile> unix_file_;  // a Unix port bound to a path
  double rate_ = 0;  // accepts per second; 0 = unlimited
  double burst_ = 1;
  double tokens_ = 0;
  absl::Time refilled_;
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_TCP_PORT_H_
