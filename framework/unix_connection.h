#ifndef TWIST_FRAMEWORK_UNIX_CONNECTION_H_
#define TWIST_FRAMEWORK_UNIX_CONNECTION_H_

#include <memory>

#include "absl/status/statusor.h"
#include "framework/address.h"
#include "framework/protocol.h"
#include "framework/stream_connection.h"
#include "framework/transport.h"

namespace twist {

class ConnectionHost;

/// The transport of one Unix-domain stream connection (Twisted's
/// unix.Server / unix.Client): a StreamConnection with Unix names and the
/// peer's credentials. Created and owned by the reactor.
class UnixConnection final : public StreamConnection, public UnixTransport {
 public:
  /// `peer`: the client's name on the server side (unnamed unless the
  /// client bound one), the path connected to on the client side.
  UnixConnection(ConnectionHost* reactor, int fd, std::unique_ptr<Protocol> protocol,
                 const Address& peer);

  Address getPeer() const override;
  /// The listening path on the server's end; unnamed on a client's end
  /// that did not bind. Asked of the kernel; unspecified once closed.
  Address getHost() const override;
  absl::StatusOr<PeerCredentials> getPeerCredentials() const override;

 private:
  // Most peers are unnamed (clients rarely bind): no allocation for them.
  std::unique_ptr<const Address> peer_;
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_UNIX_CONNECTION_H_
