#include "framework/unix_connection.h"

#include <errno.h>
#include <sys/socket.h>

#include <utility>

namespace twist {

UnixConnection::UnixConnection(ConnectionHost* reactor, int fd,
                               std::unique_ptr<Protocol> protocol,
                               const Address& peer)
    : StreamConnection(reactor, fd, std::move(protocol)) {
  if (!peer.path().empty()) peer_ = std::make_unique<const Address>(peer);
}

Address UnixConnection::getPeer() const {
  if (peer_ != nullptr) return *peer_;
  sockaddr_un unnamed = {};
  unnamed.sun_family = AF_UNIX;
  return Address::FromSockaddr(reinterpret_cast<const sockaddr*>(&unnamed),
                               sizeof(sa_family_t));
}

Address UnixConnection::getHost() const {
  if (fd() < 0) return Address();
  absl::StatusOr<Address> a = Address::LocalOf(fd());
  return a.ok() ? *a : Address();
}

absl::StatusOr<PeerCredentials> UnixConnection::getPeerCredentials() const {
  if (absl::Status s = checkOpen(); !s.ok()) return s;
  ucred cred = {};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return absl::ErrnoToStatus(errno, "getsockopt(SO_PEERCRED)");
  }
  PeerCredentials c;
  c.pid = cred.pid;
  c.uid = cred.uid;
  c.gid = cred.gid;
  return c;
}

}  // namespace twist
