// The chat_server program as a user runs it: its first line, a conversation
// over real sockets, --max_line, its errors and its clean exit on a signal.

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
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

// Over each stream transport the server can listen on: --listen on tcp
// (127.0.0.1), tcp6 (::1), a unix socket file and an abstract name.
using ChatServerTransportTest = testing::ServerProgramTest;

TEST_P(ChatServerTransportTest, ConversationMaxLineAndCleanExit) {
  absl::StatusOr<testing::ServerProgram> server =
      StartServer("examples/chat_server", {"--max_line=20"});
  ASSERT_TRUE(server.ok()) << server.status();
  Subprocess& p = server->process;
  const Address addr = server->address;

  absl::StatusOr<BlockingClient> a = BlockingClient::Connect(addr);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->ReadExpected("What's your name?\r\n"), "What's your name?\r\n");
  ASSERT_TRUE(a->SendAll("alice\n").ok());
  EXPECT_EQ(a->ReadExpected("Welcome, alice!\r\n"), "Welcome, alice!\r\n");

  absl::StatusOr<BlockingClient> b = BlockingClient::Connect(addr);
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_TRUE(b->SendAll("bob\r\nhi\r\n").ok());
  EXPECT_EQ(b->ReadExpected("What's your name?\r\nWelcome, bob!\r\n"),
            "What's your name?\r\nWelcome, bob!\r\n");
  EXPECT_EQ(a->ReadExpected("* bob has joined\r\n<bob> hi\r\n"),
            "* bob has joined\r\n<bob> hi\r\n");

  // --max_line=20: 20 bytes pass, 21 do not.
  ASSERT_TRUE(b->SendAll(std::string(20, 'x') + "\r\n" + std::string(21, 'y')).ok());
  EXPECT_EQ(a->ReadExpected("<bob> xxxxxxxxxxxxxxxxxxxx\r\n* bob has left\r\n"),
            "<bob> xxxxxxxxxxxxxxxxxxxx\r\n* bob has left\r\n");
  absl::StatusOr<std::string> rest = b->ReadToEof();
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(*rest, "Line too long.\r\n");

  p.Signal(SIGTERM);
  rest = a->ReadToEof();  // the server closes the others as it stops
  ASSERT_TRUE(rest.ok()) << rest.status();
  absl::StatusOr<int> status = p.Wait(kWait);
  ASSERT_TRUE(status.ok()) << status.status();
  ASSERT_TRUE(WIFEXITED(*status)) << "killed by signal " << WTERMSIG(*status);
  EXPECT_EQ(WEXITSTATUS(*status), 0);
  EXPECT_EQ(p.err(), "");
  if (transport() == testing::StreamTransport::kUnix) {
    EXPECT_NE(::access(addr.path().c_str(), F_OK), 0) << "SIGTERM removes the socket file";
  }
}

INSTANTIATE_TEST_SUITE_P(AllTransports, ChatServerTransportTest,
                         ::testing::ValuesIn(testing::AllStreamTransports()),
                         testing::TransportParamName);

// TCP-only below: errors about flags and ports.

void ExpectOneLineError(const std::vector<std::string>& args, const std::string& expected) {
  testing::ExpectOneLineFailure("examples/chat_server", args, expected);
}

TEST(ChatServerTest, BadFlags) {
  ExpectOneLineError({"--max_line=0"}, "chat_server: invalid --max_line 0: must be at least 1");
  ExpectOneLineError({"--port=70000"}, "chat_server: invalid --port 70000: must be 0..65535");
  ExpectOneLineError({"--reactor=kqueue"},
                     "chat_server: --reactor: unknown reactor 'kqueue': expected one of "
                     "epoll, poll, select");
}

// --threads=2: one room over two reactors. Round robin puts consecutive
// clients on alternate reactors; reuseport lets the kernel choose.
class ChatServerThreadsTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ChatServerThreadsTest, OneRoomOverTwoReactorsThenExitsZeroOnSigterm) {
  absl::StatusOr<testing::ServerProgram> server = testing::StartServerProgram(
      "examples/chat_server", {"--threads=2", absl::StrCat("--spread=", GetParam())});
  ASSERT_TRUE(server.ok()) << server.status();
  Subprocess* process = &server->process;
  const Address* addr = &server->address;
  auto expect = [](BlockingClient& c, const std::string& want) {
    EXPECT_EQ(c.ReadExpected(want), want);
  };

  absl::StatusOr<BlockingClient> a = BlockingClient::Connect(*addr);
  ASSERT_TRUE(a.ok()) << a.status();
  expect(*a, "What's your name?\r\n");
  ASSERT_TRUE(a->SendAll("alice\n").ok());
  expect(*a, "Welcome, alice!\r\n");
  // The name is the room's, on the other reactor too.
  absl::StatusOr<BlockingClient> b = BlockingClient::Connect(*addr);
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_TRUE(b->SendAll("alice\nbob\n").ok());
  expect(*b, "What's your name?\r\nName taken, please choose another.\r\nWelcome, bob!\r\n");
  expect(*a, "* bob has joined\r\n");
  absl::StatusOr<BlockingClient> c = BlockingClient::Connect(*addr);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->SendAll("carol\n").ok());
  expect(*c, "What's your name?\r\nWelcome, carol!\r\n");
  expect(*a, "* carol has joined\r\n");
  expect(*b, "* carol has joined\r\n");

  ASSERT_TRUE(b->SendAll("hi\n/me waves\n/nick bea\nbye\n").ok());
  expect(*b, "You are now bea.\r\n");
  const std::string from_b = "<bob> hi\r\n* bob waves\r\n* bob is now bea\r\n<bea> bye\r\n";
  expect(*a, from_b);
  expect(*c, from_b);
  ASSERT_TRUE(c->SendAll("/who\n").ok());
  expect(*c, "Online: alice, bea, carol\r\n");
  // Many lines at once: each once, in order, on both reactors.
  std::string lines, relayed;
  for (int i = 0; i < 500; ++i) {
    absl::StrAppend(&lines, "line ", i, "\n");
    absl::StrAppend(&relayed, "<alice> line ", i, "\r\n");
  }
  ASSERT_TRUE(a->SendAll(lines).ok());
  expect(*b, relayed);
  expect(*c, relayed);
  ASSERT_TRUE(a->SendAll("/who\n").ok());
  expect(*a, "Online: alice, bea, carol\r\n");

  process->Signal(SIGTERM);
  for (BlockingClient* client : {&*a, &*b, &*c}) {
    absl::StatusOr<std::string> rest = client->ReadToEof();  // closed as it stops
    ASSERT_TRUE(rest.ok()) << rest.status();
  }
  absl::StatusOr<int> status = process->Wait(kWait);
  ASSERT_TRUE(status.ok()) << status.status();
  ASSERT_TRUE(WIFEXITED(*status)) << "killed by signal " << WTERMSIG(*status);
  EXPECT_EQ(WEXITSTATUS(*status), 0);
  EXPECT_EQ(process->err(), "");
}

INSTANTIATE_TEST_SUITE_P(Spreads, ChatServerThreadsTest,
                         ::testing::Values("round_robin", "reuseport"));

TEST(ChatServerTest, PortInUse) {
  testing::BusyPort busy;
  ExpectOneLineError({absl::StrCat("--port=", busy.port())},
                     absl::StrCat("chat_server: cannot listen on 127.0.0.1:", busy.port(),
                                  ": Address already in use"));
}

}  // namespace
}  // namespace twist
