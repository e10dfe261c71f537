// Accepting while the process is out of descriptors (docs/design.md,
// "Accepting"): with a reserve descriptor the reactor accepts and closes the
// pending connection; without one it stops accepting for 100 ms. Either way
// the loop does not spin on a listening socket that stays readable.
//
// These tests lower this process's RLIMIT_NOFILE and fill every descriptor,
// so the connecting side's sockets are made before the filling.

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "framework/clock.h"
#include "framework/protocol.h"
#include "framework/reactor.h"
#include "gtest/gtest.h"
#include "protocols/echo.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using testing::RunUntil;

// The highest descriptor open in this process.
int HighestOpenDescriptor() {
  int highest = -1;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  while (dirent* e = readdir(d)) {
    highest = std::max(highest, atoi(e->d_name));
  }
  closedir(d);
  return highest;
}

bool OutOfDescriptors() {
  int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ::close(fd);
    return false;
  }
  return errno == EMFILE;
}

// Takes every free descriptor; gives them back on demand and at the end.
class Filler {
 public:
  Filler() {
    while (true) {
      int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) break;
      fds_.push_back(fd);
    }
  }
  ~Filler() { release(fds_.size()); }
  void release(size_t n) {
    for (size_t i = 0; i < n && !fds_.empty(); ++i) {
      ::close(fds_.back());
      fds_.pop_back();
    }
  }

 private:
  std::vector<int> fds_;
};

// A TCP socket, made now, connected later (connect needs no new descriptor).
class LateClient {
 public:
  LateClient() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {}
  ~LateClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  // A blocking connect returns once the connection waits in the accept queue.
  bool connect(const Address& to) {
    timeval tv = absl::ToTimeval(testing::kTimeout);
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return ::connect(fd_, to.sockaddr_ptr(), to.length()) == 0;
  }
  // What recv says: >0 bytes, 0 at EOF, -1 on reset or timeout.
  ssize_t recv(char* buf, size_t n) { return ::recv(fd_, buf, n, 0); }
  bool readable() {
    pollfd p = {fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
  }
  bool send(absl::string_view s) {
    return ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
  }

 private:
  int fd_;
};

class AcceptPauseTest : public testing::PollerTest {
 protected:
  void SetUp() override {
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved_), 0);
    rlimit low = saved_;
    low.rlim_cur = HighestOpenDescriptor() + 64;
    ASSERT_LE(low.rlim_cur, saved_.rlim_cur);
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  }
  void TearDown() override { setrlimit(RLIMIT_NOFILE, &saved_); }

  // Turns the loop for `window` of real time, each turn waiting at most
  // `step`; returns how many turns that took. A loop that waits takes about
  // window/step turns; a spinning one, thousands.
  static int TurnsIn(Reactor& reactor, absl::Duration window, absl::Duration step) {
    MonotonicClock real;
    const absl::Time end = real.now() + window;
    int turns = 0;
    while (real.now() < end && turns < 1000000) {
      reactor.iterate(step);
      ++turns;
    }
    return turns;
  }

  rlimit saved_;
};

TEST_P(AcceptPauseTest, WithoutAReserveDescriptorAcceptingPausesForAHundredMilliseconds) {
  FakeClock clock;
  std::unique_ptr<Factory> echo = Factory::forProtocol<Echo>();
  // How many descriptors a reactor on this poller takes, its reserve included.
  const int before = testing::OpenDescriptors();
  const int used = [&] {
    std::unique_ptr<Reactor> probe = testing::MakeReactor(GetParam());
    return testing::OpenDescriptors() - before;
  }();
  ASSERT_GE(used, 2) << "at least the eventfd and the reserve";

  LateClient client;
  Filler filler;
  ASSERT_TRUE(OutOfDescriptors());
  // Room for everything but the reserve: the reactor is made without one.
  filler.release(used - 1);
  auto reactor = NewReactor(&clock);
  ASSERT_TRUE(OutOfDescriptors()) << "the reactor did not take what it takes";
  filler.release(1);
  Address addr = Listen(echo.get());
  ASSERT_TRUE(OutOfDescriptors());
  ASSERT_TRUE(client.connect(addr));

  // accept() fails with EMFILE and there is no reserve to spend: the port
  // stops accepting. The connection waits in the backlog, and the loop,
  // level-triggered on a socket that stays readable, must not spin.
  reactor->iterate();
  EXPECT_EQ(reactor->connectionCount(), 0u);
  const int turns = TurnsIn(*reactor, absl::Milliseconds(300), absl::Milliseconds(10));
  EXPECT_LT(turns, 100) << "the loop spins while out of descriptors";

  // Descriptors are free again, but the pause lasts 100 ms of the reactor's
  // clock, which has not moved.
  filler.release(2);
  Spin(*reactor);
  EXPECT_EQ(reactor->connectionCount(), 0u) << "accepted before the pause ended";
  clock.advance(absl::Milliseconds(99));
  reactor->runUntilCurrent();
  Spin(*reactor);
  EXPECT_EQ(reactor->connectionCount(), 0u) << "accepted before the pause ended";
  clock.advance(absl::Milliseconds(1));
  reactor->runUntilCurrent();
  ASSERT_TRUE(RunUntil(*reactor, [&] { return reactor->connectionCount() == 1; }));

  // Accepted, not shed: it is served.
  ASSERT_TRUE(client.send("late"));
  ASSERT_TRUE(RunUntil(*reactor, [&] { return client.readable(); }));
  char buf[8];
  ASSERT_EQ(client.recv(buf, sizeof(buf)), 4);
  EXPECT_EQ(absl::string_view(buf, 4), "late");
}

TEST_P(AcceptPauseTest, WithAReserveDescriptorPendingConnectionsAreShedAndTheLoopIdles) {
  std::unique_ptr<Factory> echo = Factory::forProtocol<Echo>();
  auto reactor = NewReactor();
  Address addr = Listen(echo.get());
  std::vector<std::unique_ptr<LateClient>> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(std::make_unique<LateClient>());
  Filler filler;
  ASSERT_TRUE(OutOfDescriptors());
  for (auto& c : clients) ASSERT_TRUE(c->connect(addr));

  // One turn accepts and closes all three with the reserve descriptor: each
  // client sees end of file at once instead of waiting in the backlog.
  reactor->iterate();
  EXPECT_EQ(reactor->connectionCount(), 0u);
  for (auto& c : clients) {
    ASSERT_TRUE(RunUntil(*reactor, [&] { return c->readable(); }));
    char buf[8];
    EXPECT_EQ(c->recv(buf, sizeof(buf)), 0);
  }
  // Nothing is pending any more: the loop sleeps.
  const int turns = TurnsIn(*reactor, absl::Milliseconds(300), absl::Milliseconds(10));
  EXPECT_LT(turns, 100) << "the loop spins while out of descriptors";

  // And it still listens: with descriptors free again, the next is served.
  filler.release(2);
  LateClient next;
  ASSERT_TRUE(next.connect(addr));
  ASSERT_TRUE(next.send("again"));
  ASSERT_TRUE(RunUntil(*reactor, [&] { return next.readable(); }));
  char buf[8];
  ASSERT_EQ(next.recv(buf, sizeof(buf)), 5);
  EXPECT_EQ(absl::string_view(buf, 5), "again");
}

INSTANTIATE_TEST_SUITE_P(AllPollers, AcceptPauseTest,
                         ::testing::ValuesIn(PollerNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace twist
