#include "examples/server_main.h"

#include <stdio.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/poller.h"
#include "framework/reactor.h"
#include "framework/tcp_port.h"
#include "gflags/gflags.h"

DEFINE_string(host, "127.0.0.1",
              "Address to listen on: a numeric IPv4 or IPv6 address "
              "(\"::1\", \"0.0.0.0\") or \"localhost\".");
DEFINE_int32(port, 8000, "TCP port to listen on, 0..65535; 0 picks a free one.");
DEFINE_string(reactor, "epoll",
              "How to wait for sockets: epoll, poll or select.");
DEFINE_int32(backlog, 511, "listen(2) backlog: connections the kernel queues.");

namespace twist {
namespace {
int Fail(absl::string_view program, absl::string_view problem) {
  fprintf(stderr, "%s: %s\n", std::string(program).c_str(),
          std::string(problem).c_str());
  return 1;
}
}  // namespace

int ServeForever(absl::string_view program, Factory* factory) {
  if (FLAGS_port < 0 || FLAGS_port > 65535) {
    return Fail(program, absl::StrCat("invalid --port ", FLAGS_port,
                                      ": must be 0..65535"));
  }
  if (FLAGS_backlog < 1) {
    return Fail(program, absl::StrCat("invalid --backlog ", FLAGS_backlog,
                                      ": must be at least 1"));
  }
  ReactorOptions options;
  options.poller = FLAGS_reactor;
  absl::StatusOr<std::unique_ptr<Reactor>> reactor = Reactor::Create(options);
  if (!reactor.ok()) {
    return Fail(program, absl::StrCat("--reactor: ", reactor.status().message()));
  }
  // Before anything else can start a thread: the signals must stay blocked
  // everywhere so that only the reactor's signalfd sees them.
  if (absl::Status s = (*reactor)->installSignalHandlers(); !s.ok()) {
    return Fail(program, s.message());
  }
  absl::StatusOr<Port*> port =
      (*reactor)->listenTCP(FLAGS_port, factory, FLAGS_backlog, FLAGS_host);
  if (!port.ok()) return Fail(program, port.status().message());
  Address bound = (*port)->getHost();
  printf("listening on %s:%d\n", bound.host().c_str(), bound.port());
  fflush(stdout);
  (*reactor)->run();
  return 0;
}

}  // namespace twist
