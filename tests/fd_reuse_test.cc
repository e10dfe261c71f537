// docs/design.md: "A closed connection is kept alive until the end of the
// iteration ... The same goes for a descriptor number reused by a new
// connection in the same iteration: events name objects, not descriptor
// numbers." This builds that case on purpose, in one turn of the loop and on
// every poller: connection B is closed by a callback, a new connection C is
// accepted into B's descriptor number, and only then does the turn reach the
// readiness event collected for B. C must not be handed B's event.

#include <sys/socket.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "framework/errors.h"
#include "framework/protocol.h"
#include "framework/reactor.h"
#include "framework/tcp_connection.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using ::testing::ElementsAre;
using testing::BlockingClient;
using testing::RunUntil;

// Every connection's callbacks, each tagged with the loop turn it ran in.
struct Log {
  int turn = 0;
  struct Conn {
    int fd = -1;
    Transport* transport = nullptr;
    std::vector<std::string> events;
    std::string received;
  };
  std::vector<Conn> conns;
  int abort_on_data = -1;  // index of the connection to abort on any input
};

class Logged : public Protocol {
 public:
  explicit Logged(Log* log) : log_(log) {}
  void connectionMade() override {
    index_ = log_->conns.size();
    log_->conns.emplace_back();
    conn().fd = static_cast<TcpConnection*>(transport())->fd();
    conn().transport = transport();
    conn().events.push_back(absl::StrCat("made@", log_->turn));
  }
  void dataReceived(absl::string_view data) override {
    conn().events.push_back(absl::StrCat("data@", log_->turn));
    conn().received.append(data.data(), data.size());
    if (log_->abort_on_data >= 0) {
      log_->conns[log_->abort_on_data].transport->abortConnection();
      log_->abort_on_data = -1;
    }
  }
  void connectionLost(const absl::Status& reason) override {
    conn().events.push_back(absl::StrCat(
        IsConnectionAborted(reason) ? "aborted@" : "lost@", log_->turn));
    conn().transport = nullptr;
  }

 private:
  Log::Conn& conn() { return log_->conns[index_]; }
  Log* log_;
  size_t index_ = 0;
};

class FdReuseTest : public testing::PollerTest {};

TEST_P(FdReuseTest, ANewConnectionInAClosedOnesDescriptorGetsNoneOfItsEvents) {
  Log log;
  Factory factory([&] { return std::make_unique<Logged>(&log); });
  auto reactor = NewReactor();
  // Descriptors are made in this order, so that their numbers (select's
  // dispatch order) and their order in the poll set (poll's) are
  // A < second port < B.
  Address first = Listen(&factory);
  BlockingClient client_a = Connect(first);
  ASSERT_TRUE(RunUntil(*reactor, [&] { return log.conns.size() == 1; }));
  Address second = Listen(&factory);
  BlockingClient client_b = Connect(first);
  ASSERT_TRUE(RunUntil(*reactor, [&] { return log.conns.size() == 2; }));
  const int fd_a = log.conns[0].fd;
  const int fd_b = log.conns[1].fd;
  ASSERT_LT(fd_a, fd_b);

  // Readiness in the same order (epoll reports in the order things became
  // ready): A has input, the second port has a pending connection C that
  // already sent its data, and B has input.
  ASSERT_TRUE(client_a.SendAll("a").ok());
  BlockingClient client_c = Connect(second);
  ASSERT_TRUE(client_c.SendAll("for c").ok());
  ASSERT_TRUE(client_b.SendAll("for b").ok());

  // A's input aborts B; B's descriptor is closed when A's callback returns,
  // and the port's accept then gets that number for C.
  log.abort_on_data = 1;
  log.turn = 1;
  reactor->iterate();
  ASSERT_EQ(log.conns.size(), 3u) << "C was not accepted in the same turn";
  ASSERT_EQ(log.conns[2].fd, fd_b) << "C did not reuse B's descriptor number";
  EXPECT_THAT(log.conns[0].events, ElementsAre("made@0", "data@1"));
  EXPECT_THAT(log.conns[1].events, ElementsAre("made@0", "aborted@1"));
  // C's socket was not in the poll set when this turn polled: B's readiness
  // event must not reach it, so C reads nothing before the next turn.
  EXPECT_THAT(log.conns[2].events, ElementsAre("made@1"));

  log.turn = 2;
  ASSERT_TRUE(RunUntil(*reactor, [&] { return log.conns[2].received == "for c"; }));
  EXPECT_THAT(log.conns[2].events, ElementsAre("made@1", "data@2"));
  EXPECT_EQ(log.conns[1].received, "");
  // B's client sees its connection end; C's is still served.
  absl::StatusOr<std::string> rest = client_b.ReadUntilClosed();
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(*rest, "");
  EXPECT_EQ(reactor->connectionCount(), 2u);
}

INSTANTIATE_TEST_SUITE_P(AllPollers, FdReuseTest,
                         ::testing::ValuesIn(PollerNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace twist
