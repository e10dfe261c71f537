// The echo server's wrapping flags, from outside the program: --log_traffic
// writes each connection's traffic to PREFIX-N, --read_limit and
// --write_limit slow a fast client down to the limit, and bad values are
// one line and exit 2.

#include <signal.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using testing::BlockingClient;

std::string TempPrefix(absl::string_view name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name);
}

// One connection: `line` echoed, then a half-close answered by the close.
void EchoOnceAndClose(const Address& to, absl::string_view line) {
  absl::StatusOr<BlockingClient> c = BlockingClient::Connect(to);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->SendAll(line).ok());
  EXPECT_EQ(*c->ReadExactly(line.size()), line);
  c->ShutdownWrite();
  EXPECT_EQ(*c->ReadToEof(), "");
}

void StopAndExpectExitZero(testing::ServerProgram& server) {
  server.process.Signal(SIGTERM);
  absl::StatusOr<int> status = server.process.Wait(testing::kTimeout);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << server.process.err();
}

TEST(EchoServerWrappingTest, LogTrafficLogsEachConnection) {
  const std::string prefix = TempPrefix("echo-traffic");
  absl::StatusOr<testing::ServerProgram> server =
      testing::StartServerProgram("examples/echo_server", {"--log_traffic=" + prefix});
  ASSERT_TRUE(server.ok()) << server.status();
  for (absl::string_view line : {"hello\n", "bye\n"}) {
    ASSERT_NO_FATAL_FAILURE(EchoOnceAndClose(server->address, line));
  }
  // Once it has exited, every connection's log is complete.
  ASSERT_NO_FATAL_FAILURE(StopAndExpectExitZero(*server));
  for (int n : {1, 2}) {
    std::ifstream in(absl::StrCat(prefix, "-", n));
    std::stringstream log;
    log << in.rdbuf();
    const std::string line = n == 1 ? "hello\\n" : "bye\\n";
    EXPECT_EQ(log.str(), absl::StrCat("*\nC ", n, ": \"", line, "\"\nS ", n, ": \"", line,
                                      "\"\nC ", n, ": * write\nS ", n, ": *\nC ", n,
                                      ": OK\n"));
  }
}

// --workers: each worker numbers its connections from 1, so its logs are
// PREFIX-PID-N; before, the workers overwrote each other's PREFIX-N and
// half the connections' logs were lost.
TEST(EchoServerWrappingTest, LogTrafficWithWorkersKeepsEveryConnection) {
  const std::string dir = TempPrefix("workers-traffic");
  ASSERT_EQ(std::system(("rm -rf '" + dir + "' && mkdir -p '" + dir + "'").c_str()), 0);
  absl::StatusOr<testing::ServerProgram> server = testing::StartServerProgram(
      "examples/echo_server", {"--workers=2", "--log_traffic=" + dir + "/wl"});
  ASSERT_TRUE(server.ok()) << server.status();
  constexpr int kConnections = 12;
  for (int i = 0; i < kConnections; ++i) {
    ASSERT_NO_FATAL_FAILURE(EchoOnceAndClose(server->address, absl::StrCat("conn", i, "\n")));
  }
  ASSERT_NO_FATAL_FAILURE(StopAndExpectExitZero(*server));
  // Every connection's line is in exactly one file named wl-PID-N.
  std::string all;
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    std::vector<std::string> parts = absl::StrSplit(name, '-');
    ASSERT_EQ(parts.size(), 3u) << name;
    EXPECT_EQ(parts[0], "wl");
    int pid = 0, n = 0;
    EXPECT_TRUE(absl::SimpleAtoi(parts[1], &pid) && pid > 0) << name;
    EXPECT_TRUE(absl::SimpleAtoi(parts[2], &n) && n >= 1) << name;
    std::ifstream in(entry.path());
    std::stringstream log;
    log << in.rdbuf();
    all += log.str();
    ++files;
  }
  EXPECT_EQ(files, kConnections);
  for (int i = 0; i < kConnections; ++i) {
    EXPECT_NE(all.find(absl::StrCat("\"conn", i, "\\n\"")), std::string::npos) << "conn" << i;
  }
}

// --read_limit or --write_limit: either holds the echo back (the echo is
// its connection's producer, so the write limit pauses its reading).
class EchoServerLimitTest : public ::testing::TestWithParam<std::string> {};

TEST_P(EchoServerLimitTest, HoldsAFastClientBack) {
  constexpr int kLimit = 64 * 1024;  // bytes per second
  absl::StatusOr<testing::ServerProgram> server = testing::StartServerProgram(
      "examples/echo_server", {absl::StrCat("--", GetParam(), "=", kLimit)});
  ASSERT_TRUE(server.ok()) << server.status();
  absl::StatusOr<BlockingClient> c = BlockingClient::Connect(server->address);
  ASSERT_TRUE(c.ok()) << c.status();
  // 4 s worth: at most one second's worth and one 64 KiB read may pass at
  // once, so the echo takes at least 2 s (without the limit, milliseconds).
  const std::string data = testing::Pattern(4 * kLimit);
  const absl::Time start = absl::Now();
  absl::Status sent;
  std::thread sender([&] { sent = c->SendAll(data); });
  absl::StatusOr<std::string> back = c->ReadExactly(data.size());
  const absl::Duration took = absl::Now() - start;
  if (!back.ok()) c->Reset();  // unblocks the sender
  sender.join();
  ASSERT_TRUE(sent.ok()) << sent;
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(*back == data);
  EXPECT_GE(took, absl::Seconds(1.9)) << "--" << GetParam() << " did not slow the client";
}

INSTANTIATE_TEST_SUITE_P(Flags, EchoServerLimitTest,
                         ::testing::Values("read_limit", "write_limit"),
                         [](const auto& info) { return info.param; });

TEST(EchoServerWrappingTest, BadValuesAreOneLineAndExit2) {
  testing::ExpectOneLineFailure(
      "examples/echo_server", {"--read_limit=-1"},
      "echo_server: invalid --read_limit/--write_limit: must be >= 0 bytes per second");
  testing::ExpectOneLineFailure(
      "examples/echo_server", {"--log_traffic=" + TempPrefix("no/such/dir/x")},
      absl::StrCat("echo_server: --log_traffic: cannot write in ", TempPrefix("no/such/dir/"),
                   ": No such file or directory"));
}

}  // namespace
}  // namespace twist
