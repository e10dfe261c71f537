// Coroutines over Deferred on task::Clock: co_await gives StatusOr, a
// coroutine returning Deferred runs at once (ensureDeferred), cancelling it
// cancels what it awaits, and a frame whose Deferred can never fire is
// destroyed rather than leaked (ASan's leak check runs these).

#include "framework/coro.h"

#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "framework/task_clock.h"
#include "gtest/gtest.h"

// The ABI check of docs/design.md: compiled as C++20, Debian's Abseil
// (built as C++17) still gives its own string_view and optional, as its
// options.h pins them; the C++17 objects and these agree.
static_assert(!std::is_same_v<absl::string_view, std::string_view>);
static_assert(!std::is_same_v<absl::optional<int>, std::optional<int>>);

namespace twist {
namespace {

absl::Duration S(int s) { return absl::Seconds(s); }

Deferred<int> addLater(task::Clock* clock, int a, int b, std::vector<std::string>* log) {
  log->push_back("start");
  absl::StatusOr<Unit> slept = co_await sleep(clock, S(1));
  if (!slept.ok()) co_return slept.status();
  log->push_back("slept");
  absl::StatusOr<int> x = co_await task::deferLater(clock, S(1), [a] { return a; });
  if (!x.ok()) co_return x.status();
  co_return *x + b;
}

TEST(CoroTest, AwaitsDeferredsAndFiresItsOwn) {
  task::Clock clock;
  std::vector<std::string> log;
  Deferred<int> d = addLater(&clock, 2, 3, &log);
  EXPECT_EQ(log, std::vector<std::string>{"start"});  // ran at once
  EXPECT_EQ(d.result(), nullptr);
  clock.advance(S(1));
  EXPECT_EQ(log, (std::vector<std::string>{"start", "slept"}));
  clock.advance(S(1));
  ASSERT_NE(d.result(), nullptr);
  EXPECT_EQ(**d.result(), 5);
}

Deferred<std::string> awaitTwice(Deferred<int> a, Deferred<int> b) {
  absl::StatusOr<int> x = co_await std::move(a);
  absl::StatusOr<int> y = co_await std::move(b);
  co_return absl::StrCat(x.ok() ? absl::StrCat(*x) : x.status().ToString(), ",",
                         y.ok() ? absl::StrCat(*y) : y.status().ToString());
}

TEST(CoroTest, FiredDeferredsContinueAtOnceAndErrorsAreValues) {
  Deferred<std::string> d = awaitTwice(succeed(1), fail<int>(absl::NotFoundError("b")));
  ASSERT_NE(d.result(), nullptr);
  EXPECT_EQ(**d.result(), "1,NOT_FOUND: b");
}

Deferred<Unit> failing(Deferred<int> in) {
  absl::StatusOr<int> x = co_await std::move(in);
  if (!x.ok()) co_return x.status();
  co_return absl::OkStatus();
}

TEST(CoroTest, CoReturnedErrorsFailTheDeferred) {
  Deferred<int> in;
  Deferred<Unit> d = failing(in);
  ASSERT_TRUE(in.errback(absl::DataLossError("x")).ok());
  ASSERT_NE(d.result(), nullptr);
  EXPECT_EQ(d.result()->status(), absl::DataLossError("x"));
  d.addErrback([](absl::Status) { return absl::OkStatus(); });
  Deferred<int> ok;
  Deferred<Unit> e = failing(ok);
  ASSERT_TRUE(ok.callback(1).ok());
  EXPECT_TRUE(e.result()->ok());
}

TEST(CoroTest, CancellingTheCoroutineCancelsWhatItAwaits) {
  task::Clock clock;
  std::vector<std::string> log;
  Deferred<int> d = addLater(&clock, 1, 1, &log);
  EXPECT_EQ(clock.pendingCalls(), 1u);
  d.cancel();
  EXPECT_EQ(clock.pendingCalls(), 0u);  // the sleep's call is gone
  ASSERT_NE(d.result(), nullptr);
  EXPECT_TRUE(absl::IsCancelled(d.result()->status()));
  EXPECT_EQ(log, std::vector<std::string>{"start"});
  d.addErrback([](absl::Status) { return 0; });
}

struct Counted {
  explicit Counted(int* n) : n(n) { ++*n; }
  ~Counted() { --*n; }
  int* n;
};

Deferred<Unit> sleepForever(task::Clock* clock, int* alive) {
  Counted c(alive);
  co_await sleep(clock, absl::Hours(1));
  co_return absl::OkStatus();
}

// The same, awaiting a local: co_await takes the local's handle, so the
// frame does not keep the Deferred that owns it.
Deferred<Unit> sleepForeverFromALocal(task::Clock* clock, int* alive) {
  Counted c(alive);
  Deferred<Unit> nap = sleep(clock, absl::Hours(1));
  co_await std::move(nap);
  co_return absl::OkStatus();
}

TEST(CoroTest, AFrameWhoseDeferredCanNeverFireIsDestroyed) {
  for (auto* coroutine : {&sleepForever, &sleepForeverFromALocal}) {
    int alive = 0;
    auto clock = std::make_unique<task::Clock>();
    Deferred<Unit> d = coroutine(clock.get(), &alive);
    EXPECT_EQ(alive, 1);
    clock.reset();  // drops the call that held the sleep's Deferred
    EXPECT_EQ(alive, 0);
    EXPECT_EQ(d.result(), nullptr);  // never fired
  }
}

// `co_await d` on an lvalue does not compile: a frame holding the Deferred
// it waits for would be a cycle (a leak if it never fired).
template <class D>
concept Awaitable = requires(D&& d) { operator co_await(std::forward<D>(d)); };
static_assert(Awaitable<Deferred<int>>);
static_assert(!Awaitable<Deferred<int>&>);
static_assert(!Awaitable<const Deferred<int>&>);

// Catches the cancellation and goes on (Twisted's inlineCallbacks allows
// it): the coroutine, not cancel(), says how its Deferred ends.
Deferred<int> stubborn(task::Clock* clock) {
  absl::StatusOr<Unit> slept = co_await sleep(clock, S(1));
  if (!absl::IsCancelled(slept.status())) co_return -1;
  absl::StatusOr<Unit> again = co_await sleep(clock, S(1));
  if (!again.ok()) co_return again.status();
  co_return 7;
}

TEST(CoroTest, ACoroutineThatRecoversFromCancelDecidesItsResult) {
  task::Clock clock;
  Deferred<int> d = stubborn(&clock);
  d.cancel();
  EXPECT_EQ(d.result(), nullptr);  // waits for what the coroutine returns
  EXPECT_TRUE(d.paused());
  EXPECT_EQ(clock.pendingCalls(), 1u);  // the second sleep
  clock.advance(S(1));
  ASSERT_NE(d.result(), nullptr);
  EXPECT_EQ(**d.result(), 7);

  // Cancelling again reaches the second sleep, and the coroutine gives up.
  Deferred<int> e = stubborn(&clock);
  e.cancel();
  e.cancel();
  EXPECT_EQ(clock.pendingCalls(), 0u);
  ASSERT_NE(e.result(), nullptr);
  EXPECT_TRUE(absl::IsCancelled(e.result()->status()));
  e.addErrback([](absl::Status) { return 0; });
}

Deferred<int> chained(Deferred<int> in) {
  absl::StatusOr<int> x = co_await std::move(in);
  co_return x.ok() ? *x * 2 : -1;
}

TEST(CoroTest, CoroutinesCompose) {
  Deferred<int> src;
  Deferred<int> d = chained(chained(src));
  ASSERT_TRUE(src.callback(3).ok());
  EXPECT_EQ(**d.result(), 12);
}

}  // namespace
}  // namespace twist
