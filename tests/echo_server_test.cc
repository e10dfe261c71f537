// The echo_server program as a user runs it: its flags, its first line, its
// errors and its exit on SIGTERM/SIGINT.

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
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

// The same tests check examples/coro_echo_server (coro_echo_server_test):
// same flags, same observable behaviour.
#ifdef TWIST_CORO_ECHO
constexpr char kName[] = "coro_echo_server";
#else
constexpr char kName[] = "echo_server";
#endif
const std::string kServer = absl::StrCat("examples/", kName);
std::string Named(absl::string_view message) { return absl::StrCat(kName, message); }

Subprocess StartServer(const std::vector<std::string>& args) {
  absl::StatusOr<Subprocess> p =
      Subprocess::Start(testing::RunfilePath(kServer), args);
  EXPECT_TRUE(p.ok()) << p.status();
  return *std::move(p);
}

// Parses "listening on HOST:PORT" (HOST may itself contain colons).
int PortOf(const std::string& line, const std::string& host) {
  std::string prefix = absl::StrCat("listening on ", host, ":");
  EXPECT_TRUE(absl::StartsWith(line, prefix)) << line;
  int port = 0;
  EXPECT_TRUE(absl::SimpleAtoi(line.substr(prefix.size()), &port)) << line;
  return port;
}

void ExpectOneLineError(const std::vector<std::string>& args,
                        const std::string& expected) {
  testing::ExpectOneLineFailure(kServer, args, expected);
}

// Each case over each stream transport the server can listen on: --listen
// on tcp (127.0.0.1), tcp6 (::1), a unix socket file and an abstract name.
using EchoServerTest = testing::ServerProgramTest;

TEST_P(EchoServerTest, EchoesThenExitsCleanlyOnSignal) {
  for (int sig : {SIGTERM, SIGINT}) {
    SCOPED_TRACE(sig == SIGTERM ? "SIGTERM" : "SIGINT");
    absl::StatusOr<testing::ServerProgram> server = StartServer(kServer, {});
    ASSERT_TRUE(server.ok()) << server.status();
    Subprocess& p = server->process;
    absl::StatusOr<BlockingClient> c = BlockingClient::Connect(server->address);
    ASSERT_TRUE(c.ok()) << c.status();
    ASSERT_TRUE(c->SendAll("ping\r\n").ok());
    EXPECT_EQ(*c->ReadExactly(6), "ping\r\n");
    p.Signal(sig);
    // The server closes our connection as it shuts down...
    absl::StatusOr<std::string> rest = c->ReadToEof();
    ASSERT_TRUE(rest.ok()) << rest.status();
    EXPECT_EQ(*rest, "");
    // ...and exits 0, having printed nothing else.
    absl::StatusOr<int> status = p.Wait(kWait);
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_TRUE(WIFEXITED(*status)) << "killed by signal " << WTERMSIG(*status);
    EXPECT_EQ(WEXITSTATUS(*status), 0);
    EXPECT_EQ(p.out(), "");
    EXPECT_EQ(p.err(), "");
    if (transport() == testing::StreamTransport::kUnix) {
      // ...removing its socket file and lock file.
      const std::string path = server->address.path();
      EXPECT_NE(::access(path.c_str(), F_OK), 0) << path;
      EXPECT_NE(::access((path + ".lock").c_str(), F_OK), 0) << path;
    }
  }
}

TEST_P(EchoServerTest, EchoesAMegabyteToAHalfClosedClientThenCloses) {
  absl::StatusOr<testing::ServerProgram> server = StartServer(kServer, {});
  ASSERT_TRUE(server.ok()) << server.status();
  absl::StatusOr<BlockingClient> c = BlockingClient::Connect(server->address);
  ASSERT_TRUE(c.ok()) << c.status();
  const std::string data = testing::Pattern(1 << 20, 12);
  // Written beside the reads: neither side's buffers hold a megabyte.
  std::thread writer([&] {
    EXPECT_TRUE(c->SendAll(data).ok());
    c->ShutdownWrite();
  });
  absl::StatusOr<std::string> got = c->ReadToEof();
  writer.join();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->size(), data.size());
  EXPECT_TRUE(*got == data) << "bytes lost, repeated or reordered";
}

TEST_P(EchoServerTest, EveryReactorServes) {
  for (const char* reactor : {"epoll", "poll", "select"}) {
    absl::StatusOr<testing::ServerProgram> server =
        StartServer(kServer, {absl::StrCat("--reactor=", reactor)});
    ASSERT_TRUE(server.ok()) << reactor << ": " << server.status();
    absl::StatusOr<BlockingClient> c = BlockingClient::Connect(server->address);
    ASSERT_TRUE(c.ok()) << c.status();
    ASSERT_TRUE(c->SendAll(reactor).ok());
    EXPECT_EQ(*c->ReadExactly(strlen(reactor)), reactor);
    server->process.Signal(SIGTERM);
    absl::StatusOr<int> status = server->process.Wait(kWait);
    ASSERT_TRUE(status.ok());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << reactor;
  }
}

INSTANTIATE_TEST_SUITE_P(AllTransports, EchoServerTest,
                         ::testing::ValuesIn(testing::AllStreamTransports()),
                         testing::TransportParamName);

// TCP-only below: the flags' forms (--listen, --host/--port), IPv6's
// dual-stack, and errors about ports and host names.

TEST(EchoServerFlags, ListenFlagsNameWhereItListens) {
  // Both forms of --listen, each its own port, in the order given (a server
  // that left --listen to gflags would keep only the last, or none).
  Subprocess p = StartServer({"--listen=tcp:0:interface=127.0.0.1", "--listen",
                              "tcp:0:interface=127.0.0.1"});
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<std::string> line = p.ReadStdoutLine(kWait);
    ASSERT_TRUE(line.ok()) << "line " << i + 1 << ": " << line.status() << " " << p.err();
    const int port = PortOf(*line, "127.0.0.1");
    EXPECT_NE(port, 8000) << "the default --port, not the --listen";
    absl::StatusOr<BlockingClient> c =
        BlockingClient::Connect(*Address::Parse("127.0.0.1", port));
    ASSERT_TRUE(c.ok()) << c.status();
    ASSERT_TRUE(c->SendAll("listen").ok());
    EXPECT_EQ(*c->ReadExactly(6), "listen");
  }
  p.Signal(SIGTERM);
  absl::StatusOr<int> status = p.Wait(kWait);
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << p.err();
  EXPECT_EQ(p.out(), "");
}

TEST(EchoServerFlags, ListensOnIPv6Loopback) {
  Subprocess p = StartServer({"--port=0", "--host=::1"});
  absl::StatusOr<std::string> line = p.ReadStdoutLine(kWait);
  if (!line.ok()) GTEST_SKIP() << "no IPv6 loopback here: " << p.err();
  int port = PortOf(*line, "[::1]");
  absl::StatusOr<BlockingClient> c = BlockingClient::Connect(*Address::Parse("::1", port));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->SendAll("v6").ok());
  EXPECT_EQ(*c->ReadExactly(2), "v6");
}

TEST(EchoServerFlags, DualStackServesAnIPv4Client) {
  Subprocess p = StartServer({"--port=0", "--host=::"});
  absl::StatusOr<std::string> line = p.ReadStdoutLine(kWait);
  if (!line.ok()) GTEST_SKIP() << "no IPv6 here (listening on '::' failed): " << p.err();
  int port = PortOf(*line, "[::]");
  absl::StatusOr<BlockingClient> c =
      BlockingClient::Connect(*Address::Parse("127.0.0.1", port));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->SendAll("v4").ok());
  EXPECT_EQ(*c->ReadExactly(2), "v4");
}

TEST(EchoServerFlags, PortOutOfRange) {
  ExpectOneLineError({"--port=70000"},
                     Named(": invalid --port 70000: must be 0..65535"));
  ExpectOneLineError({"--port=-1"},
                     Named(": invalid --port -1: must be 0..65535"));
}

TEST(EchoServerFlags, UnknownReactor) {
  ExpectOneLineError(
      {"--reactor=kqueue"},
      Named(": --reactor: unknown reactor 'kqueue': expected one of epoll, poll, select"));
}

TEST(EchoServerFlags, PortInUse) {
  testing::BusyPort busy;
  ExpectOneLineError({absl::StrCat("--port=", busy.port())},
                     absl::StrCat(kName, ": cannot listen on 127.0.0.1:", busy.port(),
                                  ": Address already in use"));
}

TEST(EchoServerFlags, HostThatIsNotAnAddress) {
  // .invalid never resolves (RFC 6761); the server inherits a resolver
  // bound of one second per query, should this machine's be slow to say so.
  setenv("RES_OPTIONS", "timeout:1 attempts:1", 1);
  Subprocess p = StartServer({"--host=no-such-host.invalid", "--port=0"});
  absl::StatusOr<int> status = p.Wait(kWait);
  ASSERT_TRUE(status.ok());
  EXPECT_NE(WEXITSTATUS(*status), 0);
  EXPECT_THAT(p.err(), ::testing::StartsWith(Named(": cannot resolve 'no-such-host.invalid'")));
  EXPECT_EQ(std::count(p.err().begin(), p.err().end(), '\n'), 1);
}

}  // namespace
}  // namespace twist
