#ifndef TWIST_TESTS_SUBPROCESS_H_
#define TWIST_TESTS_SUBPROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "framework/address.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace twist {
namespace testing {

/// A program started by a test, with its stdout and stderr on pipes. Every
/// wait is bounded; the destructor kills the program if it is still running.
class Subprocess {
 public:
  /// max_open_files > 0 lowers the program's RLIMIT_NOFILE (soft and hard).
  static absl::StatusOr<Subprocess> Start(const std::string& path,
                                          const std::vector<std::string>& args,
                                          int max_open_files = 0);
  Subprocess(Subprocess&& other) noexcept;
  ~Subprocess();

  /// Writes to the program's stdin (a pipe; until CloseStdin() the program
  /// sees no end of input).
  absl::Status WriteStdin(absl::string_view data);
  void CloseStdin();
  /// The next line of stdout, without its newline.
  absl::StatusOr<std::string> ReadStdoutLine(absl::Duration timeout);
  void Signal(int sig);
  /// Waits until the program exits (its pipes close), collecting what it
  /// printed; returns its exit status as from waitpid.
  absl::StatusOr<int> Wait(absl::Duration timeout);
  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }
  pid_t pid() const { return pid_; }

 private:
  Subprocess() = default;
  pid_t pid_ = -1;
  int in_fd_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::string out_;  // stdout not yet returned by ReadStdoutLine
  std::string err_;
};

/// A server program that said "listening on HOST:PORT".
struct ServerProgram {
  Subprocess process;
  Address address;  // where it listens
};

/// Starts `program` (a runfile path such as "examples/echo_server") with
/// `args` as they are (a --listen of their own), and waits for its first
/// line, "listening on HOST:PORT". max_open_files as for Subprocess::Start.
absl::StatusOr<ServerProgram> StartListening(const std::string& program,
                                             const std::vector<std::string>& args,
                                             int max_open_files = 0);

/// Starts `program` (a runfile path such as "examples/echo_server") with
/// `args` and --port=0, and waits for its first line, "listening on
/// HOST:PORT". max_open_files as for Subprocess::Start.
absl::StatusOr<ServerProgram> StartServerProgram(const std::string& program,
                                                 std::vector<std::string> args,
                                                 int max_open_files = 0);

/// What a "listening on WHERE" line names: "127.0.0.1:8000", "[::1]:8000",
/// "unix:/run/echo.sock" or "unix:@name".
absl::StatusOr<Address> ParseListening(absl::string_view where);

/// The --listen flag that puts a server program on `transport`:
/// tcp:0:interface=127.0.0.1, tcp6:0:interface=\:\:1, unix:PATH (PATH in
/// `dir`, needed only there) or unix:@NAME (a fresh abstract name).
std::string ListenFlag(StreamTransport transport, const SocketDir* dir);

/// Every stream transport a server program's tests run over: tcp, tcp6,
/// unix and abstract (a program run is cheap).
std::vector<StreamTransport> AllStreamTransports();
/// "tcp6": the name INSTANTIATE_TEST_SUITE_P gives each instance.
std::string TransportParamName(const ::testing::TestParamInfo<StreamTransport>& info);

/// Base of a server program's tests that run once per stream transport
/// (TEST_P with AllStreamTransports() and TransportParamName). Skips tcp6
/// when ::1 cannot be bound here.
class ServerProgramTest : public ::testing::TestWithParam<StreamTransport> {
 protected:
  void SetUp() override;
  /// Starts `program` (a runfile path) with `args` and --listen on the
  /// transport under test (ListenFlag), and waits for its first line,
  /// "listening on WHERE". Fails unless WHERE has the transport's family
  /// (and, over Unix, the name asked for): each case really runs over it.
  absl::StatusOr<ServerProgram> StartServer(const std::string& program,
                                            std::vector<std::string> args);
  StreamTransport transport() const { return GetParam(); }

 private:
  SocketDir dir_;
};

/// Runs `program` (a runfile path) with `args` and expects it to fail the
/// way every twist program fails on bad input: a non-zero exit, nothing on
/// stdout, and exactly `expected_stderr` plus a newline on stderr.
void ExpectOneLineFailure(const std::string& program,
                          const std::vector<std::string>& args,
                          const std::string& expected_stderr);

/// Path of a binary in this test's runfiles, e.g. "examples/echo_server".
std::string RunfilePath(const std::string& relative);

}  // namespace testing
}  // namespace twist

#endif  // TWIST_TESTS_SUBPROCESS_H_
