#include "framework/tcp_connection.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include <algorithm>
#include <utility>

namespace twist {
namespace {
absl::Status SetIntOption(int fd, int level, int name, bool enabled,
                          absl::string_view what) {
  int v = enabled ? 1 : 0;
  if (setsockopt(fd, level, name, &v, sizeof(v)) != 0) {
    return absl::ErrnoToStatus(errno, what);
  }
  return absl::OkStatus();
}
}  // namespace

TcpConnection::TcpConnection(ConnectionHost* reactor, int fd,
                             std::unique_ptr<Protocol> protocol,
                             const Address& peer)
    : StreamConnection(reactor, fd, std::move(protocol)) {
  memset(&peer_, 0, sizeof(peer_));
  memcpy(&peer_, peer.sockaddr_ptr(), std::min<size_t>(peer.length(), sizeof(peer_)));
}

Address TcpConnection::getPeer() const {
  return Address::FromSockaddr(&peer_.sa, sizeof(peer_));
}

Address TcpConnection::getHost() const {
  if (fd() < 0) return Address();
  absl::StatusOr<Address> a = Address::LocalOf(fd());
  return a.ok() ? a->unmapped() : Address();  // as the peer is (see Port)
}

absl::Status TcpConnection::setTcpNoDelay(bool enabled) {
  if (absl::Status s = checkOpen(); !s.ok()) return s;
  return SetIntOption(fd(), IPPROTO_TCP, TCP_NODELAY, enabled,
                      "setsockopt(TCP_NODELAY)");
}

absl::Status TcpConnection::setTcpKeepAlive(bool enabled) {
  if (absl::Status s = checkOpen(); !s.ok()) return s;
  return SetIntOption(fd(), SOL_SOCKET, SO_KEEPALIVE, enabled,
                      "setsockopt(SO_KEEPALIVE)");
}

}  // namespace twist
