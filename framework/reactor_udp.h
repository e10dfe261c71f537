#ifndef TWIST_FRAMEWORK_REACTOR_UDP_H_
#define TWIST_FRAMEWORK_REACTOR_UDP_H_

#include <stddef.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "framework/dual_stack.h"

namespace twist {

class DatagramProtocol;
class UdpPort;

/// UDP (Twisted's IReactorUDP). Reactor implements it. As in ReactorTCP,
/// the public call holds the defaults and forwards to a protected virtual
/// without any.
class ReactorUDP {
 public:
  virtual ~ReactorUDP() = default;

  /// Binds a UDP socket to `interface`:`port` (Twisted's listenUDP) and
  /// calls `protocol`'s startProtocol().
  ///  - `port`: 0..65535, 0 = any free port (UdpPort::getHost() says which).
  ///  - `interface`: a numeric address, as in Twisted: "" = every IPv4
  ///    interface, "::" = every interface, IPv4 included unless `dual_stack`
  ///    is kOff; "127.0.0.1", "::1", "[::1]" ...
  ///  - `maxPacketSize`: 1..65535; a longer datagram goes to
  ///    datagramTruncated(), never cut silently into datagramReceived().
  /// Errors: INVALID_ARGUMENT for a bad argument (a host name is one),
  /// FAILED_PRECONDITION if `protocol` already serves a port, the errno of
  /// socket/bind otherwise ("cannot listen on udp:[::1]:9000: Address
  /// already in use"). The port is owned by the implementation; the pointer
  /// stays valid for its lifetime. `protocol` is not owned (see
  /// DatagramProtocol for the callback order).
  absl::StatusOr<UdpPort*> listenUDP(int port, DatagramProtocol* protocol,
                                     absl::string_view interface = "",
                                     size_t maxPacketSize = 8192,
                                     DualStack dual_stack = DualStack::kOn) {
    return doListenUDP(port, protocol, interface, maxPacketSize, dual_stack);
  }

 protected:
  virtual absl::StatusOr<UdpPort*> doListenUDP(int port, DatagramProtocol* protocol,
                                               absl::string_view interface,
                                               size_t maxPacketSize,
                                               DualStack dual_stack) = 0;
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_REACTOR_UDP_H_
