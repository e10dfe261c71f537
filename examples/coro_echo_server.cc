// The echo server written as a coroutine (framework/stream.h): the same
// flags and behaviour as echo_server, in straight-line code.
//
//   ./tools/bazel run //examples:coro_echo_server -- --port=8000

#include <memory>
#include <string>

#include "examples/listen_flags.h"
#include "examples/server_main.h"
#include "examples/usage.h"
#include "framework/coro.h"
#include "framework/stream.h"
#include "gflags/gflags.h"

namespace {

twist::Deferred<twist::Unit> Echo(std::shared_ptr<twist::Stream> stream) {
  for (;;) {
    // A view of what arrived, valid until the next co_await: no copy.
    absl::StatusOr<absl::string_view> data = co_await stream->readView();
    if (!data.ok()) co_return absl::OkStatus();  // the peer is gone
    stream->write(*data);
    // Backpressure: a client that does not read holds us here.
    if (!(co_await stream->drain()).ok()) co_return absl::OkStatus();
  }
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "Echo server (coroutines): sends back every byte it receives.\n"
      "Usage: coro_echo_server [--host=127.0.0.1] [--port=8000] [--reactor=epoll]\n"
      "       coro_echo_server --listen=ENDPOINT [--listen=ENDPOINT ...]");
  if (absl::Status s = twist::ParseServerFlags(&argc, &argv); !s.ok()) {
    return twist::BadUsage("coro_echo_server", s.message());
  }
  auto factory = twist::Factory::forProtocol<twist::StreamProtocol>(
      twist::StreamProtocol::Handler(&Echo));
  return twist::ServeForever("coro_echo_server", factory.get());
}
