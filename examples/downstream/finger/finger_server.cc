// Finger server on twist (Twisted's finger tutorial):
//
//   ../../tools/bazel run //finger:finger_server -- --port=1079
//   echo moshez | nc 127.0.0.1 1079

#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "finger/finger.h"
#include "framework/reactor.h"
#include "gflags/gflags.h"
#include "serve/serve.h"

DEFINE_string(host, "127.0.0.1", "Interface to listen on (::1 for IPv6).");
DEFINE_int32(port, 1079, "TCP port to listen on; 0 picks a free one.");
DEFINE_string(users, "moshez=Happy and well",
              "The users, as NAME=TEXT entries separated by commas.");
DEFINE_double(timeout, 30,
              "Seconds a client has to send its request before it is closed.");

int main(int argc, char** argv) {
  constexpr char kProgram[] = "finger_server";
  gflags::SetUsageMessage(
      "Finger server: answers a user name with that user's entry.\n"
      "Usage: finger_server [--host=127.0.0.1] [--port=1079] "
      "[--users=NAME=TEXT,...] [--timeout=SECONDS]");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  absl::StatusOr<tutorial::UserTable> users = tutorial::ParseUsers(FLAGS_users);
  if (!users.ok()) return tutorial::Fail(kProgram, users.status().message());
  if (!(FLAGS_timeout > 0)) {
    return tutorial::Fail(kProgram, absl::StrCat("--timeout must be more than 0 seconds, not ",
                                                 FLAGS_timeout));
  }
  absl::StatusOr<std::unique_ptr<twist::Reactor>> reactor =
      twist::Reactor::Create();
  if (!reactor.ok()) return tutorial::Fail(kProgram, reactor.status().message());
  tutorial::FingerFactory factory(reactor->get(), *std::move(users),
                                  absl::Seconds(FLAGS_timeout));
  return tutorial::ListenAndRun(kProgram, **reactor, factory, FLAGS_host,
                                FLAGS_port);
}
