// A UDP echo server on twist: every datagram goes back to its sender (the
// seeds' "UDP Demo", on a reactor).
//
//   ./tools/bazel run //examples:udp_echo_server -- --port=9000
//   python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM);
//               s.sendto(b"hi", ("127.0.0.1", 9000)); print(s.recvfrom(100))'

#include <stdio.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "examples/listen_flags.h"
#include "examples/usage.h"
#include "framework/datagram_protocol.h"
#include "framework/endpoints.h"
#include "framework/reactor.h"
#include "framework/udp_port.h"
#include "gflags/gflags.h"

DEFINE_string(reactor, "epoll", "How to wait for sockets: epoll, poll or select.");
DEFINE_int32(max_packet, 8192,
             "Longest datagram served, 1..65535 bytes; a longer one is not "
             "echoed (a cut copy would pass for the whole) and is reported once "
             "on stderr.");

namespace {

class UdpEcho : public twist::DatagramProtocol {
 public:
  void datagramReceived(absl::string_view data, const twist::Address& addr) override {
    // A reply that cannot go (buffer full, peer gone) is lost, as the
    // request could have been; the port counts the full-buffer case.
    transport()->write(data, addr).IgnoreError();
  }
};

constexpr char kProgram[] = "udp_echo_server";

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "UDP echo server: sends every datagram back to its sender.\n"
      "Usage: udp_echo_server [--host=127.0.0.1] [--port=9000] [--reactor=epoll] "
      "[--max_packet=8192]\n"
      "       udp_echo_server --listen=udp:PORT[:interface=ADDR] [--listen=...] [...]");
  // The same --host/--port/--listen as the stream servers; here the short
  // form is a udp: endpoint, on port 9000 by default.
  gflags::SetCommandLineOptionWithMode("port", "9000", gflags::SET_FLAGS_DEFAULT);
  if (absl::Status s = twist::ParseServerFlags(&argc, &argv); !s.ok()) {
    return twist::BadUsage(kProgram, s.message());
  }
  absl::StatusOr<std::vector<twist::ServerEndpointSpec>> specs =
      twist::ListenSpecs(/*datagram=*/true);
  if (!specs.ok()) return twist::BadUsage(kProgram, specs.status().message());
  if (FLAGS_max_packet < 1 || FLAGS_max_packet > 65535) {
    return twist::BadUsage(
        kProgram, absl::StrCat("invalid --max_packet ", FLAGS_max_packet, ": must be 1..65535"));
  }
  // One protocol per port (a DatagramProtocol has one transport, as in
  // Twisted); they outlive the reactor, which calls their stopProtocol.
  std::vector<std::unique_ptr<UdpEcho>> echoes;
  twist::ReactorOptions options;
  options.poller = FLAGS_reactor;
  absl::StatusOr<std::unique_ptr<twist::Reactor>> reactor = twist::Reactor::Create(options);
  if (!reactor.ok()) {
    return twist::BadUsage(kProgram, absl::StrCat("--reactor: ", reactor.status().message()));
  }
  // Before anything else can start a thread: only the signalfd sees them.
  if (absl::Status s = (*reactor)->installSignalHandlers(); !s.ok()) {
    return twist::Fail(kProgram, s.message());
  }
  // Every endpoint is bound before the first line is printed.
  std::vector<twist::ListeningPort> ports;
  for (twist::ServerEndpointSpec& spec : *specs) {
    std::unique_ptr<twist::ServerEndpoint> endpoint =
        twist::serverFromSpec(reactor->get(), std::move(spec));
    echoes.push_back(std::make_unique<UdpEcho>());
    absl::StatusOr<twist::ListeningPort> port =
        endpoint->listenDatagram(echoes.back().get(), FLAGS_max_packet);
    if (!port.ok()) return twist::Fail(kProgram, port.status().message());
    ports.push_back(*port);
  }
  twist::PrintListening(ports);
  (*reactor)->run();
  // Replies the kernel had no room for were dropped, not queued: say how
  // many, once, rather than a line per datagram while serving.
  uint64_t dropped = 0;
  for (const twist::ListeningPort& p : ports) dropped += p.udp()->droppedWrites();
  if (dropped > 0) {
    fprintf(stderr, "udp_echo_server: %llu replies dropped: the send buffer was full\n",
            static_cast<unsigned long long>(dropped));
  }
  return 0;
}
