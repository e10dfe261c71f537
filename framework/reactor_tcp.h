#ifndef TWIST_FRAMEWORK_REACTOR_TCP_H_
#define TWIST_FRAMEWORK_REACTOR_TCP_H_

#include <optional>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "framework/address.h"
#include "framework/dual_stack.h"

namespace twist {

class ClientFactory;
class Connector;
class Factory;
class Port;

/// TCP servers and clients (Twisted's IReactorTCP). Reactor implements it;
/// code that only listens or connects over TCP takes a ReactorTCP*, so it
/// says what it uses and a test can hand it a stand-in that records the
/// calls (Twisted's MemoryReactor; tests/memory_reactor.h).
///
/// The public calls are not virtual and hold the default arguments; each
/// forwards to a protected virtual without defaults that implementations
/// override. A default argument of a virtual function is taken from the
/// static type of the call, so defaults on the virtuals themselves could
/// differ between `reactor->listenTCP(...)` and `tcp->listenTCP(...)` for
/// the same object. Here there is one set of defaults, in one place.
class ReactorTCP {
 public:
  virtual ~ReactorTCP() = default;

  /// Listens on `interface`:`port` (port 0 = any free port; interface ""
  /// = every IPv4 interface, "::" = every interface, IPv4 included unless
  /// `dual_stack` is kOff) and builds a protocol with `factory` for each
  /// connection (Twisted's listenTCP). Errors: INVALID_ARGUMENT for a bad
  /// port or interface, the errno of socket/bind/listen otherwise ("cannot
  /// listen on 127.0.0.1:8000: Address already in use"). The port is owned
  /// by the implementation; the pointer stays valid for its lifetime.
  absl::StatusOr<Port*> listenTCP(int port, Factory* factory, int backlog = 50,
                                  absl::string_view interface = "",
                                  DualStack dual_stack = DualStack::kOn) {
    return doListenTCP(port, factory, backlog, interface, dual_stack);
  }

  /// Connects to host:port (Twisted's connectTCP). A name is resolved
  /// without blocking the loop, and each address it resolves to is tried in
  /// turn; the attempt fails after `timeout` (resolution included;
  /// InfiniteDuration: never). `bind_address` picks the local address.
  /// Returns the attempt's Connector; how it goes reaches `factory` on the
  /// reactor's thread. A factory destroyed first (declared after the
  /// reactor, say) is not called again; its connections still close.
  Connector* connectTCP(absl::string_view host, int port, ClientFactory* factory,
                        absl::Duration timeout = absl::Seconds(30),
                        std::optional<Address> bind_address = std::nullopt) {
    return doConnectTCP(host, port, factory, timeout, std::move(bind_address));
  }

 protected:
  virtual absl::StatusOr<Port*> doListenTCP(int port, Factory* factory, int backlog,
                                            absl::string_view interface,
                                            DualStack dual_stack) = 0;
  virtual Connector* doConnectTCP(absl::string_view host, int port, ClientFactory* factory,
                                  absl::Duration timeout,
                                  std::optional<Address> bind_address) = 0;
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_REACTOR_TCP_H_
