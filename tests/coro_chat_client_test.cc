// The coroutine chat client (examples/coro_chat_client) against the real
// chat server, with a plain socket as the other user: what it prints, what
// it sends, how it leaves, and its exit status when it cannot connect.

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "framework/address.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using testing::BlockingClient;
using testing::Subprocess;

constexpr absl::Duration kWait = absl::Seconds(20);


std::string Line(Subprocess& p) {
  absl::StatusOr<std::string> line = p.ReadStdoutLine(kWait);
  return line.ok() ? *line : absl::StrCat("<", line.status().message(), ">");
}

class CoroChatClientTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CoroChatClientTest, ChatsPrintsWhatOthersSayAndLeavesAtEndOfInput) {
  // A client that writes to a dead program's stdin must not die of it.
  signal(SIGPIPE, SIG_IGN);
  absl::StatusOr<testing::ServerProgram> server =
      testing::StartServerProgram("examples/chat_server", {});
  ASSERT_TRUE(server.ok()) << server.status();
  absl::StatusOr<BlockingClient> bob = BlockingClient::Connect(server->address);
  ASSERT_TRUE(bob.ok()) << bob.status();
  ASSERT_TRUE(bob->SendAll("bob\n").ok());
  EXPECT_EQ(bob->ReadExpected("What's your name?\r\nWelcome, bob!\r\n"),
            "What's your name?\r\nWelcome, bob!\r\n");

  absl::StatusOr<Subprocess> alice = Subprocess::Start(
      testing::RunfilePath("examples/coro_chat_client"),
      {absl::StrCat("--port=", server->address.port()), "--name=alice",
       absl::StrCat("--reactor=", GetParam())});
  ASSERT_TRUE(alice.ok()) << alice.status();
  EXPECT_EQ(Line(*alice), "What's your name?");  // "\r\n" printed as "\n"
  EXPECT_EQ(Line(*alice), "Welcome, alice!");
  EXPECT_EQ(bob->ReadExpected("* alice has joined\r\n"), "* alice has joined\r\n");

  ASSERT_TRUE(alice->WriteStdin("hello\n").ok());
  EXPECT_EQ(bob->ReadExpected("<alice> hello\r\n"), "<alice> hello\r\n");
  ASSERT_TRUE(bob->SendAll("hi alice\n").ok());
  EXPECT_EQ(Line(*alice), "<bob> hi alice");
  ASSERT_TRUE(alice->WriteStdin("/who\n").ok());
  EXPECT_EQ(Line(*alice), "Online: alice, bob");

  alice->CloseStdin();  // leaves as /quit does
  EXPECT_EQ(Line(*alice), "Bye!");
  absl::StatusOr<int> status = alice->Wait(kWait);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status << alice->err();
  EXPECT_EQ(alice->err(), "");
  EXPECT_EQ(bob->ReadExpected("* alice has left\r\n"), "* alice has left\r\n");
}

TEST_P(CoroChatClientTest, NobodyListeningIsOneLineAndExitOne) {
  // Bound, not listening: a connection there is refused.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  Address any = *Address::Parse("127.0.0.1", 0);
  ASSERT_EQ(::bind(fd, any.sockaddr_ptr(), any.length()), 0);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  const int port = Address::LocalOf(fd)->port();
  absl::StatusOr<Subprocess> p = Subprocess::Start(
      testing::RunfilePath("examples/coro_chat_client"),
      {absl::StrCat("--port=", port), absl::StrCat("--reactor=", GetParam())});
  ASSERT_TRUE(p.ok()) << p.status();
  absl::StatusOr<int> status = p->Wait(kWait);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1) << *status;
  EXPECT_THAT(p->err(), ::testing::MatchesRegex(absl::StrCat(
                            "coro_chat_client: cannot connect to tcp:127.0.0.1:", port,
                            ": .*refused.*\n")));
  EXPECT_EQ(p->out(), "");
}

TEST_P(CoroChatClientTest, ABadFlagIsOneLineAndExitTwo) {
  absl::StatusOr<Subprocess> p =
      Subprocess::Start(testing::RunfilePath("examples/coro_chat_client"),
                        {"--connect=tpc:host=x:port=1", absl::StrCat("--reactor=", GetParam())});
  ASSERT_TRUE(p.ok()) << p.status();
  absl::StatusOr<int> status = p->Wait(kWait);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2) << *status;
  EXPECT_THAT(p->err(), ::testing::MatchesRegex(
                            "coro_chat_client: --connect=tpc:host=x:port=1: unknown endpoint "
                            "type 'tpc'.*\n"));
}

INSTANTIATE_TEST_SUITE_P(AllPollers, CoroChatClientTest,
                         ::testing::Values("epoll", "poll", "select"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace twist
