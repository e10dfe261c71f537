// Policies through the real reactor and loopback sockets: the idle timeout
// and the accept rate limit on a fake clock, the connection limit.

#include <memory>
#include <string>
#include <vector>

#include "framework/clock.h"
#include "framework/errors.h"
#include "framework/protocol.h"
#include "framework/reactor.h"
#include "framework/tcp_port.h"
#include "gtest/gtest.h"
#include "protocols/echo.h"
#include "protocols/policies.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using testing::BlockingClient;
using testing::RunUntil;

// Echo that hangs up after `period` without input.
class IdleEcho : public Protocol, public TimeoutMixin {
 public:
  IdleEcho(Reactor* r, absl::Duration period, int* timeouts, int* reads = nullptr)
      : TimeoutMixin(r), period_(period), timeouts_(timeouts), reads_(reads) {}
  void connectionMade() override { setTimeout(period_); }
  void dataReceived(absl::string_view data) override {
    if (reads_ != nullptr) ++*reads_;
    resetTimeout();
    transport()->write(data);
  }
  void timeoutConnection() override {
    ++*timeouts_;
    TimeoutMixin::timeoutConnection();
  }
  void connectionLost(const absl::Status&) override { lost_ = true; }
  bool lost_ = false;

 private:
  absl::Duration period_;
  int* timeouts_;
  int* reads_;
};

using PoliciesTest = testing::PollerTest;

TEST_P(PoliciesTest, IdleTimeoutClosesOnlyAfterAQuietPeriod) {
  FakeClock clock;
  int timeouts = 0, reads = 0;
  std::unique_ptr<Factory> factory;
  auto reactor_ = NewReactor(&clock);
  Reactor* r = reactor_.get();
  factory = std::make_unique<Factory>([&] {
    return std::make_unique<IdleEcho>(r, absl::Seconds(10), &timeouts, &reads);
  });
  BlockingClient c = Connect(Listen(factory.get()));
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return reactor_->connectionCount() == 1; }));

  clock.advance(absl::Seconds(9));
  Spin(*reactor_);
  EXPECT_EQ(timeouts, 0);
  // Activity restarts the ten seconds.
  ASSERT_TRUE(c.SendAll("x").ok());
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return reads == 1; }));
  EXPECT_EQ(*c.ReadExactly(1), "x");
  clock.advance(absl::Seconds(9));
  Spin(*reactor_);
  EXPECT_EQ(timeouts, 0);
  EXPECT_EQ(reactor_->connectionCount(), 1u);
  // Quiet for the whole period: closed cleanly.
  clock.advance(absl::Seconds(1));
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return reactor_->connectionCount() == 0; }));
  EXPECT_EQ(timeouts, 1);
  absl::StatusOr<std::string> rest = c.ReadToEof();
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(*rest, "");
}

TEST(TimeoutMixinTest, SetTimeoutReturnsThePreviousPeriodAndCancelStopsIt) {
  FakeClock clock;
  auto reactor = testing::MakeReactor("epoll", &clock);
  int timeouts = 0;
  IdleEcho p(reactor.get(), absl::Seconds(1), &timeouts);
  EXPECT_EQ(p.setTimeout(absl::Seconds(5)), absl::InfiniteDuration());
  EXPECT_EQ(p.setTimeout(absl::Seconds(3)), absl::Seconds(5));
  clock.advance(absl::Seconds(2));
  reactor->runUntilCurrent();
  EXPECT_EQ(timeouts, 0);
  p.cancelTimeout();
  clock.advance(absl::Seconds(5));
  reactor->runUntilCurrent();
  EXPECT_EQ(timeouts, 0);
  p.setTimeout(absl::Seconds(1));
  clock.advance(absl::Seconds(1));
  reactor->runUntilCurrent();
  EXPECT_EQ(timeouts, 1);  // no transport: the default close is skipped
}

TEST_P(PoliciesTest, ConnectionLimitClosesTheConnectionOverItAtOnce) {
  std::unique_ptr<Factory> echo = Factory::forProtocol<Echo>();
  LimitTotalConnectionsFactory limited(echo.get(), 2);
  auto reactor_ = NewReactor();
  Address addr = Listen(&limited);
  BlockingClient a = Connect(addr), b = Connect(addr);
  ASSERT_TRUE(a.SendAll("a").ok());
  ASSERT_TRUE(b.SendAll("b").ok());
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return limited.connectionCount() == 2; }));
  BlockingClient third = Connect(addr);
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return limited.refusedCount() == 1; }));
  EXPECT_EQ(third.ReadUntilClosed(), "");
  // The two within the limit are served as usual.
  Spin(*reactor_);
  EXPECT_EQ(*a.ReadExactly(1), "a");
  EXPECT_EQ(*b.ReadExactly(1), "b");
  // A slot is free again as soon as one of them leaves.
  { BlockingClient leaving = std::move(a); }
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return limited.connectionCount() == 1; }));
  BlockingClient d = Connect(addr);
  ASSERT_TRUE(d.SendAll("d").ok());
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return limited.connectionCount() == 2; }));
  Spin(*reactor_);
  EXPECT_EQ(*d.ReadExactly(1), "d");
  EXPECT_EQ(limited.refusedCount(), 1);
}

TEST_P(PoliciesTest, AcceptRateLimitSpreadsAcceptsOverTime) {
  FakeClock clock;
  std::unique_ptr<Factory> echo = Factory::forProtocol<Echo>();
  auto reactor_ = NewReactor(&clock);
  Port* port = ListenPort(echo.get());
  port->setAcceptRateLimit(/*per_second=*/2, /*burst=*/3);
  std::vector<BlockingClient> clients;
  for (int i = 0; i < 8; ++i) clients.push_back(Connect(port->getHost()));
  // The burst is taken at once; the rest wait in the backlog...
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return reactor_->connectionCount() == 3; }));
  Spin(*reactor_);
  EXPECT_EQ(reactor_->connectionCount(), 3u);
  // ...and come in at two a second of the reactor's time.
  clock.advance(absl::Milliseconds(500));
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return reactor_->connectionCount() == 4; }));
  Spin(*reactor_);
  EXPECT_EQ(reactor_->connectionCount(), 4u);
  clock.advance(absl::Seconds(1));
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return reactor_->connectionCount() == 6; }));
  Spin(*reactor_);
  EXPECT_EQ(reactor_->connectionCount(), 6u);
  // Lifting the limit takes the rest at once.
  port->setAcceptRateLimit(0);
  clock.advance(absl::Seconds(1));  // lets the pending back-off expire
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return reactor_->connectionCount() == 8; }));
}

INSTANTIATE_TEST_SUITE_P(AllPollers, PoliciesTest,
                         ::testing::ValuesIn(PollerNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace twist
