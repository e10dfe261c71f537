#ifndef TWIST_TESTS_MEMORY_REACTOR_H_
#define TWIST_TESTS_MEMORY_REACTOR_H_

#include <stddef.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "framework/address.h"
#include "framework/reactor_tcp.h"
#include "framework/reactor_udp.h"
#include "framework/reactor_unix.h"

namespace twist {
namespace testing {

/// A stand-in for the reactor's socket roles that only records what it is
/// asked (Twisted's twisted.internet.testing.MemoryReactor): code that takes
/// a ReactorTCP, ReactorUNIX or ReactorUDP can be checked for what it
/// listens on and connects to, with no sockets. It opens nothing, so it
/// cannot keep the roles' promise of a port or a connector: every listen
/// fails with UNAVAILABLE and every connect returns nullptr.
class MemoryReactor : public ReactorTCP, public ReactorUNIX, public ReactorUDP {
 public:
  struct TcpServer {
    int port;
    Factory* factory;
    int backlog;
    std::string interface;
    DualStack dual_stack;
  };
  struct TcpClient {
    std::string host;
    int port;
    ClientFactory* factory;
    absl::Duration timeout;
    std::optional<Address> bind_address;
  };
  struct UnixServer {
    std::string path;
    Factory* factory;
    int backlog;
    int mode;
    bool want_pid;
  };
  struct UnixClient {
    std::string path;
    ClientFactory* factory;
    absl::Duration timeout;
  };
  struct UdpServer {
    int port;
    DatagramProtocol* protocol;
    std::string interface;
    size_t max_packet_size;
    DualStack dual_stack;
  };

  // Twisted's names for the same lists.
  std::vector<TcpServer> tcpServers;
  std::vector<TcpClient> tcpClients;
  std::vector<UnixServer> unixServers;
  std::vector<UnixClient> unixClients;
  std::vector<UdpServer> udpServers;

 protected:
  absl::StatusOr<Port*> doListenTCP(int port, Factory* factory, int backlog,
                                    absl::string_view interface,
                                    DualStack dual_stack) override {
    tcpServers.push_back({port, factory, backlog, std::string(interface), dual_stack});
    return NoSockets();
  }
  Connector* doConnectTCP(absl::string_view host, int port, ClientFactory* factory,
                          absl::Duration timeout,
                          std::optional<Address> bind_address) override {
    tcpClients.push_back({std::string(host), port, factory, timeout, std::move(bind_address)});
    return nullptr;
  }
  absl::StatusOr<Port*> doListenUNIX(absl::string_view path, Factory* factory,
                                     int backlog, int mode, bool want_pid) override {
    unixServers.push_back({std::string(path), factory, backlog, mode, want_pid});
    return NoSockets();
  }
  Connector* doConnectUNIX(absl::string_view path, ClientFactory* factory,
                           absl::Duration timeout) override {
    unixClients.push_back({std::string(path), factory, timeout});
    return nullptr;
  }
  absl::StatusOr<UdpPort*> doListenUDP(int port, DatagramProtocol* protocol,
                                       absl::string_view interface, size_t max_packet_size,
                                       DualStack dual_stack) override {
    udpServers.push_back({port, protocol, std::string(interface), max_packet_size, dual_stack});
    return NoSockets();
  }

 private:
  static absl::Status NoSockets() {
    return absl::UnavailableError("MemoryReactor: no sockets, the call is only recorded");
  }
};

}  // namespace testing
}  // namespace twist

#endif  // TWIST_TESTS_MEMORY_REACTOR_H_
