// An echo server on twist: every byte a client sends comes back to it.
//
//   ./tools/bazel run //examples:echo_server -- --port=8000
//   nc 127.0.0.1 8000

#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <limits>
#include <memory>
#include <ostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "examples/listen_flags.h"
#include "examples/server_main.h"
#include "examples/usage.h"
#include "framework/protocol.h"
#include "gflags/gflags.h"
#include "protocols/echo.h"
#include "protocols/throttling.h"
#include "protocols/traffic_logging.h"

DECLARE_int32(threads);  // examples/server_main.cc
DECLARE_int32(workers);  // examples/server_main.cc

DEFINE_int64(read_limit, 0,
             "Most bytes per second read from all clients together (Twisted's "
             "ThrottlingFactory; with --threads=N each reactor gets an Nth); 0: no "
             "limit.");
DEFINE_int64(write_limit, 0,
             "Most bytes per second echoed to all clients together (the echo "
             "stops reading while over it; with --threads=N each reactor gets an "
             "Nth); 0: no limit.");
DEFINE_string(log_traffic, "",
              "Log each connection's traffic to the file PREFIX-N, N counting "
              "connections from 1 (Twisted's TrafficLoggingFactory; with --workers, "
              "PREFIX-PID-N, each worker counting its own); empty: no log.");

namespace {

// --workers: every worker numbers its connections from 1, so each one's
// logs carry its pid (PREFIX-PID-N) rather than overwrite another's.
class WorkerTrafficLog : public twist::TrafficLoggingFactory {
 public:
  using TrafficLoggingFactory::TrafficLoggingFactory;
  std::unique_ptr<std::ostream> open(const std::string& name) override {
    const size_t dash = name.rfind('-');
    return TrafficLoggingFactory::open(
        absl::StrCat(name.substr(0, dash), "-", getpid(), name.substr(dash)));
  }
};

}  // namespace

int main(int argc, char** argv) {
  constexpr char kProgram[] = "echo_server";
  gflags::SetUsageMessage(
      "Echo server: sends back every byte it receives.\n"
      "Usage: echo_server [--host=127.0.0.1] [--port=8000] [--reactor=epoll]\n"
      "       echo_server --listen=ENDPOINT [--listen=ENDPOINT ...] (tcp:8000,\n"
      "       tcp6:8000:interface=\\:\\:1, unix:/tmp/echo.sock, unix:@name)");
  if (absl::Status s = twist::ParseServerFlags(&argc, &argv); !s.ok()) {
    return twist::BadUsage(kProgram, s.message());
  }
  if (FLAGS_read_limit < 0 || FLAGS_write_limit < 0) {
    return twist::BadUsage(
        kProgram, "invalid --read_limit/--write_limit: must be >= 0 bytes per second");
  }
  auto echo = twist::Factory::forProtocol<twist::Echo>();
  twist::Factory* factory = echo.get();
  std::unique_ptr<twist::TrafficLoggingFactory> logged;
  if (!FLAGS_log_traffic.empty()) {
    // A log it cannot create would refuse every connection: say so now.
    const size_t slash = FLAGS_log_traffic.rfind('/');
    const std::string dir =
        slash == std::string::npos ? "." : FLAGS_log_traffic.substr(0, slash + 1);
    if (access(dir.c_str(), W_OK) != 0) {
      return twist::BadUsage(
          kProgram, absl::StrCat("--log_traffic: cannot write in ", dir, ": ", strerror(errno)));
    }
    logged = FLAGS_workers > 1
                 ? std::make_unique<WorkerTrafficLog>(factory, FLAGS_log_traffic)
                 : std::make_unique<twist::TrafficLoggingFactory>(factory, FLAGS_log_traffic);
    factory = logged.get();
  }
  // The throttle needs the reactor's time, so ServeForever makes it (one
  // per reactor): it wraps the traffic log, and the server's policies wrap
  // it. With --threads=N each reactor gets an Nth of the limits, which are
  // the process's.
  twist::WrapFactory wrap = nullptr;
  if (FLAGS_read_limit > 0 || FLAGS_write_limit > 0) {
    wrap = [](twist::Reactor* reactor, twist::Factory* f) -> std::unique_ptr<twist::Factory> {
      const int64_t share = std::max(1, FLAGS_threads);
      auto limit = [&](int64_t total) { return total == 0 ? 0 : std::max<int64_t>(1, total / share); };
      return std::make_unique<twist::ThrottlingFactory>(reactor, f, std::numeric_limits<int>::max(),
                                                        limit(FLAGS_read_limit),
                                                        limit(FLAGS_write_limit));
    };
  }
  return twist::ServeForever(kProgram, factory, std::move(wrap));
}
