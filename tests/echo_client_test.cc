// The echo_client program against the echo_server program, and against a
// server that corrupts or cuts its echo: the summary line, the exit status
// and the one-line errors, exactly as a user sees them.

#include <sys/wait.h>

#include <algorithm>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "framework/protocol.h"
#include "framework/reactor.h"
#include "framework/tcp_port.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using testing::Subprocess;

constexpr absl::Duration kWait = absl::Seconds(60);

struct ClientRun {
  int exit_code = -1;
  std::string out, err;
};

ClientRun RunClient(const std::vector<std::string>& args) {
  absl::StatusOr<Subprocess> p =
      Subprocess::Start(testing::RunfilePath("examples/echo_client"), args);
  EXPECT_TRUE(p.ok()) << p.status();
  absl::StatusOr<int> status = p->Wait(kWait);
  EXPECT_TRUE(status.ok()) << status.status();
  ClientRun r;
  EXPECT_TRUE(WIFEXITED(*status)) << "killed by signal " << WTERMSIG(*status);
  r.exit_code = WEXITSTATUS(*status);
  r.out = p->out();
  r.err = p->err();
  return r;
}

int StartEchoServer(std::unique_ptr<Subprocess>* server,
                    std::vector<std::string> args = {}) {
  absl::StatusOr<testing::ServerProgram> s =
      testing::StartServerProgram("examples/echo_server", std::move(args));
  if (!s.ok()) {
    ADD_FAILURE() << s.status();
    abort();
  }
  *server = std::make_unique<Subprocess>(std::move(s->process));
  return s->address.port();
}

TEST(EchoClientTest, TwoThousandConnectionsAgainstTheEchoServer) {
  std::unique_ptr<Subprocess> server;
  const int port = StartEchoServer(&server);
  ClientRun r = RunClient({absl::StrCat("--port=", port), "--connections=2000",
                     "--messages=5", "--size=100"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::regex_match(
      r.out, std::regex("connections=2000 messages=10000 bytes=1000000 errors=0 "
                        "seconds=[0-9]+\\.[0-9][0-9]\n")))
      << r.out;
  EXPECT_EQ(r.err, "");  // stderr is not a terminal: no progress
}

TEST(EchoClientTest, EveryReactorAndIPv6) {
  std::unique_ptr<Subprocess> server;
  const std::string port = absl::StrCat(StartEchoServer(&server, {"--host=::1"}));
  for (const char* reactor : {"epoll", "poll", "select"}) {
    ClientRun r = RunClient({"--host=::1", "--port=" + port, "--connections=200",
                       "--messages=3", absl::StrCat("--reactor=", reactor)});
    EXPECT_EQ(r.exit_code, 0) << reactor << ": " << r.err;
    EXPECT_TRUE(absl::StartsWith(r.out, "connections=200 messages=600 bytes=38400 errors=0 "))
        << reactor << ": " << r.out;
  }
}

TEST(EchoClientTest, NothingListeningIsOneLineOnStderr) {
  std::unique_ptr<Subprocess> server;
  const int port = StartEchoServer(&server);
  server.reset();  // killed: the port is closed now
  ClientRun r = RunClient({absl::StrCat("--port=", port), "--connections=50"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, absl::StrCat("echo_client: connection refused by 127.0.0.1:", port,
                                ": Connection refused\n"));
}

TEST(EchoClientTest, BadFlagsAreOneLineErrors) {
  ClientRun r = RunClient({"--port=70000"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.err, "echo_client: invalid --port 70000: must be 1..65535\n");
  r = RunClient({"--port=8000", "--connections=0"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.err, "echo_client: --connections, --messages and --size must be at least 1\n");
  r = RunClient({"--port=8000", "--reactor=kqueue"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(absl::StartsWith(r.err, "echo_client: --reactor: unknown reactor 'kqueue'"))
      << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
}

// Echoes, but changes one byte on every third connection and hangs up on
// every fifth before answering.
class Saboteur : public Protocol {
 public:
  explicit Saboteur(int id) : id_(id) {}
  void dataReceived(absl::string_view data) override {
    if (id_ % 5 == 4) {
      transport()->abortConnection();
      return;
    }
    std::string copy(data);
    if (id_ % 3 == 2) copy[0] ^= 1;
    transport()->write(copy);
  }

 private:
  int id_;
};

TEST(EchoClientTest, WrongOrMissingEchoesAreCountedAndFailTheRun) {
  int next = 0;
  Factory factory([&] { return std::make_unique<Saboteur>(next++); });
  auto reactor = testing::MakeReactor("epoll");
  absl::StatusOr<Port*> port = reactor->listenTCP(0, &factory, 128, "127.0.0.1");
  ASSERT_TRUE(port.ok());
  std::thread loop([&] { reactor->run(); });
  ClientRun r = RunClient({absl::StrCat("--port=", (*port)->getHost().port()),
                     "--connections=30", "--messages=2", "--size=10"});
  reactor->callFromThread([&] { reactor->stop(); });
  loop.join();
  EXPECT_EQ(r.exit_code, 1);
  // 30 connections: ids 4, 9, ..., 29 hang up (6); of the rest, ids 2, 5,
  // 8, ... that are not hung up get a wrong byte (8). 16 connections echo
  // both messages.
  EXPECT_TRUE(absl::StartsWith(r.out, "connections=30 messages=32 bytes=320 errors=14 "))
      << r.out;
  EXPECT_TRUE(absl::StartsWith(r.err, "echo_client: first failure: ")) << r.err;
}

}  // namespace
}  // namespace twist
