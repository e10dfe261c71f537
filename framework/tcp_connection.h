#ifndef TWIST_FRAMEWORK_TCP_CONNECTION_H_
#define TWIST_FRAMEWORK_TCP_CONNECTION_H_

#include <netinet/in.h>

#include <memory>

#include "absl/status/status.h"
#include "framework/address.h"
#include "framework/protocol.h"
#include "framework/stream_connection.h"
#include "framework/transport.h"

namespace twist {

class ConnectionHost;

/// The transport of one TCP connection (Twisted's tcp.Connection): a
/// StreamConnection with IP addresses and TCP's options. Created and owned
/// by the reactor.
class TcpConnection final : public StreamConnection, public TcpTransport {
 public:
  TcpConnection(ConnectionHost* reactor, int fd, std::unique_ptr<Protocol> protocol,
                const Address& peer);

  Address getPeer() const override;
  /// Asked of the kernel (getsockname): not kept, to keep idle connections
  /// small. Unspecified once the connection is closed.
  Address getHost() const override;
  absl::Status setTcpNoDelay(bool enabled) override;
  absl::Status setTcpKeepAlive(bool enabled) override;

 private:
  // The peer as accept() or connect() gave it: 28 bytes, where an Address
  // (which can hold a Unix path) takes 116.
  union {
    sockaddr sa;
    sockaddr_in v4;
    sockaddr_in6 v6;
  } peer_;
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_TCP_CONNECTION_H_
