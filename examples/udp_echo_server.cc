// A UDP echo server on twist: every datagram goes back to its sender (the
// seeds' "UDP Demo", on a reactor).
//
//   ./tools/bazel run //examples:udp_echo_server -- --port=9000
//   python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM);
//               s.sendto(b"hi", ("127.0.0.1", 9000)); print(s.recvfrom(100))'

#include <stdio.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "framework/datagram_protocol.h"
#include "framework/reactor.h"
#include "framework/udp_port.h"
#include "gflags/gflags.h"

DEFINE_string(host, "127.0.0.1",
              "Address to listen on: a numeric IPv4 or IPv6 address (\"::1\"; "
              "\"::\" serves IPv4 too).");
DEFINE_int32(port, 9000, "UDP port to listen on, 0..65535; 0 picks a free one.");
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

// Bad flags: one line on stderr, exit 2 (a usage error).
int BadFlag(const std::string& problem) {
  fprintf(stderr, "udp_echo_server: %s\n", problem.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "UDP echo server: sends every datagram back to its sender.\n"
      "Usage: udp_echo_server [--host=127.0.0.1] [--port=9000] [--reactor=epoll] "
      "[--max_packet=8192]");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (argc > 1) return BadFlag(absl::StrCat("unexpected argument '", argv[1], "'"));
  if (FLAGS_port < 0 || FLAGS_port > 65535) {
    return BadFlag(absl::StrCat("invalid --port ", FLAGS_port, ": must be 0..65535"));
  }
  if (FLAGS_max_packet < 1 || FLAGS_max_packet > 65535) {
    return BadFlag(
        absl::StrCat("invalid --max_packet ", FLAGS_max_packet, ": must be 1..65535"));
  }
  UdpEcho echo;  // outlives the reactor, which calls its stopProtocol
  twist::ReactorOptions options;
  options.poller = FLAGS_reactor;
  absl::StatusOr<std::unique_ptr<twist::Reactor>> reactor = twist::Reactor::Create(options);
  if (!reactor.ok()) {
    return BadFlag(absl::StrCat("--reactor: ", reactor.status().message()));
  }
  // Before anything else can start a thread: only the signalfd sees them.
  if (absl::Status s = (*reactor)->installSignalHandlers(); !s.ok()) {
    fprintf(stderr, "udp_echo_server: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  absl::StatusOr<twist::UdpPort*> port =
      (*reactor)->listenUDP(FLAGS_port, &echo, FLAGS_host, FLAGS_max_packet);
  if (!port.ok()) {
    // A host that is not an address is a bad flag; a port in use is not.
    if (absl::IsInvalidArgument(port.status())) {
      return BadFlag(absl::StrCat("--host: ", port.status().message()));
    }
    fprintf(stderr, "udp_echo_server: %s\n", std::string(port.status().message()).c_str());
    return 1;
  }
  printf("listening on udp:%s\n", (*port)->getHost().ToString().c_str());
  fflush(stdout);
  (*reactor)->run();
  return 0;
}
