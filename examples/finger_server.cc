// A finger server on twist (RFC 1288; Twisted's tutorial server): a client
// sends a user name and gets that user's plan, read from --plans on the
// reactor's thread pool so that a slow read never holds up other clients.
//
//   mkdir plans && echo "Working on twist." > plans/alice
//   ./tools/bazel run //examples:finger_server -- --plans=$PWD/plans
//   echo alice | nc 127.0.0.1 1079

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "examples/listen_flags.h"
#include "examples/server_main.h"
#include "examples/usage.h"
#include "gflags/gflags.h"
#include "protocols/finger.h"

DEFINE_string(plans, "",
              "Directory with one file per user, named after the user: the "
              "plan that finger USER sends (required).");
DEFINE_int32(pool_threads, 4,
             "Threads of the reactor's pool that read the plans (Twisted's "
             "suggestThreadPoolSize; with --threads=N, each reactor has a pool "
             "of its own).");

int main(int argc, char** argv) {
  constexpr char kProgram[] = "finger_server";
  gflags::SetUsageMessage(
      "Finger server (RFC 1288): answers a user name with the user's plan from "
      "--plans, an empty query with the list of users.\n"
      "Usage: finger_server --plans=DIR [--host=127.0.0.1] [--port=1079] "
      "[--reactor=epoll]\n"
      "       finger_server --plans=DIR --listen=ENDPOINT [--listen=ENDPOINT ...]");
  // Port 1079, as in Twisted's finger tutorial (79 needs root).
  gflags::SetCommandLineOptionWithMode("port", "1079", gflags::SET_FLAGS_DEFAULT);
  if (absl::Status s = twist::ParseServerFlags(&argc, &argv); !s.ok()) {
    return twist::BadUsage(kProgram, s.message());
  }
  if (FLAGS_plans.empty()) {
    return twist::BadUsage(kProgram, "--plans is required: a directory with one file per user");
  }
  struct stat st;
  if (::stat(FLAGS_plans.c_str(), &st) != 0) {
    return twist::BadUsage(kProgram,
                           absl::StrCat("--plans ", FLAGS_plans, ": ", std::strerror(errno)));
  }
  if (!S_ISDIR(st.st_mode)) {
    return twist::BadUsage(kProgram, absl::StrCat("--plans ", FLAGS_plans, ": not a directory"));
  }
  if (FLAGS_pool_threads < 1 || FLAGS_pool_threads > 1024) {
    return twist::BadUsage(kProgram, absl::StrCat("invalid --pool_threads ", FLAGS_pool_threads,
                                                  ": must be 1..1024"));
  }
  twist::FingerOptions options;
  options.plans_dir = FLAGS_plans;
  // The factory needs the reactor (its thread pool), which ServeForever
  // makes: it builds one per reactor, each with a pool of its own.
  twist::Factory none;  // replaced before anything listens
  return twist::ServeForever(
      kProgram, &none,
      [&](twist::Reactor* reactor, twist::Factory*) -> std::unique_ptr<twist::Factory> {
        reactor->suggestThreadPoolSize(FLAGS_pool_threads);
        return std::make_unique<twist::FingerFactory>(reactor, options);
      });
}
