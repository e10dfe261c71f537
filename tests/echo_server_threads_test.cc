// echo_server --threads=N as a user runs it: the connections of one port
// served by N reactors (either spread), every byte echoed, SIGTERM ends
// every reactor and the program exits 0; bad --threads/--spread are usage
// errors. (chat_server --threads=N: tests/chat_server_test.cc.)

#include <signal.h>
#include <sys/wait.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/types/optional.h"
#include "gtest/gtest.h"
#include "tests/echoed_client.h"
#include "tests/subprocess.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using testing::BlockingClient;

constexpr char kServer[] = "examples/echo_server";
constexpr absl::Duration kWait = absl::Seconds(20);

class EchoServerThreadsTest
    : public ::testing::TestWithParam<std::tuple<testing::StreamTransport, std::string>> {};

TEST_P(EchoServerThreadsTest, EchoesOnEveryReactorThenExitsZeroOnSigterm) {
  const auto& [transport, spread] = GetParam();
  if (transport == testing::StreamTransport::kUnix && spread == "reuseport") {
    GTEST_SKIP() << "a unix socket has no SO_REUSEPORT (a usage error, tested below)";
  }
  testing::SocketDir dir;
  absl::StatusOr<testing::Subprocess> process = testing::Subprocess::Start(
      testing::RunfilePath(kServer),
      {"--threads=2", absl::StrCat("--spread=", spread),
       testing::ListenFlag(transport, &dir)});
  ASSERT_TRUE(process.ok()) << process.status();
  absl::StatusOr<std::string> first = process->ReadStdoutLine(kWait);
  ASSERT_TRUE(first.ok()) << first.status() << "; stderr: " << process->err();
  ASSERT_TRUE(absl::StartsWith(*first, "listening on ")) << *first;
  absl::StatusOr<Address> where = testing::ParseListening(first->substr(13));
  ASSERT_TRUE(where.ok()) << where.status();
  absl::optional<testing::ServerProgram> server;
  server.emplace(testing::ServerProgram{*std::move(process), *where});
  absl::StatusOr<std::vector<BlockingClient>> clients = testing::EchoedClients(
      server->address, 20, [](int i) { return absl::StrCat("client ", i, "\n"); });
  ASSERT_TRUE(clients.ok()) << clients.status();
  server->process.Signal(SIGTERM);
  // Every reactor closes its connections as it shuts down...
  for (BlockingClient& c : *clients) {
    absl::StatusOr<std::string> rest = c.ReadToEof();
    ASSERT_TRUE(rest.ok()) << rest.status();
    EXPECT_EQ(*rest, "");
  }
  // ... and the threads are joined: the program exits 0.
  absl::StatusOr<int> status = server->process.Wait(kWait);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << "status " << *status << ", stderr: " << server->process.err();
}

INSTANTIATE_TEST_SUITE_P(
    Spreads, EchoServerThreadsTest,
    ::testing::Combine(::testing::Values(testing::StreamTransport::kTcp,
                                         testing::StreamTransport::kUnix),
                       ::testing::Values("round_robin", "reuseport")),
    [](const auto& info) {
      return absl::StrCat(testing::TransportName(std::get<0>(info.param)), "_",
                          std::get<1>(info.param));
    });

TEST(EchoServerThreadsFlagsTest, BadThreadsAndSpreadAreUsageErrors) {
  testing::ExpectOneLineFailure(kServer, {"--threads=0", "--port=0"},
                                "echo_server: invalid --threads 0: must be 1..1024");
  testing::ExpectOneLineFailure(
      kServer, {"--threads=2", "--spread=random", "--port=0"},
      "echo_server: --spread: unknown spread 'random': round_robin or reuseport");
  testing::ExpectOneLineFailure(
      kServer, {"--threads=2", "--spread=reuseport", "--listen=unix:@twist-threads-test"},
      "echo_server: --spread=reuseport is for tcp endpoints: a unix socket cannot be "
      "shared; use --spread=round_robin");
}

}  // namespace
}  // namespace twist
