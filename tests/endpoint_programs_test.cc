// The example programs' endpoint flags as a user runs them: every server's
// repeatable --listen=ENDPOINT with one "listening on ..." line per
// endpoint, in the order given, before any other output; echo (and chat)
// over each endpoint; echo_client's --connect=ENDPOINT; and a bad endpoint
// as one line on stderr and exit 2.

#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
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

Subprocess Start(const std::string& program, const std::vector<std::string>& args) {
  absl::StatusOr<Subprocess> p = Subprocess::Start(testing::RunfilePath(program), args);
  EXPECT_TRUE(p.ok()) << p.status();
  return *std::move(p);
}

// Reads the `n` first lines of stdout, each "listening on " + what it
// listens on, and returns those.
std::vector<std::string> ListeningLines(Subprocess& p, size_t n) {
  std::vector<std::string> where;
  for (size_t i = 0; i < n; ++i) {
    absl::StatusOr<std::string> line = p.ReadStdoutLine(kWait);
    if (!line.ok()) {
      ADD_FAILURE() << "line " << i + 1 << ": " << line.status() << "; stderr: " << p.err();
      break;
    }
    absl::string_view rest = *line;
    EXPECT_TRUE(absl::ConsumePrefix(&rest, "listening on ")) << *line;
    where.emplace_back(rest);
  }
  return where;
}

// "127.0.0.1:8000", "[::1]:8000", "udp:127.0.0.1:9000" -> the address.
Address AddressOf(absl::string_view where) {
  absl::ConsumePrefix(&where, "udp:");
  absl::StatusOr<Address> a = testing::ParseListening(where);
  EXPECT_TRUE(a.ok()) << where << ": " << a.status();
  return a.ok() ? *a : Address();
}

void ExpectEcho(const Address& to, const std::string& text) {
  absl::StatusOr<BlockingClient> c = BlockingClient::Connect(to);
  ASSERT_TRUE(c.ok()) << to.ToString() << ": " << c.status();
  ASSERT_TRUE(c->SendAll(text).ok());
  absl::StatusOr<std::string> back = c->ReadExactly(text.size());
  ASSERT_TRUE(back.ok()) << to.ToString() << ": " << back.status();
  EXPECT_EQ(*back, text) << to.ToString();
}

void ExpectCleanExit(Subprocess& p) {
  p.Signal(SIGTERM);
  absl::StatusOr<int> status = p.Wait(kWait);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status << " " << p.err();
}

TEST(EchoServerListen, OneLinePerEndpointInOrderAndEchoOnEach) {
  const bool v6 = testing::HasIPv6Loopback();
  std::vector<std::string> args = {"--listen=tcp:0:interface=127.0.0.1"};
  if (v6) args.push_back("--listen=tcp6:0:interface=\\:\\:1");
  args.push_back("--listen");  // the separate form: --listen ENDPOINT
  args.push_back("tcp:0:interface=127.0.0.1:backlog=8");
  Subprocess p = Start("examples/echo_server", args);
  std::vector<std::string> where = ListeningLines(p, args.size() - 1);
  ASSERT_EQ(where.size(), args.size() - 1);
  EXPECT_THAT(where[0], ::testing::MatchesRegex("127\\.0\\.0\\.1:[0-9]+"));
  if (v6) {
    EXPECT_THAT(where[1], ::testing::MatchesRegex("\\[::1\\]:[0-9]+"));
  }
  EXPECT_THAT(where.back(), ::testing::MatchesRegex("127\\.0\\.0\\.1:[0-9]+"));
  EXPECT_NE(where.front(), where.back());  // two ports, in the order given
  for (const std::string& w : where) ExpectEcho(AddressOf(w), "over " + w);
  ExpectCleanExit(p);
  EXPECT_EQ(p.out(), "");  // nothing after the listening lines
  EXPECT_EQ(p.err(), "");
}

TEST(EchoServerListen, UnixPathAndAbstractNameBesideTcp) {
  testing::SocketDir dir;
  const std::string path = dir.path("echo.sock");
  const std::string abstract = testing::SocketDir::AbstractName("echo");
  Subprocess p = Start("examples/echo_server",
                       {"--listen=unix:" + path, "--listen=tcp:0:interface=127.0.0.1",
                        "--listen=unix:" + abstract + ":lockfile=0"});
  std::vector<std::string> where = ListeningLines(p, 3);
  ASSERT_EQ(where.size(), 3u);
  EXPECT_EQ(where[0], "unix:" + path);
  EXPECT_THAT(where[1], ::testing::MatchesRegex("127\\.0\\.0\\.1:[0-9]+"));
  EXPECT_EQ(where[2], "unix:" + abstract);
  ExpectEcho(*Address::Unix(path), "over a path");
  ExpectEcho(AddressOf(where[1]), "over tcp");
  ExpectEcho(*Address::Unix(abstract), "over an abstract name");
  // echo_client through the Unix endpoint.
  Subprocess client = Start("examples/echo_client", {"--connect=unix:path=" + path,
                                                     "--connections=5", "--messages=2"});
  absl::StatusOr<int> status = client.Wait(kWait);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << client.err();
  EXPECT_TRUE(absl::StartsWith(client.out(), "connections=5 messages=10 ")) << client.out();
  EXPECT_EQ(::access(path.c_str(), F_OK), 0);
  EXPECT_EQ(::access((path + ".lock").c_str(), F_OK), 0);  // lockfile=1 by default
  ExpectCleanExit(p);
  // SIGTERM removed the socket file and its lock file.
  EXPECT_NE(::access(path.c_str(), F_OK), 0);
  EXPECT_NE(::access((path + ".lock").c_str(), F_OK), 0);
  EXPECT_EQ(p.err(), "");
}

TEST(EchoServerListen, HostAndPortAreTheShortFormOfOneTcpEndpoint) {
  Subprocess p = Start("examples/echo_server", {"--host=127.0.0.1", "--port=0"});
  std::vector<std::string> where = ListeningLines(p, 1);
  ASSERT_EQ(where.size(), 1u);
  EXPECT_THAT(where[0], ::testing::MatchesRegex("127\\.0\\.0\\.1:[0-9]+"));
  ExpectEcho(AddressOf(where[0]), "short");
  ExpectCleanExit(p);
}

TEST(ChatServerListen, ChatsAcrossTcpAndUnixEndpoints) {
  testing::SocketDir dir;
  const std::string path = dir.path("chat.sock");
  Subprocess p = Start("examples/chat_server",
                       {"--listen=tcp:0:interface=127.0.0.1", "--listen=unix:" + path});
  std::vector<std::string> where = ListeningLines(p, 2);
  ASSERT_EQ(where.size(), 2u);
  EXPECT_EQ(where[1], "unix:" + path);
  absl::StatusOr<BlockingClient> a = BlockingClient::Connect(AddressOf(where[0]));
  absl::StatusOr<BlockingClient> b = BlockingClient::Connect(*Address::Unix(path));
  ASSERT_TRUE(a.ok() && b.ok());
  const std::string prompt = "What's your name?\r\n";
  EXPECT_EQ(*a->ReadExactly(prompt.size()), prompt);
  EXPECT_EQ(*b->ReadExactly(prompt.size()), prompt);
  ASSERT_TRUE(a->SendAll("alice\n").ok());
  const std::string welcome_alice = "Welcome, alice!\r\n";
  EXPECT_EQ(*a->ReadExactly(welcome_alice.size()), welcome_alice);
  ASSERT_TRUE(b->SendAll("bob\n").ok());
  const std::string welcome_bob = "Welcome, bob!\r\n";
  EXPECT_EQ(*b->ReadExactly(welcome_bob.size()), welcome_bob);
  const std::string joined = "* bob has joined\r\n";
  EXPECT_EQ(*a->ReadExactly(joined.size()), joined);
  ASSERT_TRUE(a->SendAll("hello bob\n").ok());
  const std::string said = "<alice> hello bob\r\n";
  EXPECT_EQ(*b->ReadExactly(said.size()), said);
  ExpectCleanExit(p);
}

// A UDP socket on the loopback with bounded waits.
absl::StatusOr<std::string> UdpRoundTrip(const Address& to, const std::string& text) {
  int fd = ::socket(to.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ErrnoToStatus(errno, "socket");
  timeval tv{20, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string out;
  if (::sendto(fd, text.data(), text.size(), 0, to.sockaddr_ptr(), to.length()) < 0) {
    ::close(fd);
    return absl::ErrnoToStatus(errno, "sendto");
  }
  char buf[1024];
  ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
  const int error = errno;
  ::close(fd);
  if (n < 0) return absl::ErrnoToStatus(error, "recv");
  return std::string(buf, static_cast<size_t>(n));
}

TEST(UdpEchoServerListen, OneLinePerUdpEndpointAndEchoOnEach) {
  const bool v6 = testing::HasIPv6Loopback();
  std::vector<std::string> args = {"--listen=udp:0:interface=127.0.0.1"};
  if (v6) args.push_back("--listen=udp:0:interface=\\:\\:1");
  Subprocess p = Start("examples/udp_echo_server", args);
  std::vector<std::string> where = ListeningLines(p, args.size());
  ASSERT_EQ(where.size(), args.size());
  EXPECT_THAT(where[0], ::testing::MatchesRegex("udp:127\\.0\\.0\\.1:[0-9]+"));
  if (v6) {
    EXPECT_THAT(where[1], ::testing::MatchesRegex("udp:\\[::1\\]:[0-9]+"));
  }
  for (const std::string& w : where) {
    absl::StatusOr<std::string> back = UdpRoundTrip(AddressOf(w), "datagram to " + w);
    ASSERT_TRUE(back.ok()) << w << ": " << back.status();
    EXPECT_EQ(*back, "datagram to " + w);
  }
  ExpectCleanExit(p);
}

TEST(EchoClientConnect, EchoesThroughAnEndpoint) {
  Subprocess server = Start("examples/echo_server", {"--listen=tcp:0:interface=127.0.0.1"});
  std::vector<std::string> where = ListeningLines(server, 1);
  ASSERT_EQ(where.size(), 1u);
  const int port = AddressOf(where[0]).port();
  // A numeric host, then a name: localhost may well be ::1 first, where
  // nothing listens, and 127.0.0.1; the race finds the one that answers.
  for (const std::string& host : {std::string("127.0.0.1"), std::string("localhost")}) {
    Subprocess client = Start(
        "examples/echo_client",
        {absl::StrCat("--connect=tcp:host=", host, ":port=", port, ":timeout=10"),
         "--connections=20", "--messages=3", "--size=100"});
    absl::StatusOr<int> status = client.Wait(kWait);
    ASSERT_TRUE(status.ok()) << status.status();
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << host << ": " << client.err();
    EXPECT_TRUE(absl::StartsWith(client.out(), "connections=20 messages=60 bytes=6000 errors=0 "))
        << host << ": " << client.out();
  }
  ExpectCleanExit(server);
}

// One line on stderr, nothing on stdout, exit 2: bad usage.
void ExpectBadUsage(const std::string& program, const std::vector<std::string>& args,
                    const std::string& expected) {
  Subprocess p = Start(program, args);
  absl::StatusOr<int> status = p.Wait(kWait);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2)
      << program << " " << args[0] << ": status " << *status;
  EXPECT_EQ(p.out(), "") << args[0];
  EXPECT_EQ(p.err(), expected + "\n") << args[0];
}

// gflags would exit 1 with its own message; the programs say it their way.
TEST(BadFlags, AreOneLineAndExit2AndHelpExits0) {
  ExpectBadUsage("examples/echo_server", {"--bogus"}, "echo_server: unknown flag --bogus");
  ExpectBadUsage("examples/echo_server", {"--port=abc"},
                 "echo_server: --port=abc: not a valid int32");
  ExpectBadUsage("examples/echo_server", {"--port"}, "echo_server: --port needs a value");
  ExpectBadUsage("examples/chat_server", {"--nomax_line"}, "chat_server: unknown flag --nomax_line");
  ExpectBadUsage("examples/echo_client", {"--connections", "many"},
                 "echo_client: --connections=many: not a valid int32");
  ExpectBadUsage("examples/udp_echo_server", {"-reactor"}, "udp_echo_server: --reactor needs a value");
  Subprocess help = Start("examples/echo_server", {"--help"});
  absl::StatusOr<int> status = help.Wait(kWait);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  // The program's own flags, not gflags' internal ones.
  EXPECT_NE(help.out().find("--listen=ENDPOINT"), std::string::npos) << help.out();
  EXPECT_NE(help.out().find("-idle_timeout"), std::string::npos) << help.out();
  EXPECT_EQ(help.out().find("flagfile"), std::string::npos) << help.out();
}

TEST(BadEndpoints, AreOneLineAndExit2) {
  ExpectBadUsage("examples/echo_server", {"--listen=tpc:8000"},
                 "echo_server: --listen=tpc:8000: unknown endpoint type 'tpc' (a server "
                 "endpoint is tcp:, tcp6:, unix:, udp: or ssl:)");
  // A bad one after good ones: nothing is listened on, nothing printed.
  ExpectBadUsage("examples/echo_server",
                 {"--listen=tcp:0:interface=127.0.0.1", "--listen=tcp:70000"},
                 "echo_server: --listen=tcp:70000: port 70000 out of range (0..65535)");
  ExpectBadUsage("examples/echo_server", {"--listen=udp:9000"},
                 "echo_server: --listen=udp:9000: this server takes stream endpoints (tcp:, "
                 "tcp6:, unix:, ssl:)");
  ExpectBadUsage("examples/echo_server", {"--listen=tcp:0", "--port=8000"},
                 "echo_server: --host/--port and --listen both name where to listen: use "
                 "one or the other");
  ExpectBadUsage("examples/echo_server", {"--listen"}, "echo_server: --listen needs an endpoint");
  ExpectBadUsage("examples/chat_server", {"--listen=tcp:80:bogus=1"},
                 "chat_server: --listen=tcp:80:bogus=1: unknown parameter 'bogus' for a tcp "
                 "endpoint (tcp:PORT[:interface=ADDR][:backlog=N])");
  ExpectBadUsage("examples/chat_server", {"--listen=unix:/tmp/x:mode=999"},
                 "chat_server: --listen=unix:/tmp/x:mode=999: mode '999' is not an octal "
                 "permission (0 to 0777, such as 0600)");
  ExpectBadUsage("examples/udp_echo_server", {"--listen=tcp:0"},
                 "udp_echo_server: --listen=tcp:0: this server takes datagram endpoints (udp:)");
  ExpectBadUsage("examples/udp_echo_server", {"--listen=udp:0:interface=localhost"},
                 "udp_echo_server: --listen=udp:0:interface=localhost: interface 'localhost' "
                 "is not a numeric IPv4 or IPv6 address");
  ExpectBadUsage("examples/echo_client", {"--connect=tpc:host=a:port=1"},
                 "echo_client: --connect=tpc:host=a:port=1: unknown endpoint type 'tpc' (a "
                 "client endpoint is tcp:, unix: or tls:)");
  ExpectBadUsage("examples/echo_client", {"--connect=tcp:host=a:port=70000"},
                 "echo_client: --connect=tcp:host=a:port=70000: port 70000 out of range "
                 "(1..65535)");
}

}  // namespace
}  // namespace twist
