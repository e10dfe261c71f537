#ifndef TWIST_FRAMEWORK_UDP_PORT_H_
#define TWIST_FRAMEWORK_UDP_PORT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "framework/address.h"
#include "framework/datagram_protocol.h"
#include "framework/delayed_call.h"
#include "framework/poller.h"

namespace twist {

class ConnectionHost;

/// A bound UDP socket and its DatagramProtocol (Twisted's udp.Port),
/// returned by Reactor::listenUDP and owned by the reactor: the pointer
/// stays valid for the reactor's lifetime, listening or not.
class UdpPort final : public DatagramTransport, private Selectable {
 public:
  /// Most datagrams read per readiness event, so that a flood on one port
  /// cannot starve the others (Twisted bounds bytes, 256 KiB, instead).
  static constexpr int kMaxDatagramsPerEvent = 64;

  ~UdpPort() override;

  // DatagramTransport (see there).
  absl::Status write(absl::string_view datagram, const Address& addr) override;
  absl::Status write(absl::string_view datagram) override;
  absl::Status connect(absl::string_view host, int port) override;
  void stopListening() override;
  Address getHost() const override { return host_; }

  bool listening() const { return fd_ >= 0; }
  /// The socket's descriptor, -1 once stopped (Twisted's fileno()): for
  /// socket options the port does not offer.
  int fileno() const { return fd_; }
  size_t maxPacketSize() const { return max_packet_size_; }
  /// The address given to connect(), if any.
  std::optional<Address> connectedAddress() const { return peer_; }
  /// Datagrams write() dropped because the kernel's send buffer was full
  /// (EAGAIN/ENOBUFS): UDP has no backpressure, so they are counted, not
  /// queued or retried.
  uint64_t droppedWrites() const { return dropped_writes_; }
  /// Datagrams longer than maxPacketSize that arrived (datagramTruncated).
  uint64_t truncatedDatagrams() const { return truncated_; }
  DatagramProtocol* protocol() const { return protocol_; }

  // ---- For the ConnectionHost that owns it (framework-internal) ----------
  /// Binds the socket and registers it with the host's poller (the host's
  /// listenUDP's work, errors as listenUDP's); the protocol is not started
  /// yet. The host owns the port from then on.
  static absl::StatusOr<std::unique_ptr<UdpPort>> Listen(
      ConnectionHost* reactor, int port, DatagramProtocol* protocol,
      absl::string_view interface, size_t max_packet_size, bool dual_stack_if_any);
  /// Attaches the transport and calls startProtocol(), once, right after
  /// Listen(), inside the host's dispatch (it is a callback).
  void start();

 private:
  UdpPort(ConnectionHost* reactor, DatagramProtocol* protocol, int fd,
          const Address& host, size_t max_packet_size, bool dual_stack);

  void handleEvents(uint32_t ready) override;
  // The address a datagram to `addr` is sent to: an IPv4 one mapped into
  // IPv6 on a dual-stack socket. Fails on a family the socket cannot reach.
  absl::StatusOr<Address> destination(const Address& addr) const;
  absl::Status send(absl::string_view datagram, const Address* to);
  // Runs after the callback that asked for it, never inside it.
  void refused();
  // stopProtocol() and forgetting the protocol, once the socket is closed
  // and no callback of the protocol is running.
  void finishStop();
  bool protocolAlive() const { return !protocol_alive_.expired(); }

  ConnectionHost* reactor_;  // the reactor that owns this port
  DatagramProtocol* protocol_;
  std::weak_ptr<const void> protocol_alive_;  // protocol_ is not owned
  int fd_;
  Address host_;
  size_t max_packet_size_;
  bool dual_stack_;
  std::unique_ptr<char[]> buffer_;  // max_packet_size_ bytes
  std::optional<Address> peer_;
  uint64_t dropped_writes_ = 0;
  uint64_t truncated_ = 0;
  int in_callback_ = 0;        // > 0: a callback of protocol_ is running
  bool stop_pending_ = false;  // stopProtocol() still owed
  DelayedCall refused_call_;
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_UDP_PORT_H_
