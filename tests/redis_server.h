#ifndef TWIST_TESTS_REDIS_SERVER_H_
#define TWIST_TESTS_REDIS_SERVER_H_

// A real redis-server for a test (issue 17): Debian's, installed by
// tools/setup.sh, started by the test itself on a free loopback port with
// persistence off, and stopped after. No test depends on a Redis already
// running.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/subprocess.h"
#include "tests/test_util.h"

namespace twist {
namespace testing {

/// The redis-server binary, or "" if it is not installed
/// ($TWIST_REDIS_SERVER, else /usr/bin/redis-server, else on $PATH).
std::string RedisServerBinary();

/// Skips the test with a clear message when redis-server is absent.
#define TWIST_REQUIRE_REDIS_SERVER()                                                   \
  do {                                                                                 \
    if (::twist::testing::RedisServerBinary().empty()) {                               \
      GTEST_SKIP() << "redis-server is not installed (tools/setup.sh installs it: "   \
                      "apt-get install redis-server)";                                 \
    }                                                                                  \
  } while (0)

/// One redis-server process on 127.0.0.1. Start() picks a free port (and
/// tries others if that one is taken before Redis binds it); Restart()
/// starts it again on the same port, as after a crash.
class RedisServer {
 public:
  /// `extra` goes on Redis's command line after the defaults, e.g.
  /// {"--requirepass", "pw"}.
  static absl::StatusOr<std::unique_ptr<RedisServer>> Start(std::vector<std::string> extra = {});
  ~RedisServer();

  int port() const { return port_; }
  /// "redis://127.0.0.1:PORT" (append "/db" or put ":pw@" in yourself).
  std::string url() const;
  bool running() const { return process_.has_value(); }

  /// SIGKILL, then waits for it to exit: a crash, with no goodbye to the
  /// clients.
  absl::Status Kill();
  /// SIGTERM, then waits for it to exit.
  absl::Status Stop();
  /// Starts it again on the same port with the same arguments.
  absl::Status Restart();

 private:
  RedisServer() = default;
  // Starts redis-server on port_ and waits for "Ready to accept
  // connections"; an error (and no process) if it did not get there.
  absl::Status Launch();

  std::string binary_;
  std::vector<std::string> extra_;
  SocketDir dir_;  // its working directory (empty: persistence is off)
  int port_ = 0;
  std::optional<Subprocess> process_;
};

}  // namespace testing
}  // namespace twist

#endif  // TWIST_TESTS_REDIS_SERVER_H_
