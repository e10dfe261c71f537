// The echo server's --backlog and --accept_rate, seen from outside the
// program: the backlog as the kernel reports it for the listening socket,
// the accept rate as the times at which connections get their echo.

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "framework/clock.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using testing::BlockingClient;

// The backlog of the IPv4 TCP socket listening on `port`, as the kernel
// reports it through sock_diag: a listener's idiag_wqueue is the backlog
// listen() was given (capped by net.core.somaxconn), what `ss -ltn` shows
// as Send-Q.
absl::StatusOr<int> ListenBacklog(int port) {
  int fd = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return absl::ErrnoToStatus(errno, "socket(NETLINK_SOCK_DIAG)");
  struct {
    nlmsghdr nlh;
    inet_diag_req_v2 req;
  } request = {};
  request.nlh.nlmsg_len = sizeof(request);
  request.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  request.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  request.req.sdiag_family = AF_INET;
  request.req.sdiag_protocol = IPPROTO_TCP;
  request.req.idiag_states = 1u << TCP_LISTEN;
  if (::send(fd, &request, sizeof(request), 0) != sizeof(request)) {
    ::close(fd);
    return absl::ErrnoToStatus(errno, "send(sock_diag request)");
  }
  int backlog = -1;
  alignas(nlmsghdr) char buf[16384];
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      ::close(fd);
      return absl::ErrnoToStatus(errno, "recv(sock_diag)");
    }
    for (nlmsghdr* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, n);
         h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) {
        ::close(fd);
        if (backlog < 0) return absl::NotFoundError(absl::StrCat("no listener on port ", port));
        return backlog;
      }
      if (h->nlmsg_type == NLMSG_ERROR) {
        ::close(fd);
        return absl::InternalError("sock_diag answered with an error");
      }
      const auto* m = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
      if (ntohs(m->id.idiag_sport) == port) backlog = static_cast<int>(m->idiag_wqueue);
    }
  }
}

TEST(ServerFlagsTest, BacklogFlagReachesListen) {
  for (int backlog : {7, 100}) {
    absl::StatusOr<testing::ServerProgram> server = testing::StartServerProgram(
        "examples/echo_server", {absl::StrCat("--backlog=", backlog)});
    ASSERT_TRUE(server.ok()) << server.status();
    absl::StatusOr<int> got = ListenBacklog(server->address.port());
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, backlog);
  }
  // And without the flag, its documented default.
  absl::StatusOr<testing::ServerProgram> server =
      testing::StartServerProgram("examples/echo_server", {});
  ASSERT_TRUE(server.ok()) << server.status();
  absl::StatusOr<int> got = ListenBacklog(server->address.port());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, 511);
}

TEST(ServerFlagsTest, AcceptRateFlagSpreadsAcceptsOverTime) {
  // 20 a second in bursts of 2 (server_main: a tenth of a second's worth):
  // by any time t after the clients start, at most 2 + 20 t connections can
  // have been accepted. The bound holds however slow the machine is; a
  // server that ignored the flag would serve all 22 within milliseconds.
  constexpr int kRate = 20;
  constexpr int kBurst = 2;
  constexpr int kClients = 22;
  absl::StatusOr<testing::ServerProgram> server = testing::StartServerProgram(
      "examples/echo_server", {absl::StrCat("--accept_rate=", kRate)});
  ASSERT_TRUE(server.ok()) << server.status();
  MonotonicClock clock;
  const absl::Time start = clock.now();
  std::vector<BlockingClient> clients;
  for (int i = 0; i < kClients; ++i) {
    // Each connection waits in the backlog (511) until it is accepted.
    absl::StatusOr<BlockingClient> c = BlockingClient::Connect(server->address);
    ASSERT_TRUE(c.ok()) << c.status();
    ASSERT_TRUE(c->SendAll("x").ok());
    clients.push_back(*std::move(c));
  }
  // The kernel hands connections to accept() in the order they came, so the
  // k-th echo comes after the k-th accept.
  std::vector<absl::Duration> served;
  for (BlockingClient& c : clients) {
    absl::StatusOr<std::string> echo = c.ReadExactly(1);
    ASSERT_TRUE(echo.ok()) << echo.status() << " after " << served.size() << " echoes";
    served.push_back(clock.now() - start);
  }
  std::cout << "accepted " << kClients << " connections in " << served.back() << "\n";
  for (int k = 1; k <= kClients; ++k) {
    // The 1 ms allows for rounding in the bucket's arithmetic.
    EXPECT_GE(served[k - 1], absl::Seconds(static_cast<double>(k - kBurst) / kRate) -
                                 absl::Milliseconds(1))
        << "connection " << k << " was accepted too early";
  }
  // And the rate is not much lower than asked: 1 s of accepts, allowing a
  // loaded machine eight times as long.
  EXPECT_LT(served.back(), absl::Seconds(8));
}

}  // namespace
}  // namespace twist
