#include "serve/serve.h"

#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "framework/tcp_port.h"

namespace tutorial {

int Fail(absl::string_view program, absl::string_view message) {
  std::fprintf(stderr, "%.*s: %.*s\n", static_cast<int>(program.size()),
               program.data(), static_cast<int>(message.size()), message.data());
  return 1;
}

int ListenAndRun(absl::string_view program, twist::Reactor& reactor,
                 twist::Factory& factory, absl::string_view host, int port) {
  // Signals first: nothing can fail after the port is listening.
  if (absl::Status s = reactor.installSignalHandlers(); !s.ok()) {
    return Fail(program, s.message());
  }
  absl::StatusOr<twist::Port*> listening =
      reactor.listenTCP(port, &factory, /*backlog=*/50, host);
  if (!listening.ok()) return Fail(program, listening.status().message());
  // A test or a script reads the port it got from this line (--port=0).
  std::printf("listening on %s\n",
              (*listening)->getHost().ToString().c_str());
  std::fflush(stdout);
  reactor.run();
  return 0;
}

}  // namespace tutorial
