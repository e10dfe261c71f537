// The seeds' 10086 menu bot: the protocol on a StringTransport with a task
// clock (every split, the flush of input without a line ending), then
// examples/menu_bot over loopback with a line client, a client that sends
// as the seed's does, and the seed's own Python client as a subprocess.

#include <signal.h>
#include <sys/wait.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "framework/string_transport.h"
#include "framework/task_clock.h"
#include "gtest/gtest.h"
#include "protocols/menu_bot.h"
#include "tests/subprocess.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using testing::BlockingClient;
using testing::ServerProgram;

const std::string kWelcome(kMenuWelcome);
const std::string kOperator(kMenuOperator);
const std::string kRetry(kMenuRetry);
constexpr absl::Duration kWait = absl::Seconds(20);

// The seed's strings, as the seed text has them (UTF-8 bytes written out so
// that an editor's re-encoding of this file cannot make the check agree
// with a wrong constant).
TEST(MenuBotUnitTest, StringsAreTheSeedsBytes) {
  EXPECT_EQ(kWelcome,
            "\xe6\xac\xa2\xe8\xbf\x8e\xe8\x87\xb4\xe7\x94\xb5 10086,"
            "\xe8\xaf\xb7\xe8\xbe\x93\xe5\x85\xa5"
            "1xxx,0\xe8\xbd\xac\xe4\xba\xba\xe5\xb7\xa5\xe6\x9c\x8d\xe5\x8a\xa1.");
  EXPECT_EQ(kOperator,
            "\xe9\x80\x9a\xe8\xbf\x87\xe5\x8f\xaf\xe8\x83\xbd\xe4\xbc\x9a\xe8\xa2\xab"
            "\xe5\xbd\x95\xe9\x9f\xb3.balabala\xe4\xb8\x80\xe5\xa4\xa7\xe6\x8e\xa8");
  EXPECT_EQ(kRetry, "\xe8\xaf\xb7\xe9\x87\x8d\xe6\x96\xb0\xe8\xbe\x93\xe5\x85\xa5.");
}

struct Caller {
  explicit Caller(absl::Duration flush_delay = absl::Milliseconds(200)) {
    MenuBotOptions options;
    options.flush_delay = flush_delay;
    bot = std::make_unique<MenuBot>(&clock, options);
    transport.connect(bot.get());
  }
  task::Clock clock;
  std::unique_ptr<MenuBot> bot;
  StringTransport transport;
};

TEST(MenuBotUnitTest, LinesGetAnswersEndedAsTheyWere) {
  Caller c;
  EXPECT_EQ(c.transport.take(), kWelcome);
  c.transport.receive("0\n");
  EXPECT_EQ(c.transport.take(), kOperator + "\n");
  c.transport.receive("1234\r\n0\r\n\n");
  EXPECT_EQ(c.transport.take(), kRetry + "\r\n" + kOperator + "\r\n" + kRetry + "\n");
  c.transport.receive("exit\r\n0\n");  // nothing after exit
  EXPECT_EQ(c.transport.take(), "");
  EXPECT_TRUE(c.transport.disconnecting());
  c.transport.disconnect();
}

TEST(MenuBotUnitTest, EverySplitOfAConversationGivesTheSameAnswers) {
  const std::string input = "0\r\n1xxx\n\xe4\xbd\xa0\xe5\xa5\xbd\r\n0\nexit\n";
  const std::string want = kOperator + "\r\n" + kRetry + "\n" + kRetry + "\r\n" + kOperator + "\n";
  for (size_t cut = 0; cut <= input.size(); ++cut) {
    // Whatever the pause between the pieces (shorter than the delay).
    Caller c;
    c.transport.take();
    c.transport.receive(input.substr(0, cut));
    c.clock.advance(absl::Milliseconds(150));
    c.transport.receive(input.substr(cut));
    c.clock.advance(absl::Seconds(1));
    EXPECT_EQ(c.transport.take(), want) << "cut at " << cut;
    EXPECT_TRUE(c.transport.disconnecting()) << "cut at " << cut;
    c.transport.disconnect();
  }
  // Byte by byte.
  Caller c;
  c.transport.take();
  for (char ch : input) {
    c.transport.receive(std::string(1, ch));
    c.clock.advance(absl::Milliseconds(100));
  }
  EXPECT_EQ(c.transport.take(), want);
  EXPECT_TRUE(c.transport.disconnecting());
  c.transport.disconnect();
}

TEST(MenuBotUnitTest, InputWithoutALineEndingIsAMessageAfterTheDelay) {
  Caller c(absl::Milliseconds(200));
  c.transport.take();
  c.transport.receive("0");
  c.clock.advance(absl::Milliseconds(199));
  EXPECT_EQ(c.transport.take(), "") << "answered before the delay";
  c.clock.advance(absl::Milliseconds(1));
  EXPECT_EQ(c.transport.take(), kOperator) << "the seed's bytes, no line ending";
  // A message in two reads, each within the delay of the last: one message.
  c.transport.receive("12");
  c.clock.advance(absl::Milliseconds(150));
  c.transport.receive("34");
  c.clock.advance(absl::Milliseconds(150));
  EXPECT_EQ(c.transport.take(), "");
  c.clock.advance(absl::Milliseconds(50));
  EXPECT_EQ(c.transport.take(), kRetry);
  c.transport.receive("ex");
  c.clock.advance(absl::Milliseconds(100));
  c.transport.receive("it");
  c.clock.advance(absl::Milliseconds(200));
  EXPECT_EQ(c.transport.take(), "");
  EXPECT_TRUE(c.transport.disconnecting());
  c.transport.disconnect();
  EXPECT_EQ(c.clock.pendingCalls(), 0u) << "a flush timer outlives the connection";
}

TEST(MenuBotUnitTest, ALineEndingCancelsTheFlush) {
  Caller c;
  c.transport.take();
  c.transport.receive("0");
  c.clock.advance(absl::Milliseconds(100));
  c.transport.receive("\n");
  EXPECT_EQ(c.transport.take(), kOperator + "\n");
  c.clock.advance(absl::Seconds(1));
  EXPECT_EQ(c.transport.take(), "") << "the flush ran after the line was answered";
  c.transport.disconnect();
}

TEST(MenuBotUnitTest, ZeroDelayTakesEachReadAsAMessage) {
  Caller c(absl::ZeroDuration());
  c.transport.take();
  c.transport.receive("0");
  EXPECT_EQ(c.transport.take(), kOperator);
  c.transport.receive("exit");
  EXPECT_TRUE(c.transport.disconnecting());
  c.transport.disconnect();
}

TEST(MenuBotUnitTest, AMessageTooLongClosesTheConnection) {
  Caller c;
  c.transport.take();
  c.transport.receive(std::string(1024, 'x') + "\r\n");
  EXPECT_EQ(c.transport.take(), kRetry + "\r\n") << "1024 bytes is allowed";
  c.transport.receive(std::string(1026, 'x'));
  EXPECT_TRUE(c.transport.disconnecting());
  c.transport.disconnect();
}

// ---- examples/menu_bot over loopback ---------------------------------------

const char kProgram[] = "examples/menu_bot";

void Stop(ServerProgram& server) {
  server.process.Signal(SIGTERM);
  absl::StatusOr<int> status = server.process.Wait(kWait);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << server.process.err();
  EXPECT_EQ(server.process.out(), "");
  EXPECT_EQ(server.process.err(), "");
}

TEST(MenuBotProgramTest, LineClientsConverseAtOnceAndIndependently) {
  // A long delay: any answer seen below came from a line ending, not a flush.
  absl::StatusOr<ServerProgram> server =
      testing::StartServerProgram(kProgram, {"--flush_delay=3600"});
  ASSERT_TRUE(server.ok()) << server.status();
  absl::StatusOr<BlockingClient> a = BlockingClient::Connect(server->address);
  absl::StatusOr<BlockingClient> b = BlockingClient::Connect(server->address);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->ReadExpected(kWelcome), kWelcome);
  EXPECT_EQ(b->ReadExpected(kWelcome), kWelcome);
  // b waits in the middle of a message while a talks: no thread of its own,
  // and no hold on a.
  ASSERT_TRUE(b->SendAll("e").ok());
  ASSERT_TRUE(a->SendAll("0\n").ok());
  EXPECT_EQ(a->ReadExpected(kOperator + "\n"), kOperator + "\n");
  ASSERT_TRUE(a->SendAll("1\r").ok());
  ASSERT_TRUE(a->SendAll("\n0\r\n").ok());
  EXPECT_EQ(a->ReadExpected(kRetry + "\r\n" + kOperator + "\r\n"),
            kRetry + "\r\n" + kOperator + "\r\n");
  ASSERT_TRUE(b->SendAll("x").ok());
  ASSERT_TRUE(b->SendAll("it\n").ok());
  absl::StatusOr<std::string> rest = b->ReadToEof();
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(*rest, "") << "exit split over three sends";
  ASSERT_TRUE(a->SendAll("exit\r\n").ok());
  rest = a->ReadToEof();
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(*rest, "");
  Stop(*server);
}

TEST(MenuBotProgramTest, ASeedStyleClientGetsTheSeedsBytes) {
  absl::StatusOr<ServerProgram> server =
      testing::StartServerProgram(kProgram, {"--flush_delay=0.05"});
  ASSERT_TRUE(server.ok()) << server.status();
  absl::StatusOr<BlockingClient> c = BlockingClient::Connect(server->address);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->ReadExpected(kWelcome), kWelcome);
  ASSERT_TRUE(c->SendAll("0").ok());
  EXPECT_EQ(c->ReadExpected(kOperator), kOperator);
  ASSERT_TRUE(c->SendAll("1xxx").ok());
  EXPECT_EQ(c->ReadExpected(kRetry), kRetry);
  ASSERT_TRUE(c->SendAll("exit").ok());
  absl::StatusOr<std::string> rest = c->ReadToEof();
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(*rest, "");
  // A client that shuts down its side is answered at once, then hung up on.
  absl::StatusOr<BlockingClient> d = BlockingClient::Connect(server->address);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->ReadExpected(kWelcome), kWelcome);
  ASSERT_TRUE(d->SendAll("0").ok());
  d->ShutdownWrite();
  rest = d->ReadToEof();
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(*rest, kOperator);
  Stop(*server);
}

TEST(MenuBotProgramTest, TheSeedsPythonClientRunsUnchanged) {
  if (access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/python3";
  absl::StatusOr<ServerProgram> server = testing::StartServerProgram(kProgram, {});
  ASSERT_TRUE(server.ok()) << server.status();
  absl::StatusOr<testing::Subprocess> client = testing::Subprocess::Start(
      "/usr/bin/python3", {testing::RunfilePath("tests/menu_bot_seed_client.py"),
                           absl::StrCat(server->address.port())});
  ASSERT_TRUE(client.ok()) << client.status();
  // What a person types, one line each (input() strips the newline).
  ASSERT_TRUE(client->WriteStdin("0\n1xxx\n\xe4\xbd\xa0\xe5\xa5\xbd\nexit\n").ok());
  client->CloseStdin();
  absl::StatusOr<int> status = client->Wait(kWait);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << client->err();
  EXPECT_EQ(client->out(), "receive: " + kWelcome + "\nplease input:receive: " + kOperator +
                               "\nplease input:receive: " + kRetry +
                               "\nplease input:receive: " + kRetry + "\nplease input:");
  EXPECT_EQ(client->err(), "");
  Stop(*server);
}

TEST(MenuBotProgramTest, IdleCallersAreHungUpOnAndTheLimitHolds) {
  absl::StatusOr<ServerProgram> server = testing::StartServerProgram(
      kProgram, {"--idle_timeout=0.2", "--max_connections=1"});
  ASSERT_TRUE(server.ok()) << server.status();
  absl::StatusOr<BlockingClient> a = BlockingClient::Connect(server->address);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->ReadExpected(kWelcome), kWelcome);
  // One over the limit is closed at once, without the menu.
  absl::StatusOr<BlockingClient> b = BlockingClient::Connect(server->address);
  ASSERT_TRUE(b.ok());
  absl::StatusOr<std::string> got = b->ReadUntilClosed();
  EXPECT_TRUE(!got.ok() || got->empty()) << *got;
  // The one served says nothing and is hung up on.
  got = a->ReadToEof();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "");
  Stop(*server);
}

TEST(MenuBotProgramTest, DefaultPortIsTheSeeds) {
  // Only the flag's default is checked (8002 may be taken on this machine).
  absl::StatusOr<testing::Subprocess> p = testing::Subprocess::Start(
      testing::RunfilePath(kProgram), {"--helpfull"});
  ASSERT_TRUE(p.ok());
  absl::StatusOr<int> status = p->Wait(kWait);
  ASSERT_TRUE(status.ok());
  EXPECT_NE(p->out().find("default: 8002"), std::string::npos) << p->out();
}

TEST(MenuBotProgramTest, BadFlushDelay) {
  testing::ExpectOneLineFailure(kProgram, {"--flush_delay=-1"},
                                "menu_bot: invalid --flush_delay -1: must be 0..3600 seconds");
}

}  // namespace
}  // namespace twist
