// A chat client written as coroutines (framework/stream.h), the seeds'
// gevent style in C++: one straight-line loop prints what the server says,
// another sends what you type.
//
//   ./tools/bazel run //examples:coro_chat_client -- --port=8000 --name=alice
//
// Lines from the server go to stdout as they come; each line of stdin goes
// to the server. End of input (Ctrl-D) leaves the chat as /quit does. Exits
// 0 when the server closes the connection, 1 if it cannot connect or the
// connection fails, 2 on a bad flag.

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "examples/usage.h"
#include "framework/coro.h"
#include "framework/defer_to_thread.h"
#include "framework/endpoints.h"
#include "framework/errors.h"
#include "framework/hostname_endpoint.h"
#include "framework/reactor.h"
#include "framework/stream.h"
#include "gflags/gflags.h"

DEFINE_string(host, "127.0.0.1", "Chat server: a numeric address or a name.");
DEFINE_int32(port, 8000, "Chat server port, 1..65535.");
DEFINE_string(connect, "",
              "Endpoint to connect to, instead of --host/--port: "
              "tcp:host=H:port=P[:timeout=S] or unix:path=P[:timeout=S].");
DEFINE_string(name, "",
              "Answer the server's \"What's your name?\" with this; empty: type it.");
DEFINE_string(reactor, "epoll", "How to wait for sockets: epoll, poll or select.");
DEFINE_double(timeout, 10, "Seconds to wait for the connection to be made.");

namespace twist {
namespace {

constexpr char kProgram[] = "coro_chat_client";

// stdin, a line at a time, read on the reactor's thread pool: a blocking
// read() there keeps the loop free (Twisted's deferToThread). One read is in
// flight at a time, so the buffer needs no lock: each call's hand-off to the
// reactor's thread orders it before the next.
class StdinLines {
 public:
  // The next line without its "\n"; OUT_OF_RANGE at the end of input.
  absl::StatusOr<std::string> next() {
    for (;;) {
      if (size_t nl = buffered_.find('\n'); nl != std::string::npos) {
        std::string line = buffered_.substr(0, nl);
        buffered_.erase(0, nl + 1);
        return line;
      }
      if (eof_) {
        if (buffered_.empty()) return EndOfStream();
        return std::exchange(buffered_, "");  // a last line without "\n"
      }
      char chunk[4096];
      ssize_t n = ::read(STDIN_FILENO, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return absl::ErrnoToStatus(errno, "reading stdin");
      if (n == 0) eof_ = true;
      buffered_.append(chunk, static_cast<size_t>(n));
    }
  }

 private:
  std::string buffered_;
  bool eof_ = false;
};

// What you type, to the server, until stdin ends (then /quit) or the
// session is over (it cancels this).
Deferred<Unit> Type(Reactor* reactor, std::shared_ptr<Stream> server) {
  auto in = std::make_shared<StdinLines>();
  for (;;) {
    // Made before the co_await, not inside it: GCC 12 mishandles a lambda
    // temporary in a co_await expression (its captures are released twice).
    Deferred<std::string> next = deferToThread(reactor, [in] { return in->next(); });
    absl::StatusOr<std::string> line = co_await std::move(next);
    if (!line.ok()) {
      if (IsEndOfStream(line.status())) server->write("/quit\n");
      co_return absl::OkStatus();  // cancelled, or the end of input
    }
    server->write(*line + "\n");
    // Backpressure: a server that does not read holds the typing back.
    if (!(co_await server->drain()).ok()) co_return absl::OkStatus();
  }
}

// The session: connect, then print what the server says until it closes.
Deferred<Unit> Chat(Reactor* reactor, ClientEndpoint* endpoint, std::string name) {
  absl::StatusOr<std::shared_ptr<Stream>> server = co_await connectStream(*endpoint);
  if (!server.ok()) {
    co_return absl::Status(server.status().code(),
                           absl::StrCat("cannot connect to ", endpoint->describe(), ": ",
                                        server.status().message()));
  }
  if (!name.empty()) (*server)->write(name + "\n");
  Deferred<Unit> typing = Type(reactor, *server);
  absl::Status end;
  for (;;) {
    absl::StatusOr<std::string> line = co_await (*server)->readLine("\n", 64 * 1024);
    if (!line.ok()) {
      if (!IsEndOfStream(line.status())) end = line.status();
      break;
    }
    std::string text = *std::move(line);
    if (!text.empty() && text.back() == '\r') text.pop_back();
    text += '\n';
    fwrite(text.data(), 1, text.size(), stdout);
    fflush(stdout);
  }
  typing.cancel();  // its read of stdin is dropped with the thread pool
  co_return end;
}

int Main() {
  std::unique_ptr<ClientEndpoint> endpoint;
  ReactorOptions options;
  options.poller = FLAGS_reactor;
  absl::StatusOr<std::unique_ptr<Reactor>> reactor = Reactor::Create(options);
  if (!reactor.ok()) return BadUsage(kProgram, absl::StrCat("--reactor: ", reactor.status().message()));
  if (!(FLAGS_timeout > 0)) return BadUsage(kProgram, "--timeout must be more than 0 seconds");
  if (!FLAGS_connect.empty()) {
    if (!gflags::GetCommandLineFlagInfoOrDie("host").is_default ||
        !gflags::GetCommandLineFlagInfoOrDie("port").is_default) {
      return BadUsage(kProgram,
                      "--host/--port and --connect both name the server: use one or the other");
    }
    absl::StatusOr<ClientEndpointSpec> spec = ParseClientEndpoint(FLAGS_connect);
    if (!spec.ok()) {
      return BadUsage(kProgram,
                      absl::StrCat("--connect=", FLAGS_connect, ": ", spec.status().message()));
    }
    if (!spec->timeout.has_value()) spec->timeout = absl::Seconds(FLAGS_timeout);
    endpoint = clientFromSpec(reactor->get(), *std::move(spec));
  } else {
    if (FLAGS_port < 1 || FLAGS_port > 65535) {
      return BadUsage(kProgram, absl::StrCat("invalid --port ", FLAGS_port, ": must be 1..65535"));
    }
    endpoint = std::make_unique<HostnameEndpoint>(reactor->get(), FLAGS_host, FLAGS_port,
                                                  absl::Seconds(FLAGS_timeout));
  }
  if (absl::Status s = (*reactor)->installSignalHandlers(); !s.ok()) {
    return Fail(kProgram, s.message());
  }
  std::optional<absl::Status> outcome;
  Chat(reactor->get(), endpoint.get(), FLAGS_name).addBoth([&](absl::StatusOr<Unit> r) {
    outcome = r.status();
    (*reactor)->stop();
  });
  (*reactor)->run();
  // Stopped by a signal: before the session ended, or while connecting
  // (stopping the reactor cancels the attempt; nothing else cancels it).
  if (!outcome.has_value() || IsConnectCancelled(*outcome)) return 0;
  if (!outcome->ok()) return Fail(kProgram, outcome->message());
  return 0;
}

}  // namespace
}  // namespace twist

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "Chat client (coroutines): prints what the chat server says, sends what you type.\n"
      "Usage: coro_chat_client [--host=127.0.0.1] [--port=8000] [--name=NAME]\n"
      "       coro_chat_client --connect=ENDPOINT [--name=NAME]");
  if (absl::Status s = twist::ParseFlags(&argc, &argv); !s.ok()) {
    return twist::BadUsage("coro_chat_client", s.message());
  }
  if (argc > 1) return twist::BadUsage("coro_chat_client", absl::StrCat("unexpected argument '", argv[1], "'"));
  return twist::Main();
}
