// LoopingCall and deferLater on task::Clock (Twisted's test_task, the parts
// twist has): time moves only when the test advances it.

#include "framework/looping_call.h"

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "framework/defer.h"
#include "framework/defer_later.h"
#include "framework/task_clock.h"
#include "gtest/gtest.h"

namespace twist {
namespace task {
namespace {

absl::Duration S(double s) { return absl::Milliseconds(static_cast<int64_t>(s * 1000)); }

// Seconds since the epoch at which each call ran.

TEST(LoopingCallTest, StartNowCallsAtOnceThenEveryInterval) {
  Clock clock;
  std::vector<double> at;
  LoopingCall lc(&clock, [&] { at.push_back(absl::ToDoubleSeconds(clock.seconds() - absl::UnixEpoch())); });
  Deferred<Unit> stopped = lc.start(absl::Seconds(1));
  EXPECT_TRUE(lc.running());
  EXPECT_EQ(at, std::vector<double>{0});
  clock.pump({S(1), S(1), S(0.5)});
  EXPECT_EQ(at, (std::vector<double>{0, 1, 2}));
  EXPECT_EQ(stopped.result(), nullptr);
  ASSERT_TRUE(lc.stop().ok());
  EXPECT_FALSE(lc.running());
  ASSERT_NE(stopped.result(), nullptr);
  EXPECT_TRUE(stopped.result()->ok());
  EXPECT_EQ(clock.pendingCalls(), 0u);
  clock.advance(S(5));
  EXPECT_EQ(at.size(), 3u);
}

TEST(LoopingCallTest, StartLaterWaitsOneInterval) {
  Clock clock;
  int calls = 0;
  LoopingCall lc(&clock, [&] { ++calls; });
  lc.start(absl::Seconds(2), /*now=*/false);
  EXPECT_EQ(calls, 0);
  clock.advance(S(1.9));
  EXPECT_EQ(calls, 0);
  clock.advance(S(0.1));
  EXPECT_EQ(calls, 1);
  lc.stop().IgnoreError();
}

TEST(LoopingCallTest, MissedIntervalsAreSkipped) {
  Clock clock;
  std::vector<absl::Time> at;
  LoopingCall lc(&clock, [&] { at.push_back(clock.seconds()); });
  lc.start(absl::Seconds(1));
  clock.advance(S(3.5));  // the calls due at 1, 2 and 3 are one late call
  ASSERT_EQ(at.size(), 2u);
  EXPECT_EQ(at[1], absl::UnixEpoch() + S(3.5));
  clock.advance(S(0.4));
  EXPECT_EQ(at.size(), 2u);
  clock.advance(S(0.1));  // back on the grid: 4
  ASSERT_EQ(at.size(), 3u);
  EXPECT_EQ(at[2], absl::UnixEpoch() + S(4));
  lc.stop().IgnoreError();
}

TEST(LoopingCallTest, WithCountSaysHowManyIntervalsPassed) {
  Clock clock;
  std::vector<int64_t> counts;
  LoopingCall lc = LoopingCall::withCount(&clock, [&](int64_t n) { counts.push_back(n); });
  lc.start(absl::Seconds(1));
  clock.advance(S(1));
  clock.advance(S(2.5));
  clock.advance(S(0.5));
  EXPECT_EQ(counts, (std::vector<int64_t>{1, 1, 2, 1}));
  lc.stop().IgnoreError();

  // Started later: the first call is one interval in.
  Clock clock2;
  std::vector<int64_t> counts2;
  LoopingCall lc2 = LoopingCall::withCount(&clock2, [&](int64_t n) { counts2.push_back(n); });
  lc2.start(absl::Seconds(1), /*now=*/false);
  clock2.advance(S(3));
  EXPECT_EQ(counts2, std::vector<int64_t>{3});
  lc2.stop().IgnoreError();
}

// A LoopingCall whose function returns a Deferred that the test fires:
// `pending` is the last call's.
class PendingLoopingCallTest : public ::testing::Test {
 protected:
  Clock clock;
  std::optional<Deferred<Unit>> pending;
  int calls = 0;
  LoopingCall lc{&clock, [this] {
                   ++calls;
                   pending.emplace();
                   return *pending;
                 }};
};

TEST_F(PendingLoopingCallTest, ADeferredResultDelaysTheNextCall) {
  Deferred<Unit> stopped = lc.start(absl::Seconds(1));
  EXPECT_EQ(calls, 1);
  clock.advance(S(5));
  EXPECT_EQ(calls, 1);  // nothing scheduled while the Deferred is pending
  EXPECT_EQ(clock.pendingCalls(), 0u);
  ASSERT_TRUE(pending->callback(Unit{}).ok());  // at 5: next at 6
  clock.advance(S(1));
  EXPECT_EQ(calls, 2);
  // Stopped while the function's Deferred is pending: fires when it does.
  ASSERT_TRUE(lc.stop().ok());
  EXPECT_EQ(stopped.result(), nullptr);
  ASSERT_TRUE(pending->callback(Unit{}).ok());
  ASSERT_NE(stopped.result(), nullptr);
  EXPECT_TRUE(stopped.result()->ok());
  clock.advance(S(5));
  EXPECT_EQ(calls, 2);
}

TEST_F(PendingLoopingCallTest, RestartedWhileItsDeferredIsPendingRunsOneLoop) {
  Deferred<Unit> first = lc.start(absl::Seconds(1));
  Deferred<Unit> first_call = *pending;
  ASSERT_TRUE(lc.stop().ok());
  Deferred<Unit> second = lc.start(absl::Seconds(1));
  EXPECT_EQ(calls, 2);
  // The first loop's call ends: it ends the first loop, not the second.
  ASSERT_TRUE(first_call.callback(Unit{}).ok());
  ASSERT_NE(first.result(), nullptr);
  EXPECT_TRUE(first.result()->ok());
  EXPECT_EQ(second.result(), nullptr);
  EXPECT_EQ(clock.pendingCalls(), 0u);  // the second waits for its own call
  ASSERT_TRUE(pending->callback(Unit{}).ok());
  EXPECT_EQ(clock.pendingCalls(), 1u);
  clock.advance(S(1));
  EXPECT_EQ(calls, 3);
  ASSERT_TRUE(lc.stop().ok());
  ASSERT_TRUE(pending->callback(Unit{}).ok());
  ASSERT_NE(second.result(), nullptr);
  EXPECT_TRUE(second.result()->ok());
  EXPECT_EQ(clock.pendingCalls(), 0u);
}

TEST(LoopingCallTest, AnErrorStopsTheLoopAndFailsItsDeferred) {
  Clock clock;
  int calls = 0;
  LoopingCall lc(&clock, [&]() -> absl::Status {
    if (++calls == 3) return absl::InternalError("broke");
    return absl::OkStatus();
  });
  Deferred<Unit> stopped = lc.start(absl::Seconds(1));
  clock.pump({S(1), S(1), S(1), S(1)});
  EXPECT_EQ(calls, 3);
  EXPECT_FALSE(lc.running());
  ASSERT_NE(stopped.result(), nullptr);
  EXPECT_EQ(stopped.result()->status(), absl::InternalError("broke"));
  stopped.addErrback([](absl::Status) { return absl::OkStatus(); });
  EXPECT_TRUE(absl::IsFailedPrecondition(lc.stop()));
}

TEST(LoopingCallTest, MisuseIsReported) {
  Clock clock;
  LoopingCall lc(&clock, [] {});
  EXPECT_TRUE(absl::IsFailedPrecondition(lc.stop()));
  EXPECT_TRUE(absl::IsFailedPrecondition(lc.reset()));
  Deferred<Unit> bad = lc.start(absl::Seconds(-1));
  EXPECT_TRUE(absl::IsInvalidArgument(bad.result()->status()));
  bad.addErrback([](absl::Status) { return absl::OkStatus(); });
  EXPECT_FALSE(lc.running());
  lc.start(absl::Seconds(1));
  Deferred<Unit> twice = lc.start(absl::Seconds(1));
  EXPECT_TRUE(absl::IsFailedPrecondition(twice.result()->status()));
  twice.addErrback([](absl::Status) { return absl::OkStatus(); });
  EXPECT_TRUE(lc.running());
  lc.stop().IgnoreError();
}

TEST(LoopingCallTest, ResetRestartsTheInterval) {
  Clock clock;
  int calls = 0;
  LoopingCall lc(&clock, [&] { ++calls; });
  lc.start(absl::Seconds(1));
  clock.advance(S(0.7));
  ASSERT_TRUE(lc.reset().ok());
  clock.advance(S(0.7));  // 1.4: 0.7 since the reset
  EXPECT_EQ(calls, 1);
  clock.advance(S(0.3));
  EXPECT_EQ(calls, 2);
  lc.stop().IgnoreError();
}

TEST(LoopingCallTest, TheFunctionMayStopItsLoop) {
  Clock clock;
  int calls = 0;
  std::optional<LoopingCall> lc;
  lc.emplace(&clock, [&] {
    if (++calls == 2) lc->stop().IgnoreError();
  });
  Deferred<Unit> stopped = lc->start(absl::Seconds(1));
  clock.pump({S(1), S(1)});
  EXPECT_EQ(calls, 2);
  ASSERT_NE(stopped.result(), nullptr);
  EXPECT_TRUE(stopped.result()->ok());
  EXPECT_EQ(clock.pendingCalls(), 0u);
}

TEST(LoopingCallTest, DestroyingItCancelsThePendingCall) {
  Clock clock;
  int calls = 0;
  std::optional<Deferred<Unit>> pending;
  {
    LoopingCall lc(&clock, [&] { ++calls; });
    lc.start(absl::Seconds(1));
    EXPECT_EQ(clock.pendingCalls(), 1u);
  }
  EXPECT_EQ(clock.pendingCalls(), 0u);
  {
    // Destroyed while its function's Deferred is pending: that fires later
    // into nothing.
    LoopingCall lc(&clock, [&] {
      pending.emplace();
      return *pending;
    });
    lc.start(absl::Seconds(1));
  }
  ASSERT_TRUE(pending->callback(Unit{}).ok());
  clock.advance(S(3));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(clock.pendingCalls(), 0u);
}

TEST(DeferLaterTest, FiresAfterTheDelay) {
  Clock clock;
  Deferred<int> d = deferLater(&clock, S(2), [] { return 7; });
  clock.advance(S(1.9));
  EXPECT_EQ(d.result(), nullptr);
  clock.advance(S(0.1));
  ASSERT_NE(d.result(), nullptr);
  EXPECT_EQ(**d.result(), 7);
  Deferred<Unit> plain = deferLater(&clock, S(1));
  clock.advance(S(1));
  ASSERT_NE(plain.result(), nullptr);
  EXPECT_TRUE(plain.result()->ok());
}

TEST(DeferLaterTest, CancelCancelsTheCall) {
  Clock clock;
  bool ran = false;
  Deferred<Unit> d = deferLater(&clock, S(2), [&] { ran = true; });
  EXPECT_EQ(clock.pendingCalls(), 1u);
  d.cancel();
  EXPECT_EQ(clock.pendingCalls(), 0u);
  ASSERT_NE(d.result(), nullptr);
  EXPECT_TRUE(absl::IsCancelled(d.result()->status()));
  d.addErrback([](absl::Status) { return absl::OkStatus(); });
  clock.advance(S(5));
  EXPECT_FALSE(ran);
}

TEST(DeferLaterTest, ClockDestroyedFirstFreesTheChain) {
  // Under ASan: the timer's closure and the Deferred's canceller refer to
  // each other until the clock drops its calls.
  auto clock = std::make_unique<Clock>();
  Deferred<Unit> d = deferLater(clock.get(), S(2));
  clock.reset();
  EXPECT_EQ(d.result(), nullptr);
}

}  // namespace
}  // namespace task
}  // namespace twist
