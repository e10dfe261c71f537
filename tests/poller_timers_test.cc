// Timers and callFromThread on every poller. reactor_test checks the timer
// queue's rules on a FakeClock; here run() sleeps in each real poller until
// the next call is due, so each poller's timeout (and its wake-up through
// the eventfd) is what is under test.

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "framework/clock.h"
#include "framework/poller.h"
#include "framework/reactor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using ::testing::ElementsAre;

class PollerTimersTest : public testing::PollerTest {
 protected:
  // Runs the loop until something calls stop(). After kTimeout a timer
  // stops it (a lost wake-up), or, if the loop never wakes up for timers (a
  // poller that ignores its timeout), another thread through callFromThread;
  // either way the test fails instead of hanging.
  void RunBounded(Reactor& reactor) {
    std::mutex mu;
    std::condition_variable cv;
    bool finished = false;
    std::atomic<bool> fired{false};
    DelayedCall fallback = reactor.callLater(testing::kTimeout, [&] {
      fired = true;
      reactor.stop();
    });
    std::thread watchdog([&] {
      std::unique_lock<std::mutex> lock(mu);
      if (!cv.wait_for(lock, absl::ToChronoSeconds(testing::kTimeout),
                       [&] { return finished; })) {
        fired = true;
        reactor.callFromThread([&reactor] { reactor.stop(); });
      }
    });
    reactor.run();
    fallback.cancel().IgnoreError();
    {
      std::lock_guard<std::mutex> lock(mu);
      finished = true;
    }
    cv.notify_one();
    watchdog.join();
    EXPECT_FALSE(fired.load()) << "run() did not return by itself";
  }
};

TEST_P(PollerTimersTest, CallsRunInDueOrderNeverEarlyAndTiesInScheduleOrder) {
  auto reactor = NewReactor();
  std::vector<std::string> order;
  std::vector<absl::Duration> late;  // how long after its due time each ran
  auto at = [&](int ms, std::string name) {
    auto call = std::make_shared<DelayedCall>();
    *call = reactor->callLater(absl::Milliseconds(ms), [&, call, name] {
      order.push_back(name);
      late.push_back(reactor->seconds() - call->getTime());
    });
  };
  at(30, "c");
  at(10, "a1");
  at(20, "b");
  at(10, "a2");
  at(0, "now");
  reactor->callLater(absl::Milliseconds(40), [&] { reactor->stop(); });
  RunBounded(*reactor);
  EXPECT_THAT(order, ElementsAre("now", "a1", "a2", "b", "c"));
  for (absl::Duration d : late) EXPECT_GE(d, absl::ZeroDuration());
}

TEST_P(PollerTimersTest, CancelledCallNeverRunsAndResetMovesACall) {
  auto reactor = NewReactor();
  std::vector<std::string> order;
  absl::Time start = reactor->seconds();
  absl::Time pushed_ran;
  DelayedCall cancelled =
      reactor->callLater(absl::Milliseconds(5), [&] { order.push_back("cancelled"); });
  // Brought forward from an hour: run() must wake up for its new time.
  DelayedCall early = reactor->callLater(absl::Hours(1), [&] { order.push_back("early"); });
  // Pushed back: it must not run at its old time.
  DelayedCall pushed = reactor->callLater(absl::Milliseconds(1), [&] {
    order.push_back("pushed");
    pushed_ran = reactor->seconds();
  });
  reactor->callLater(absl::Milliseconds(20), [&] { order.push_back("fixed"); });
  reactor->callLater(absl::Milliseconds(60), [&] { reactor->stop(); });
  ASSERT_TRUE(cancelled.cancel().ok());
  ASSERT_TRUE(early.reset(absl::Milliseconds(10)).ok());
  ASSERT_TRUE(pushed.reset(absl::Milliseconds(40)).ok());
  RunBounded(*reactor);
  EXPECT_THAT(order, ElementsAre("early", "fixed", "pushed"));
  EXPECT_GE(pushed_ran - start, absl::Milliseconds(40));
  EXPECT_FALSE(cancelled.active());
  EXPECT_FALSE(early.active());
  EXPECT_FALSE(pushed.active());
}

TEST_P(PollerTimersTest, CallFromThreadWakesALoopAsleepInThePoller) {
  auto reactor = NewReactor();
  // Ping-pong: the thread posts the next call only after the previous one
  // ran, so the loop is (nearly always) asleep in the poller, with no timer
  // due before the fallback, when the call arrives: only the eventfd can
  // wake it in time.
  constexpr int kRounds = 200;
  std::mutex mu;
  std::condition_variable cv;
  int ran = 0;  // guarded by mu
  std::thread poster([&] {
    for (int i = 0; i < kRounds; ++i) {
      reactor->callFromThread([&, i] {
        std::lock_guard<std::mutex> lock(mu);
        EXPECT_EQ(ran, i);
        ++ran;
        cv.notify_one();
        if (ran == kRounds) reactor->stop();
      });
      std::unique_lock<std::mutex> lock(mu);
      // Bounded: a lost wake-up ends the wait (and the watchdog the loop).
      if (!cv.wait_for(lock, absl::ToChronoSeconds(testing::kTimeout),
                       [&] { return ran == i + 1; })) {
        return;
      }
    }
  });
  RunBounded(*reactor);
  poster.join();
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(ran, kRounds);
}

TEST_P(PollerTimersTest, CallsFromManyThreadsAllRunInEachThreadsOrder) {
  auto reactor = NewReactor();
  constexpr int kThreads = 4;
  constexpr int kCalls = 2000;
  std::vector<int> next(kThreads, 0);  // touched on the reactor's thread only
  int done = 0;
  int out_of_order = 0;
  std::vector<std::thread> threads;
  reactor->callWhenRunning([&] {
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kCalls; ++i) {
          reactor->callFromThread([&, t, i] {
            if (next[t] != i) ++out_of_order;
            next[t] = i + 1;
            if (++done == kThreads * kCalls) reactor->stop();
          });
        }
      });
    }
  });
  RunBounded(*reactor);
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(done, kThreads * kCalls);
  EXPECT_EQ(out_of_order, 0);
}

INSTANTIATE_TEST_SUITE_P(AllPollers, PollerTimersTest,
                         ::testing::ValuesIn(PollerNames()),
                         [](const auto& info) { return info.param; });

// The pollers' timeout in milliseconds: rounded up, so no timer is woken
// for early; capped; -1 for "wait for ever".
TEST(TimeoutMillisTest, RoundsUpAndCaps) {
  EXPECT_EQ(TimeoutMillis(absl::InfiniteDuration()), -1);
  EXPECT_EQ(TimeoutMillis(absl::ZeroDuration()), 0);
  EXPECT_EQ(TimeoutMillis(-absl::Seconds(1)), 0);
  EXPECT_EQ(TimeoutMillis(absl::Nanoseconds(1) / 4), 1);
  EXPECT_EQ(TimeoutMillis(absl::Nanoseconds(1)), 1);
  EXPECT_EQ(TimeoutMillis(absl::Milliseconds(1)), 1);
  EXPECT_EQ(TimeoutMillis(absl::Milliseconds(1) + absl::Nanoseconds(1) / 4), 2);
  EXPECT_EQ(TimeoutMillis(absl::Milliseconds(1) + absl::Nanoseconds(1)), 2);
  EXPECT_EQ(TimeoutMillis(absl::Microseconds(1500)), 2);
  EXPECT_EQ(TimeoutMillis(absl::Seconds(999) + absl::Microseconds(999001)), 1000000);
  EXPECT_EQ(TimeoutMillis(absl::Seconds(999) + absl::Microseconds(998001)), 999999);
  EXPECT_EQ(TimeoutMillis(absl::Seconds(1000)), 1000000);
  EXPECT_EQ(TimeoutMillis(absl::Hours(1000000)), 1000000);
}

}  // namespace
}  // namespace twist
