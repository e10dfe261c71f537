// The reactor's timers and loop control, on a fake clock so that nothing
// depends on how fast the machine is.

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "framework/clock.h"
#include "framework/reactor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class TimerTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  std::unique_ptr<Reactor> reactor_ = testing::MakeReactor("epoll", &clock_);
  std::vector<std::string> log_;

  DelayedCall Log(absl::Duration d, std::string what) {
    return reactor_->callLater(d, [this, what] { log_.push_back(what); });
  }
  void Advance(absl::Duration d) {
    clock_.advance(d);
    reactor_->runUntilCurrent();
  }
};

TEST_F(TimerTest, CallsRunInDueOrderAndTiesInScheduleOrder) {
  Log(absl::Seconds(3), "c");
  Log(absl::Seconds(1), "a1");
  Log(absl::Seconds(2), "b");
  Log(absl::Seconds(1), "a2");
  Advance(absl::Milliseconds(999));
  EXPECT_THAT(log_, IsEmpty());
  Advance(absl::Milliseconds(1));
  EXPECT_THAT(log_, ElementsAre("a1", "a2"));
  Advance(absl::Seconds(5));
  EXPECT_THAT(log_, ElementsAre("a1", "a2", "b", "c"));
}

TEST_F(TimerTest, CancelledCallNeverRuns) {
  DelayedCall call = Log(absl::Seconds(1), "x");
  Log(absl::Seconds(1), "y");
  EXPECT_TRUE(call.active());
  EXPECT_TRUE(call.cancel().ok());
  EXPECT_FALSE(call.active());
  Advance(absl::Seconds(2));
  EXPECT_THAT(log_, ElementsAre("y"));
  EXPECT_FALSE(call.cancel().ok()) << "second cancel must report AlreadyCancelled";
}

TEST_F(TimerTest, CallThatRanIsInactiveAndCannotBeCancelled) {
  DelayedCall call = Log(absl::Seconds(1), "x");
  Advance(absl::Seconds(1));
  EXPECT_FALSE(call.active());
  EXPECT_TRUE(absl::IsFailedPrecondition(call.cancel()));
  EXPECT_TRUE(absl::IsFailedPrecondition(call.reset(absl::Seconds(1))));
}

TEST_F(TimerTest, ResetMovesTheCallFromNow) {
  DelayedCall call = Log(absl::Seconds(1), "x");
  Advance(absl::Milliseconds(900));
  ASSERT_TRUE(call.reset(absl::Seconds(1)).ok());
  EXPECT_EQ(call.getTime(), clock_.now() + absl::Seconds(1));
  Advance(absl::Milliseconds(900));
  EXPECT_THAT(log_, IsEmpty());
  Advance(absl::Milliseconds(100));
  EXPECT_THAT(log_, ElementsAre("x"));
}

TEST_F(TimerTest, DelayPushesTheCallLater) {
  DelayedCall call = Log(absl::Seconds(1), "x");
  Log(absl::Seconds(2), "y");
  ASSERT_TRUE(call.delay(absl::Seconds(2)).ok());
  EXPECT_EQ(call.getTime(), clock_.now() + absl::Seconds(3));
  Advance(absl::Seconds(2));
  EXPECT_THAT(log_, ElementsAre("y"));
  Advance(absl::Seconds(1));
  EXPECT_THAT(log_, ElementsAre("y", "x"));
}

TEST_F(TimerTest, ZeroDelayCallScheduledByACallWaitsForTheNextPass) {
  std::function<void()> again = [&] {
    log_.push_back("tick");
    reactor_->callLater(absl::ZeroDuration(), again);
  };
  reactor_->callLater(absl::ZeroDuration(), again);
  reactor_->runUntilCurrent();
  EXPECT_THAT(log_, ElementsAre("tick"));
  reactor_->runUntilCurrent();
  EXPECT_THAT(log_, ElementsAre("tick", "tick"));
}

TEST_F(TimerTest, CallCanCancelAnotherDueInTheSamePass) {
  DelayedCall second;
  reactor_->callLater(absl::Seconds(1), [&] {
    log_.push_back("first");
    EXPECT_TRUE(second.cancel().ok());
  });
  second = Log(absl::Seconds(1), "second");
  Advance(absl::Seconds(1));
  EXPECT_THAT(log_, ElementsAre("first"));
}

TEST_F(TimerTest, HandleOutlivesTheReactor) {
  DelayedCall call = Log(absl::Seconds(1), "x");
  reactor_.reset();
  EXPECT_FALSE(call.active());
  EXPECT_FALSE(call.cancel().ok());
}

TEST(ReactorTest, StopFromACallMakesRunReturn) {
  auto reactor = testing::MakeReactor("epoll");
  int ran = 0;
  reactor->callWhenRunning([&] { ++ran; });
  reactor->callLater(absl::Milliseconds(1), [&] {
    ++ran;
    reactor->stop();
  });
  // A call far in the future must not keep run() alive after stop().
  reactor->callLater(absl::Hours(1), [&] { ADD_FAILURE() << "ran after stop"; });
  reactor->run();
  EXPECT_EQ(ran, 2);
  EXPECT_FALSE(reactor->running());
}

TEST(ReactorTest, RealClockFiresTimersInOrder) {
  auto reactor = testing::MakeReactor("epoll");
  std::vector<int> order;
  reactor->callLater(absl::Milliseconds(20), [&] {
    order.push_back(2);
    reactor->stop();
  });
  reactor->callLater(absl::Milliseconds(5), [&] { order.push_back(1); });
  absl::Time start = reactor->seconds();
  reactor->run();
  EXPECT_THAT(order, ElementsAre(1, 2));
  EXPECT_GE(reactor->seconds() - start, absl::Milliseconds(20));
}

TEST(ReactorTest, CallFromThreadWakesTheLoop) {
  auto reactor = testing::MakeReactor("epoll");
  std::atomic<int> done{0};
  std::thread t([&] {
    for (int i = 0; i < 100; ++i) {
      reactor->callFromThread([&] { done.fetch_add(1); });
    }
    reactor->callFromThread([&] { reactor->stop(); });
  });
  // Bounded: if the wake-up were lost, this call ends the test.
  reactor->callLater(testing::kTimeout, [&] { reactor->stop(); });
  reactor->run();
  t.join();
  EXPECT_EQ(done.load(), 100);
}

TEST(ReactorTest, UnknownPollerIsAClearError) {
  ReactorOptions options;
  options.poller = "kqueue";
  absl::StatusOr<std::unique_ptr<Reactor>> r = Reactor::Create(options);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(r.status()));
  EXPECT_THAT(std::string(r.status().message()),
              ::testing::HasSubstr("unknown reactor 'kqueue'"));
}

}  // namespace
}  // namespace twist
