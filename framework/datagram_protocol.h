#ifndef TWIST_FRAMEWORK_DATAGRAM_PROTOCOL_H_
#define TWIST_FRAMEWORK_DATAGRAM_PROTOCOL_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "framework/address.h"

namespace twist {

/// What a DatagramProtocol writes through (Twisted's IUDPTransport). Unlike
/// a stream transport nothing is queued: a datagram goes to the kernel at
/// once or not at all, and write() says which.
class DatagramTransport {
 public:
  virtual ~DatagramTransport() = default;

  /// Sends one datagram to `addr` (a numeric address, as Twisted requires).
  /// Errors, never exceptions: INVALID_ARGUMENT for a datagram too long for
  /// the socket (EMSGSIZE, Twisted's MessageLengthError) or an address of
  /// the wrong family, RESOURCE_EXHAUSTED when the kernel's send buffer is
  /// full (the datagram is dropped and counted; see UdpPort::droppedWrites),
  /// FAILED_PRECONDITION once the port stopped listening. On a connected
  /// port `addr` must be the connected address.
  virtual absl::Status write(absl::string_view datagram, const Address& addr) = 0;
  /// Connected mode only: sends to the address given to connect(). A
  /// refusal (ICMP port unreachable) returns an error for which
  /// IsConnectionRefused() holds, and the protocol also hears
  /// connectionRefused() once the current callback returns.
  virtual absl::Status write(absl::string_view datagram) = 0;
  /// Connected UDP (Twisted's connect): `host` must be a numeric IPv4 or
  /// IPv6 address. From then on only datagrams from host:port arrive (the
  /// kernel drops the others), write(datagram) goes there, and an ICMP
  /// port-unreachable from it is reported as connectionRefused(). Once only:
  /// FAILED_PRECONDITION if already connected.
  virtual absl::Status connect(absl::string_view host, int port) = 0;
  /// Closes the socket; the protocol gets stopProtocol(). Idempotent.
  virtual void stopListening() = 0;
  /// The bound address; the real port when 0 was asked for.
  virtual Address getHost() const = 0;
};

/// The user's side of a UDP port (twisted.internet.protocol.DatagramProtocol).
/// One protocol serves one port at a time; it is not owned by the port.
///
/// Callback order: startProtocol() when the port starts listening; then
/// datagramReceived(), datagramTruncated() and connectionRefused() any
/// number of times; then stopProtocol() exactly once, when the port stops
/// listening (stopListening(), reactor shutdown or destruction). Nothing is
/// called after stopProtocol(), and transport() is null from then on.
/// stopProtocol() never runs nested inside another callback of the same
/// protocol: asked for from one, it runs when that callback returns.
///
/// The protocol may be destroyed while its port still listens (declared
/// after the reactor, say): the port then stops listening without calling
/// into it.
class DatagramProtocol {
 public:
  DatagramProtocol() = default;
  virtual ~DatagramProtocol() = default;
  DatagramProtocol(const DatagramProtocol&) = delete;
  DatagramProtocol& operator=(const DatagramProtocol&) = delete;

  virtual void startProtocol() {}
  virtual void stopProtocol() {}
  /// One whole datagram from `addr`. `data` points into a buffer the port
  /// reuses: copy what you keep. An IPv4 peer of a dual-stack ("::") port
  /// is reported as an IPv4 address, and write() accepts it back.
  virtual void datagramReceived(absl::string_view data, const Address& addr) {}
  /// A datagram of `full_size` bytes, longer than the port's maxPacketSize,
  /// arrived; `head` holds its first maxPacketSize bytes. Twisted cuts such
  /// a datagram silently and delivers the head as if it were whole; twist
  /// never passes it to datagramReceived. The default says so once per protocol
  /// on stderr; UdpPort::truncatedDatagrams() counts them all.
  virtual void datagramTruncated(absl::string_view head, size_t full_size,
                                 const Address& addr);
  /// Connected mode: the peer's port is closed (ICMP port unreachable,
  /// ECONNREFUSED from the socket). The port keeps listening.
  virtual void connectionRefused() {}

  /// The port while it listens, else null.
  DatagramTransport* transport() const { return transport_; }

  /// Called by the port, not by users (Twisted's makeConnection): attaches
  /// `transport` and calls startProtocol().
  void makeConnection(DatagramTransport* transport) {
    transport_ = transport;
    startProtocol();
  }
  /// Called by the port, not by users (Twisted's doStop): calls
  /// stopProtocol(), then detaches the transport.
  void doStop() {
    stopProtocol();
    transport_ = nullptr;
  }

  /// Expires when this protocol is destroyed: what the port checks before
  /// calling into it.
  std::weak_ptr<const void> liveness() const { return alive_; }

 private:
  DatagramTransport* transport_ = nullptr;
  bool warned_truncated_ = false;
  std::shared_ptr<const int> alive_ = std::make_shared<const int>(0);
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_DATAGRAM_PROTOCOL_H_
