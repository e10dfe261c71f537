// echo_server --threads=N as a user runs it: the connections of one port
// served by N reactors (either spread), every byte echoed, SIGTERM ends
// every reactor and the program exits 0; bad --threads/--spread are usage
// errors. (chat_server --threads=N: tests/chat_server_test.cc.)

#include <signal.h>
#include <sys/wait.h>

#include <cctype>
#include <string>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "protocols/menu_bot.h"
#include "tests/echoed_client.h"
#include "tests/subprocess.h"
#include "tests/test_util.h"
#include "tests/tls_certs.h"

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
  absl::StatusOr<testing::ServerProgram> server = testing::StartListening(
      kServer, {"--threads=2", absl::StrCat("--spread=", spread),
                testing::ListenFlag(transport, &dir)});
  ASSERT_TRUE(server.ok()) << server.status();
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
  // Without --threads too: a typo must not wait for the day it is used.
  testing::ExpectOneLineFailure(
      kServer, {"--spread=foo", "--port=0"},
      "echo_server: --spread: unknown spread 'foo': round_robin or reuseport");
  testing::ExpectOneLineFailure(kServer, {"--threads=1025", "--port=0"},
                                "echo_server: invalid --threads 1025: must be 1..1024");
  testing::ExpectOneLineFailure(
      kServer, {"--threads=2", "--spread=reuseport", "--listen=unix:@twist-threads-test"},
      "echo_server: --spread=reuseport is for tcp endpoints: a unix socket cannot be "
      "shared; use --spread=round_robin");
}

// Round robin hands consecutive connections to reactors 0 and 1, so two
// clients connected in turn are one on each reactor.
std::vector<BlockingClient> OnePerReactor(const Address& to) {
  std::vector<BlockingClient> clients;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<BlockingClient> c = BlockingClient::Connect(to);
    EXPECT_TRUE(c.ok()) << c.status();
    if (c.ok()) clients.push_back(*std::move(c));
  }
  return clients;
}

void ExpectExitsZeroOnSigterm(testing::ServerProgram& server) {
  server.process.Signal(SIGTERM);
  absl::StatusOr<int> status = server.process.Wait(kWait);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << "status " << *status << ", stderr: " << server.process.err();
}

// --idle_timeout times each connection on its own reactor: a silent
// client on either reactor is closed.
TEST(EchoServerThreadsPoliciesTest, IdleTimeoutClosesSilentClientsOnEveryReactor) {
  absl::StatusOr<testing::ServerProgram> server =
      testing::StartServerProgram(kServer, {"--threads=2", "--idle_timeout=0.3"});
  ASSERT_TRUE(server.ok()) << server.status();
  std::vector<BlockingClient> clients = OnePerReactor(server->address);
  ASSERT_EQ(clients.size(), 2u);
  for (BlockingClient& c : clients) {
    ASSERT_TRUE(c.SendAll("ping\n").ok());
    EXPECT_EQ(c.ReadExpected("ping\n"), "ping\n");
  }
  for (BlockingClient& c : clients) {
    absl::StatusOr<std::string> rest = c.ReadToEof();
    ASSERT_TRUE(rest.ok()) << rest.status();
    EXPECT_EQ(*rest, "");
  }
  ExpectExitsZeroOnSigterm(*server);
}

// A program whose factory needs a reactor (hello_http's Site, the menu
// bot's flush timers) gets one per reactor with --threads.
TEST(EchoServerThreadsPoliciesTest, HelloHttpServesOnEveryReactor) {
  absl::StatusOr<testing::ServerProgram> server =
      testing::StartServerProgram("examples/hello_http", {"--threads=2"});
  ASSERT_TRUE(server.ok()) << server.status();
  std::vector<BlockingClient> clients = OnePerReactor(server->address);
  ASSERT_EQ(clients.size(), 2u);
  for (BlockingClient& c : clients) {
    ASSERT_TRUE(c.SendAll("GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok());
  }
  for (BlockingClient& c : clients) {
    absl::StatusOr<std::string> response = c.ReadToEof();
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_TRUE(absl::StartsWith(*response, "HTTP/1.1 200 ")) << *response;
    EXPECT_TRUE(absl::EndsWith(*response, "\r\n\r\nHello, World")) << *response;
  }
  ExpectExitsZeroOnSigterm(*server);
}

TEST(EchoServerThreadsPoliciesTest, MenuBotServesOnEveryReactor) {
  absl::StatusOr<testing::ServerProgram> server =
      testing::StartServerProgram("examples/menu_bot", {"--threads=2"});
  ASSERT_TRUE(server.ok()) << server.status();
  std::vector<BlockingClient> clients = OnePerReactor(server->address);
  ASSERT_EQ(clients.size(), 2u);
  for (BlockingClient& c : clients) {
    EXPECT_EQ(c.ReadExpected(kMenuWelcome), kMenuWelcome);
    // The seed's client: a message without a line ending, flushed by the
    // bot's timer on that reactor.
    ASSERT_TRUE(c.SendAll("0").ok());
    EXPECT_EQ(c.ReadExpected(kMenuOperator), kMenuOperator);
  }
  ExpectExitsZeroOnSigterm(*server);
}

// An ssl: endpoint served by several reactors or worker processes speaks
// TLS on every one of them: each reactor (each worker) wraps its
// connections itself. Four TLS clients at once (two per reactor with round
// robin) get their echo, verifying the certificate; a plain-text client gets
// no echo of its text.
constexpr char kTlsClients[] = R"(
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
conns = [ctx.wrap_socket(socket.create_connection(('127.0.0.1', port), timeout=20),
                         server_hostname='localhost') for _ in range(4)]
for i, c in enumerate(conns):
    c.sendall(b'tls %d\n' % i)
for i, c in enumerate(conns):
    want, got = b'tls %d\n' % i, b''
    while len(got) < len(want):
        d = c.recv(100)
        if not d:
            break
        got += d
    assert got == want, (i, got)
plain = socket.create_connection(('127.0.0.1', port), timeout=20)
plain.sendall(b'plain text\n')
got = b''
while True:
    d = plain.recv(100)
    if not d:
        break
    got += d
assert b'plain text' not in got, got
print('ok')
)";

class EchoServerTlsCoresTest : public ::testing::TestWithParam<std::vector<std::string>> {};

TEST_P(EchoServerTlsCoresTest, EveryReactorSpeaksTls) {
  const testing::TestCerts& certs = testing::Certs();
  std::vector<std::string> args = GetParam();
  args.push_back(absl::StrCat("--listen=ssl:0:interface=127.0.0.1:privateKey=",
                              certs.key("server"), ":certKey=", certs.pem("server")));
  absl::StatusOr<testing::ServerProgram> server = testing::StartListening(kServer, args);
  ASSERT_TRUE(server.ok()) << server.status();
  absl::StatusOr<testing::Subprocess> client = testing::Subprocess::Start(
      "/usr/bin/python3", {"-c", kTlsClients, absl::StrCat(server->address.port()),
                           certs.pem("ca")});
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<int> status = client->Wait(kWait);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(client->out(), "ok\n") << client->err() << "\nserver: " << server->process.err();
  ExpectExitsZeroOnSigterm(*server);
}

INSTANTIATE_TEST_SUITE_P(Cores, EchoServerTlsCoresTest,
                         ::testing::Values(std::vector<std::string>{"--threads=2"},
                                           std::vector<std::string>{"--threads=2",
                                                                    "--spread=reuseport"},
                                           std::vector<std::string>{"--workers=2"}),
                         [](const auto& info) {
                           std::string name =
                               absl::StrReplaceAll(absl::StrJoin(info.param, "_"), {{"--", ""}});
                           absl::c_replace_if(name, [](char c) { return !isalnum(c); }, '_');
                           return name;
                         });

}  // namespace
}  // namespace twist
