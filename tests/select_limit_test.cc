// select(2) cannot watch a descriptor at or above FD_SETSIZE. The select
// reactor must say so with a Status and refuse such a connection cleanly,
// while it keeps serving the connections it can watch.

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "framework/poller.h"
#include "framework/protocol.h"
#include "framework/reactor.h"
#include "framework/tcp_port.h"
#include "gtest/gtest.h"
#include "protocols/echo.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using testing::BlockingClient;
using testing::RunUntil;

// Occupies every descriptor below `limit` that is free now, so that the next
// descriptor the process opens is at or above it. Releases them on demand.
class DescriptorFiller {
 public:
  explicit DescriptorFiller(int limit) {
    for (int i = 0; i < limit + 8; ++i) {
      int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) break;
      if (fd >= limit) {
        ::close(fd);
        break;
      }
      fds_.push_back(fd);
    }
  }
  ~DescriptorFiller() {
    for (int fd : fds_) ::close(fd);
  }
  bool filled() const { return !fds_.empty(); }
  /// Frees the `n` lowest descriptors held.
  void release(int n) {
    for (int i = 0; i < n && !fds_.empty(); ++i) {
      ::close(fds_.front());
      fds_.erase(fds_.begin());
    }
  }

 private:
  std::vector<int> fds_;
};

class SelectLimitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rlimit lim;
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &lim), 0);
    if (lim.rlim_max < FD_SETSIZE + 64) {
      GTEST_SKIP() << "needs an open-file limit above " << FD_SETSIZE + 64;
    }
    lim.rlim_cur = lim.rlim_max;
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lim), 0);
  }
};

class Nothing : public Selectable {
  void handleEvents(uint32_t) override {}
};

TEST_F(SelectLimitTest, PollerRefusesADescriptorAtFdSetSizeWithAStatus) {
  absl::StatusOr<std::unique_ptr<Poller>> poller = CreatePoller("select");
  ASSERT_TRUE(poller.ok());
  int pipefd[2];
  ASSERT_EQ(::pipe2(pipefd, O_CLOEXEC), 0);
  int high = ::fcntl(pipefd[0], F_DUPFD_CLOEXEC, FD_SETSIZE);
  ASSERT_GE(high, FD_SETSIZE);
  Nothing n;
  absl::Status s = (*poller)->add(high, kReadable, &n);
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_NE(s.message().find("FD_SETSIZE"), absl::string_view::npos) << s;
  ::close(high);
  ::close(pipefd[0]);
  ::close(pipefd[1]);
  // The other pollers have no such limit.
  for (const char* name : {"poll", "epoll"}) {
    auto other = CreatePoller(name);
    ASSERT_TRUE(other.ok());
    int pipefd[2];
    ASSERT_EQ(::pipe2(pipefd, O_CLOEXEC), 0);
    int fd = ::fcntl(pipefd[0], F_DUPFD_CLOEXEC, FD_SETSIZE);
    ASSERT_GE(fd, FD_SETSIZE);
    EXPECT_TRUE((*other)->add(fd, kReadable, &n).ok()) << name;
    (*other)->remove(fd);
    ::close(fd);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
  }
}

TEST_F(SelectLimitTest, ConnectionAboveTheLimitIsRefusedAndOthersAreServed) {
  std::unique_ptr<Factory> echo = Factory::forProtocol<Echo>();
  auto reactor = testing::MakeReactor("select");
  absl::StatusOr<Port*> port = reactor->listenTCP(0, echo.get(), 64, "127.0.0.1");
  ASSERT_TRUE(port.ok()) << port.status();
  Address addr = (*port)->getHost();

  absl::StatusOr<BlockingClient> early = BlockingClient::Connect(addr);
  ASSERT_TRUE(early.ok());
  ASSERT_TRUE(RunUntil(*reactor, [&] { return reactor->connectionCount() == 1; }));

  DescriptorFiller filler(FD_SETSIZE);
  ASSERT_TRUE(filler.filled());
  {
    // Its server side would be >= FD_SETSIZE: closed at once, never watched.
    absl::StatusOr<BlockingClient> late = BlockingClient::Connect(addr);
    ASSERT_TRUE(late.ok());
    ASSERT_GE(late->fd(), FD_SETSIZE);
    ASSERT_TRUE(RunUntil(*reactor, [&] {
      pollfd p = {late->fd(), POLLIN, 0};
      return ::poll(&p, 1, 0) == 1;  // EOF or reset is readable
    }));
    absl::StatusOr<std::string> rest = late->ReadUntilClosed();
    ASSERT_TRUE(rest.ok()) << rest.status();
    EXPECT_EQ(*rest, "");
    EXPECT_EQ(reactor->connectionCount(), 1u);
  }
  // The connection it could watch goes on as if nothing happened.
  ASSERT_TRUE(early->SendAll("still here").ok());
  ASSERT_TRUE(RunUntil(*reactor, [&] {
    pollfd p = {early->fd(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
  }));
  EXPECT_EQ(*early->ReadExactly(10), "still here");
  // Free two low descriptors (one for each end): served again.
  filler.release(2);
  absl::StatusOr<BlockingClient> next = BlockingClient::Connect(addr);
  ASSERT_TRUE(next.ok());
  ASSERT_LT(next->fd(), FD_SETSIZE);
  ASSERT_TRUE(next->SendAll("served").ok());
  ASSERT_TRUE(RunUntil(*reactor, [&] {
    pollfd p = {next->fd(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
  }));
  EXPECT_EQ(*next->ReadExactly(6), "served");
  EXPECT_EQ(reactor->connectionCount(), 2u);
}

}  // namespace
}  // namespace twist
