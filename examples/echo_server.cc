// An echo server on twist: every byte a client sends comes back to it.
//
//   ./tools/bazel run //examples:echo_server -- --port=8000
//   nc 127.0.0.1 8000

#include "examples/listen_flags.h"
#include "examples/server_main.h"
#include "framework/protocol.h"
#include "gflags/gflags.h"
#include "protocols/echo.h"

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "Echo server: sends back every byte it receives.\n"
      "Usage: echo_server [--host=127.0.0.1] [--port=8000] [--reactor=epoll]\n"
      "       echo_server --listen=ENDPOINT [--listen=ENDPOINT ...] (tcp:8000,\n"
      "       tcp6:8000:interface=\\:\\:1, unix:/tmp/echo.sock, unix:@name)");
  if (absl::Status s = twist::ParseServerFlags(&argc, &argv); !s.ok()) {
    return twist::BadUsage("echo_server", s.message());
  }
  auto factory = twist::Factory::forProtocol<twist::Echo>();
  return twist::ServeForever("echo_server", factory.get());
}
