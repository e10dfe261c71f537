// docs/design.md, "Accepting": a poller that cannot watch an accepted socket
// (select, at or above FD_SETSIZE) refuses that connection, and "the reactor
// says so once on stderr". select_limit_test checks the refusal; this checks
// the line: exactly one, however many connections are refused.

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "framework/protocol.h"
#include "framework/reactor.h"
#include "framework/tcp_port.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "protocols/echo.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::BlockingClient;
using testing::RunUntil;

// Occupies every free descriptor below `limit`, so that the next one this
// process opens is at or above it.
class DescriptorFiller {
 public:
  explicit DescriptorFiller(int limit) {
    while (true) {
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

 private:
  std::vector<int> fds_;
};

// Sends this process's stderr (descriptor 2) to a temporary file until
// release(), which returns what was written.
class StderrCapture {
 public:
  StderrCapture() : file_(tmpfile()) {
    fflush(stderr);
    saved_ = dup(2);
    dup2(fileno(file_), 2);
  }
  ~StderrCapture() { release(); }
  std::string release() {
    if (saved_ < 0) return "";
    fflush(stderr);
    dup2(saved_, 2);
    ::close(saved_);
    saved_ = -1;
    std::string out;
    rewind(file_);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), file_)) > 0) out.append(buf, n);
    fclose(file_);
    return out;
  }

 private:
  FILE* file_;
  int saved_ = -1;
};

TEST(SelectWarningTest, RefusingConnectionsAboveFdSetSizeIsSaidOnceOnStderr) {
  rlimit lim;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &lim), 0);
  if (lim.rlim_max < FD_SETSIZE + 64) {
    GTEST_SKIP() << "needs an open-file limit above " << FD_SETSIZE + 64;
  }
  const rlimit saved = lim;
  lim.rlim_cur = lim.rlim_max;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lim), 0);

  std::unique_ptr<Factory> echo = Factory::forProtocol<Echo>();
  auto reactor = testing::MakeReactor("select");
  absl::StatusOr<Port*> port = reactor->listenTCP(0, echo.get(), 64, "127.0.0.1");
  ASSERT_TRUE(port.ok()) << port.status();
  Address addr = (*port)->getHost();

  std::string said;
  {
    StderrCapture capture;
    DescriptorFiller filler(FD_SETSIZE);
    constexpr int kRefused = 5;
    for (int i = 0; i < kRefused; ++i) {
      absl::StatusOr<BlockingClient> c = BlockingClient::Connect(addr);
      ASSERT_TRUE(c.ok()) << c.status();
      ASSERT_GE(c->fd(), FD_SETSIZE);  // so its server side is too
      ASSERT_TRUE(RunUntil(*reactor, [&] {
        pollfd p = {c->fd(), POLLIN, 0};
        return ::poll(&p, 1, 0) == 1;  // end of file or reset
      })) << "connection " << i << " was not refused";
      absl::StatusOr<std::string> rest = c->ReadUntilClosed();
      ASSERT_TRUE(rest.ok()) << rest.status();
      EXPECT_EQ(*rest, "");
    }
    EXPECT_EQ(reactor->connectionCount(), 0u);
    said = capture.release();
  }
  setrlimit(RLIMIT_NOFILE, &saved);

  std::vector<std::string> lines = absl::StrSplit(said, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 1u) << said;
  EXPECT_TRUE(absl::EndsWith(said, "\n"));
  EXPECT_THAT(lines[0], StartsWith("twist: refusing connection from 127.0.0.1:"));
  EXPECT_THAT(lines[0], HasSubstr("FD_SETSIZE"));
}

}  // namespace
}  // namespace twist
