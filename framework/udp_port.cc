#include "framework/udp_port.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "framework/errors.h"
#include "framework/connection_host.h"

namespace twist {
namespace {

// The largest UDP payload (IPv6's; IPv4's is 65507): a bigger buffer would
// never fill.
constexpr size_t kLargestDatagram = 65535;

}  // namespace

absl::StatusOr<std::unique_ptr<UdpPort>> UdpPort::Listen(
    ConnectionHost* reactor, int port, DatagramProtocol* protocol,
    absl::string_view interface, size_t max_packet_size, bool dual_stack_if_any) {
  if (protocol == nullptr) {
    return absl::InvalidArgumentError("listenUDP: the protocol is null");
  }
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid port ", port, ": must be 0..65535"));
  }
  if (max_packet_size < 1 || max_packet_size > kLargestDatagram) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid maxPacketSize ", max_packet_size, ": must be 1..", kLargestDatagram));
  }
  if (protocol->transport() != nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("the protocol already listens on udp:",
                     protocol->transport()->getHost().ToString()));
  }
  // A numeric address only, as in Twisted (InvalidAddressError otherwise).
  absl::StatusOr<Address> addr = Address::Parse(interface, port);
  if (!addr.ok()) return addr.status();
  const std::string where = absl::StrCat("cannot listen on udp:", addr->ToString());
  int fd = ::socket(addr->family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ErrnoToStatus(errno, where);
  // "::" serves IPv4 peers too (dual-stack) unless asked not to, whatever
  // the system's bindv6only default; a specific IPv6 address is IPv6 only.
  // No SO_REUSEADDR: on UDP it would let a second socket share the port.
  const bool dual_stack = addr->isIPv6Any() && dual_stack_if_any;
  if (addr->isIPv6()) {
    int v6only = dual_stack ? 0 : 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
  }
  if (::bind(fd, addr->sockaddr_ptr(), addr->length()) != 0) {
    absl::Status s = absl::ErrnoToStatus(errno, where);
    ::close(fd);
    return s;
  }
  absl::StatusOr<Address> bound = Address::LocalOf(fd);
  std::unique_ptr<UdpPort> p(new UdpPort(reactor, protocol, fd,
                                         bound.ok() ? *bound : *addr,
                                         max_packet_size, dual_stack));
  if (absl::Status s = reactor->poller().add(fd, kReadable, p.get()); !s.ok()) {
    ::close(fd);
    p->fd_ = -1;
    return absl::Status(s.code(), absl::StrCat(where, ": ", s.message()));
  }
  return p;
}

UdpPort::UdpPort(ConnectionHost* reactor, DatagramProtocol* protocol, int fd,
                 const Address& host, size_t max_packet_size, bool dual_stack)
    : reactor_(reactor),
      protocol_(protocol),
      protocol_alive_(protocol->liveness()),
      fd_(fd),
      host_(host),
      max_packet_size_(max_packet_size),
      dual_stack_(dual_stack),
      buffer_(new char[max_packet_size]) {}

UdpPort::~UdpPort() {
  stopListening();
  in_callback_ = 0;
  finishStop();
}

void UdpPort::start() {
  ++in_callback_;
  protocol_->makeConnection(this);
  --in_callback_;
  if (in_callback_ == 0) finishStop();
}

void UdpPort::stopListening() {
  if (fd_ < 0) return;
  refused_call_.cancel().IgnoreError();
  reactor_->poller().remove(fd_);
  ::close(fd_);
  fd_ = -1;
  stop_pending_ = true;
  // From inside one of the protocol's callbacks, stopProtocol() waits for
  // it to return (handleEvents or start calls finishStop then).
  if (in_callback_ == 0) finishStop();
}

void UdpPort::finishStop() {
  if (!stop_pending_) return;
  stop_pending_ = false;
  // A protocol destroyed first (declared after the reactor) is not called.
  if (!protocolAlive()) return;
  ++in_callback_;
  protocol_->doStop();
  --in_callback_;
}

absl::StatusOr<Address> UdpPort::destination(const Address& addr) const {
  if (addr.family() == host_.family()) return addr;
  if (dual_stack_ && addr.family() == AF_INET) {
    return Address::Parse(absl::StrCat("::ffff:", addr.host()), addr.port());
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "cannot send to ", addr.ToString(), " from the ",
      host_.isIPv6() ? "IPv6" : "IPv4", " port udp:", host_.ToString()));
}

absl::Status UdpPort::write(absl::string_view datagram, const Address& addr) {
  if (fd_ < 0) {
    return absl::FailedPreconditionError("write: the UDP port is not listening");
  }
  if (peer_.has_value()) {
    // As in Twisted: a connected port writes only to its peer.
    if (addr != *peer_) {
      return absl::InvalidArgumentError(
          absl::StrCat("write to ", addr.ToString(), ": the port is connected to ",
                       peer_->ToString()));
    }
    return send(datagram, nullptr);
  }
  if (addr.port() == 0 || addr.family() == AF_UNSPEC) {
    return absl::InvalidArgumentError(
        absl::StrCat("write: cannot send to ", addr.ToString()));
  }
  absl::StatusOr<Address> to = destination(addr);
  if (!to.ok()) return to.status();
  return send(datagram, &*to);
}

absl::Status UdpPort::write(absl::string_view datagram) {
  if (fd_ < 0) {
    return absl::FailedPreconditionError("write: the UDP port is not listening");
  }
  if (!peer_.has_value()) {
    return absl::FailedPreconditionError(
        "write without an address: the UDP port is not connected");
  }
  return send(datagram, nullptr);
}

absl::Status UdpPort::send(absl::string_view datagram, const Address* to) {
  ssize_t n;
  do {
    n = to != nullptr ? ::sendto(fd_, datagram.data(), datagram.size(), 0,
                                 to->sockaddr_ptr(), to->length())
                      : ::send(fd_, datagram.data(), datagram.size(), 0);
  } while (n < 0 && errno == EINTR);
  if (n >= 0) return absl::OkStatus();  // a datagram goes whole or not at all
  const int e = errno;
  const std::string dest = to != nullptr ? to->ToString() : peer_->ToString();
  switch (e) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
    case ENOBUFS:
      // No backpressure in UDP: the datagram is lost, as the network could
      // have lost it; waiting for writability instead would let one slow
      // path hold up every other peer.
      ++dropped_writes_;
      return absl::ResourceExhaustedError(absl::StrCat(
          "datagram of ", datagram.size(), " bytes to ", dest, " dropped: ", strerror(e)));
    case EMSGSIZE:
      return absl::InvalidArgumentError(absl::StrCat(
          "datagram of ", datagram.size(), " bytes to ", dest, " is too long: ", strerror(e)));
    case ECONNREFUSED:
      // The refusal was for an earlier datagram; this call consumed the
      // socket's pending error, so the protocol hears it from here.
      if (peer_.has_value()) refused();
      return ConnectError(e, dest);
    default:
      return absl::ErrnoToStatus(e, absl::StrCat("sending to ", dest));
  }
}

void UdpPort::refused() {
  // Deferred: write() may be called from inside one of the protocol's own
  // callbacks, and connectionRefused() must not run nested in it.
  if (refused_call_.active()) return;  // one report per pending refusal is enough
  refused_call_ = reactor_->time().callLater(absl::ZeroDuration(), [this] {
    if (fd_ < 0 || !protocolAlive()) return;
    ++in_callback_;
    protocol_->connectionRefused();
    --in_callback_;
    if (in_callback_ == 0) finishStop();
  });
}

absl::Status UdpPort::connect(absl::string_view host, int port) {
  if (fd_ < 0) {
    return absl::FailedPreconditionError("connect: the UDP port is not listening");
  }
  if (peer_.has_value()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "already connected to ", peer_->ToString(), "; reconnecting is not supported"));
  }
  if (host.empty() || port < 1 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "connect: need a numeric IPv4 or IPv6 address and a port 1..65535, got '",
        host, "' port ", port));
  }
  absl::StatusOr<Address> addr = Address::Parse(host, port);
  if (!addr.ok()) return addr.status();
  absl::StatusOr<Address> to = destination(*addr);
  if (!to.ok()) return to.status();
  if (::connect(fd_, to->sockaddr_ptr(), to->length()) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("connecting the UDP port to ",
                                                   addr->ToString()));
  }
  peer_ = *addr;
  return absl::OkStatus();
}

void UdpPort::handleEvents(uint32_t) {
  if (!protocolAlive()) {
    fprintf(stderr,
            "twist: the protocol of the UDP port on %s was destroyed; it stops listening\n",
            host_.ToString().c_str());
    stopListening();
    return;
  }
  sockaddr_storage ss;
  iovec iov;
  iov.iov_base = buffer_.get();
  iov.iov_len = max_packet_size_;
  for (int i = 0; i < kMaxDatagramsPerEvent && fd_ >= 0 && protocolAlive(); ++i) {
    msghdr msg;
    memset(&msg, 0, sizeof(msg));
    msg.msg_name = &ss;
    msg.msg_namelen = sizeof(ss);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    // MSG_TRUNC: the length returned is the datagram's, even when the
    // buffer was too small for it.
    ssize_t n = ::recvmsg(fd_, &msg, MSG_TRUNC);
    if (n < 0) {
      const int e = errno;
      if (e == EAGAIN || e == EWOULDBLOCK) break;
      if (e == ECONNREFUSED && peer_.has_value()) {
        ++in_callback_;
        protocol_->connectionRefused();
        --in_callback_;
      }
      // EINTR, or a pending ICMP error (refused on an unconnected socket,
      // unreachable host) that this read consumed: read on.
      continue;
    }
    // An IPv4 peer of a dual-stack port comes as ::ffff:a.b.c.d.
    Address from =
        Address::FromSockaddr(reinterpret_cast<const sockaddr*>(&ss), msg.msg_namelen)
            .unmapped();
    ++in_callback_;
    if ((msg.msg_flags & MSG_TRUNC) != 0 || static_cast<size_t>(n) > max_packet_size_) {
      ++truncated_;
      protocol_->datagramTruncated(absl::string_view(buffer_.get(), max_packet_size_),
                                   static_cast<size_t>(n), from);
    } else {
      protocol_->datagramReceived(absl::string_view(buffer_.get(), n), from);
    }
    --in_callback_;
  }
  if (in_callback_ == 0) finishStop();
}

}  // namespace twist
