// The echo_server program against peers that misbehave, watched from
// outside: its memory with a client that never reads, its descriptors when
// accept runs out of them, and its idle-timeout and connection-limit flags.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <iostream>
#include <utility>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "framework/address.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using testing::BlockingClient;
using testing::ProcStatusKiB;
using testing::StreamByte;
using testing::Subprocess;

constexpr absl::Duration kWait = absl::Seconds(20);

struct Server {
  Subprocess process;
  Address address;
};

Server StartServer(std::vector<std::string> args, int max_open_files = 0) {
  absl::StatusOr<testing::ServerProgram> s =
      testing::StartServerProgram("examples/echo_server", std::move(args), max_open_files);
  if (!s.ok()) {
    ADD_FAILURE() << s.status();
    abort();
  }
  return Server{std::move(s->process), s->address};
}

TEST(HostilePeerTest, ClientThatNeverReadsKeepsServerMemoryBounded) {
  Server s = StartServer({});
  const int64_t rss_at_start = ProcStatusKiB(s.process.pid(), "VmRSS");
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(::connect(fd, s.address.sockaddr_ptr(), s.address.length()) == 0 ||
              errno == EINPROGRESS);

  constexpr uint64_t kTotal = 200ull << 20;
  std::string chunk(256 * 1024, '\0');
  uint64_t sent = 0, received = 0;
  auto fill = [&](uint64_t from, size_t n) {
    for (size_t i = 0; i < n; ++i) chunk[i] = StreamByte(from + i);
  };
  // Phase 1: send without reading until the server stops taking more (no
  // progress for a whole second), or all 200 MB went.
  while (sent < kTotal) {
    pollfd p = {fd, POLLOUT, 0};
    int r = ::poll(&p, 1, 1000);
    ASSERT_GE(r, 0);
    if (r == 0) break;  // stalled: the echo server stopped reading us
    size_t n = std::min<uint64_t>(chunk.size(), kTotal - sent);
    fill(sent, n);
    ssize_t w = ::send(fd, chunk.data(), n, MSG_NOSIGNAL);
    if (w < 0 && errno == EAGAIN) continue;
    ASSERT_GT(w, 0) << strerror(errno);
    sent += static_cast<uint64_t>(w);
  }
  const int64_t rss_stalled = ProcStatusKiB(s.process.pid(), "VmRSS");
  ASSERT_LT(sent, kTotal) << "never stalled: is the server reading without bound?";
  std::cout << "stalled after " << sent << " bytes; server VmRSS " << rss_at_start
            << " KiB at start, " << rss_stalled << " KiB stalled\n";
  EXPECT_LT(rss_stalled, 64 * 1024);
  ::testing::Test::RecordProperty("server_rss_stalled_kib", std::to_string(rss_stalled));

  // Phase 2: read as well; every byte comes back, in order.
  std::string in(256 * 1024, '\0');
  absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (received < kTotal && absl::Now() < deadline) {
    pollfd p = {fd, static_cast<short>(POLLIN | (sent < kTotal ? POLLOUT : 0)), 0};
    ASSERT_GE(::poll(&p, 1, 1000), 0);
    if (p.revents & POLLIN) {
      ssize_t n = ::recv(fd, in.data(), in.size(), 0);
      ASSERT_GT(n, 0) << (n == 0 ? "EOF" : strerror(errno)) << " after " << received;
      for (ssize_t i = 0; i < n; ++i) {
        ASSERT_EQ(in[i], StreamByte(received + i)) << "at byte " << received + i;
      }
      received += static_cast<uint64_t>(n);
    }
    if ((p.revents & POLLOUT) && sent < kTotal) {
      size_t n = std::min<uint64_t>(chunk.size(), kTotal - sent);
      fill(sent, n);
      ssize_t w = ::send(fd, chunk.data(), n, MSG_NOSIGNAL);
      if (w > 0) sent += static_cast<uint64_t>(w);
    }
  }
  EXPECT_EQ(received, kTotal);
  const int64_t peak = ProcStatusKiB(s.process.pid(), "VmHWM");
  std::cout << "server VmHWM " << peak << " KiB over " << kTotal << " bytes\n";
  EXPECT_LT(peak, 64 * 1024);
  ::close(fd);
}

TEST(HostilePeerTest, AcceptOutOfDescriptorsShedsConnectionsAndRecovers) {
  // A limit of 32 leaves the server room for about twenty connections.
  Server s = StartServer({}, /*max_open_files=*/32);
  const int fds_at_start = testing::OpenDescriptors(s.process.pid());
  std::vector<BlockingClient> clients;
  for (int i = 0; i < 60; ++i) {
    absl::StatusOr<BlockingClient> c = BlockingClient::Connect(s.address);
    ASSERT_TRUE(c.ok()) << c.status();
    clients.push_back(*std::move(c));
  }
  // Each is either served or closed at once: none hangs in the backlog.
  std::vector<BlockingClient*> served;
  int shed = 0;
  for (BlockingClient& c : clients) {
    if (!c.SendAll("ping").ok()) {
      ++shed;
      continue;
    }
    absl::StatusOr<std::string> got = c.ReadExactly(4);
    if (got.ok()) {
      EXPECT_EQ(*got, "ping");
      served.push_back(&c);
    } else {
      EXPECT_FALSE(absl::IsDeadlineExceeded(got.status())) << got.status();
      ++shed;
    }
  }
  EXPECT_GT(served.size(), 10u);
  EXPECT_GT(shed, 0);
  EXPECT_EQ(served.size() + shed, clients.size());
  // Once the served ones leave, the server is whole again.
  clients.clear();
  absl::Time deadline = absl::Now() + kWait;
  while (testing::OpenDescriptors(s.process.pid()) != fds_at_start && absl::Now() < deadline) {
    pollfd none;
    ::poll(&none, 0, 10);  // polling another process's state: nothing to wait on
  }
  EXPECT_EQ(testing::OpenDescriptors(s.process.pid()), fds_at_start);
  for (int i = 0; i < 15; ++i) {
    absl::StatusOr<BlockingClient> c = BlockingClient::Connect(s.address);
    ASSERT_TRUE(c.ok()) << c.status();
    ASSERT_TRUE(c->SendAll("again").ok());
    absl::StatusOr<std::string> got = c->ReadExactly(5);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, "again");
  }
  // Everything it printed, up to its exit: shedding is silent.
  s.process.Signal(SIGTERM);
  absl::StatusOr<int> status = s.process.Wait(kWait);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  EXPECT_EQ(s.process.err(), "");
}

TEST(HostilePeerTest, IdleTimeoutFlagClosesQuietClientsOnly) {
  // Margins of 20x: the busy client talks every 100 ms against a 2 s timeout,
  // so a loaded machine stalling it for a second does not fail the test.
  constexpr absl::Duration kIdle = absl::Seconds(2);
  Server s = StartServer({"--idle_timeout=2"});
  const absl::Time started = absl::Now();
  absl::StatusOr<BlockingClient> quiet = BlockingClient::Connect(s.address);
  ASSERT_TRUE(quiet.ok());
  absl::StatusOr<BlockingClient> busy = BlockingClient::Connect(s.address);
  ASSERT_TRUE(busy.ok());
  // The busy one echoes every 100 ms until the quiet one is closed.
  pollfd p = {quiet->fd(), POLLIN, 0};
  int rounds = 0;
  while (::poll(&p, 1, 100) == 0 && rounds < 300) {
    ++rounds;
    ASSERT_TRUE(busy->SendAll("x").ok());
    absl::StatusOr<std::string> echo = busy->ReadExactly(1);
    ASSERT_TRUE(echo.ok()) << echo.status() << " after " << absl::Now() - started;
  }
  absl::StatusOr<std::string> rest = quiet->ReadUntilClosed();
  ASSERT_TRUE(rest.ok()) << "the quiet client was never closed: " << rest.status();
  EXPECT_EQ(*rest, "");
  EXPECT_GE(absl::Now() - started, kIdle) << "closed before its idle timeout";
  EXPECT_GT(rounds, 10) << "the busy client should have talked all along";
  ASSERT_TRUE(busy->SendAll("still").ok());
  absl::StatusOr<std::string> still = busy->ReadExactly(5);
  ASSERT_TRUE(still.ok()) << "the busy client was closed too: " << still.status();
  EXPECT_EQ(*still, "still");
}

TEST(HostilePeerTest, MaxConnectionsFlagClosesTheOneOverTheLimit) {
  Server s = StartServer({"--max_connections=2"});
  std::vector<BlockingClient> in;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<BlockingClient> c = BlockingClient::Connect(s.address);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c->SendAll("in").ok());
    ASSERT_EQ(*c->ReadExactly(2), "in");
    in.push_back(*std::move(c));
  }
  absl::StatusOr<BlockingClient> over = BlockingClient::Connect(s.address);
  ASSERT_TRUE(over.ok());
  absl::StatusOr<std::string> rest = over->ReadUntilClosed();
  ASSERT_TRUE(rest.ok()) << "the connection over the limit stayed open: " << rest.status();
  EXPECT_EQ(*rest, "");
  in.pop_back();
  // The freed slot is usable; retried because the close travels to the
  // server concurrently with the new connect.
  bool served = false;
  for (int attempt = 0; attempt < 100 && !served; ++attempt) {
    absl::StatusOr<BlockingClient> c = BlockingClient::Connect(s.address);
    ASSERT_TRUE(c.ok());
    served = c->SendAll("ok").ok() && c->ReadExactly(2).ok();
  }
  EXPECT_TRUE(served);
}

TEST(HostilePeerTest, BadPolicyFlagsAreOneLineErrors) {
  for (const auto& [flag, message] : std::vector<std::pair<std::string, std::string>>{
           {"--max_connections=-1", "echo_server: invalid --max_connections -1: must be >= 0"},
           {"--idle_timeout=-2", "echo_server: invalid --idle_timeout -2: must be 0..1e9 seconds"},
           {"--accept_rate=-3", "echo_server: invalid --accept_rate -3: must be 0..1e9 per second"},
       }) {
    testing::ExpectOneLineFailure("examples/echo_server", {flag, "--port=0"}, message);
  }
}

}  // namespace
}  // namespace twist
