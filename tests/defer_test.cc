// Deferred's behaviour table (Twisted's test_defer, the parts twist has):
// callback/errback chains, chaining on a returned Deferred, type changes,
// firing twice, cancellation, DeferredList/gatherResults, unhandled errors.

#include "framework/defer.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace twist {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Twisted's successResultOf / failureResultOf.
template <class T>
T ValueOf(const Deferred<T>& d) {
  const absl::StatusOr<T>* r = d.result();
  EXPECT_NE(r, nullptr) << "no result";
  if (r == nullptr) return T();
  EXPECT_TRUE(r->ok()) << r->status();
  return r->ok() ? **r : T();
}
template <class T>
absl::Status ErrorOf(const Deferred<T>& d) {
  const absl::StatusOr<T>* r = d.result();
  EXPECT_NE(r, nullptr) << "no result";
  if (r == nullptr) return absl::UnknownError("no result");
  EXPECT_FALSE(r->ok());
  return r->status();
}

// Whatever a block writes on stderr.
template <class F>
std::string StderrOf(F f) {
  testing::internal::CaptureStderr();
  f();
  return testing::internal::GetCapturedStderr();
}

TEST(DeferredTest, CallbacksRunInOrderAndTransformTheValue) {
  std::vector<std::string> seen;
  Deferred<int> d;
  d.addCallback([&](int x) {
     seen.push_back(absl::StrCat("a", x));
     return x + 1;
   })
      .addCallback([&](int x) {
        seen.push_back(absl::StrCat("b", x));
        return x * 10;
      });
  EXPECT_THAT(seen, IsEmpty());
  EXPECT_EQ(d.result(), nullptr);
  EXPECT_TRUE(d.callback(1).ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"a1", "b2"}));
  EXPECT_EQ(ValueOf(d), 20);
}

TEST(DeferredTest, CallbackAddedAfterFiringRunsAtOnce) {
  Deferred<int> d = succeed(5);
  int got = 0;
  d.addCallback([&](int x) {
    got = x;
    return x;
  });
  EXPECT_EQ(got, 5);
}

TEST(DeferredTest, ErrorsSkipCallbacksAndReachErrbacks) {
  bool callback_ran = false;
  absl::Status seen;
  Deferred<int> d;
  d.addCallback([&](int x) {
     callback_ran = true;
     return x;
   })
      .addErrback([&](absl::Status e) {
        seen = e;
        return e;  // still failing
      })
      .addErrback([](absl::Status) { return 7; });  // recovers
  int after = 0;
  d.addCallback([&](int x) {
    after = x;
    return x;
  });
  ASSERT_TRUE(d.errback(absl::NotFoundError("gone")).ok());
  EXPECT_FALSE(callback_ran);
  EXPECT_EQ(seen, absl::NotFoundError("gone"));
  EXPECT_EQ(after, 7);
  EXPECT_EQ(ValueOf(d), 7);
}

TEST(DeferredTest, ErrbacksAreSkippedOnSuccess) {
  bool errback_ran = false;
  Deferred<int> d = succeed(3);
  d.addErrback([&](absl::Status e) {
    errback_ran = true;
    return e;
  });
  EXPECT_FALSE(errback_ran);
  EXPECT_EQ(ValueOf(d), 3);
}

TEST(DeferredTest, ACallbackThatFailsSwitchesToErrbacks) {
  Deferred<int> d = succeed(3);
  d.addCallback([](int) -> absl::StatusOr<int> { return absl::InternalError("bad"); });
  d.addCallback([](int x) { return x + 100; });  // skipped
  EXPECT_EQ(ErrorOf(d), absl::InternalError("bad"));
  d.addErrback([](absl::Status) { return 0; });  // handled: nothing logged
}

TEST(DeferredTest, AddCallbacksErrbackDoesNotSeeItsOwnCallbacksError) {
  std::vector<std::string> seen;
  Deferred<int> d = succeed(1);
  d.addCallbacks(
      [&](int) -> absl::StatusOr<int> {
        seen.push_back("callback");
        return absl::InternalError("from callback");
      },
      [&](absl::Status e) -> absl::StatusOr<int> {
        seen.push_back("same-level errback");
        return e;
      });
  d.addErrback([&](absl::Status) {
    seen.push_back("next errback");
    return 0;
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"callback", "next errback"}));
}

TEST(DeferredTest, AddBothSeesValuesAndErrors) {
  std::vector<std::string> seen;
  auto both = [&](absl::StatusOr<int> r) -> absl::StatusOr<int> {
    seen.push_back(r.ok() ? absl::StrCat(*r) : std::string(r.status().message()));
    return r;
  };
  Deferred<int> ok = succeed(4);
  ok.addBoth(both);
  Deferred<int> bad = fail<int>(absl::UnavailableError("lost"));
  bad.addBoth(both).addErrback([](absl::Status) { return 0; });
  EXPECT_EQ(seen, (std::vector<std::string>{"4", "lost"}));
}

TEST(DeferredTest, AnOkStatusWhereAValueIsNeededIsAnError) {
  Deferred<int> d = fail<int>(absl::NotFoundError("x"));
  d.addErrback([](absl::Status) { return absl::OkStatus(); });
  EXPECT_TRUE(absl::IsInternal(ErrorOf(d)));
  d.addErrback([](absl::Status) { return 0; });
}

TEST(DeferredTest, UnitDeferredsTakeAndReturnNothing) {
  int calls = 0;
  Deferred<Unit> d;
  d.addCallback([&] { ++calls; })
      .addCallback([&](Unit) { ++calls; })
      .addCallback([&]() -> absl::Status { return absl::AbortedError("stop"); })
      .addErrback([&](absl::Status e) {
        ++calls;
        EXPECT_TRUE(absl::IsAborted(e));
        return absl::OkStatus();  // recovers: OK means Unit here
      });
  ASSERT_TRUE(d.callback(Unit{}).ok());
  EXPECT_EQ(calls, 3);
  ASSERT_NE(d.result(), nullptr);
  EXPECT_TRUE(d.result()->ok());
}

TEST(DeferredTest, ThenChangesTheType) {
  Deferred<int> d;
  Deferred<std::string> s = d.then([](int x) { return absl::StrCat("n=", x); });
  Deferred<size_t> n = s.then([](const std::string& t) { return t.size(); });
  size_t got = 0;
  Deferred<Unit> done = n.then([&](size_t x) { got = x; });
  ASSERT_TRUE(d.callback(42).ok());
  EXPECT_EQ(got, 4u);
  ASSERT_NE(done.result(), nullptr);
  EXPECT_TRUE(done.result()->ok());
  // The first Deferreds handed their results on.
  EXPECT_EQ(d.result(), nullptr);
  EXPECT_EQ(s.result(), nullptr);
}

TEST(DeferredTest, ThenPassesErrorsOnWithoutCallingF) {
  bool called = false;
  Deferred<int> d = fail<int>(absl::PermissionDeniedError("no"));
  Deferred<std::string> s = d.then([&](int) {
    called = true;
    return std::string("x");
  });
  EXPECT_FALSE(called);
  EXPECT_EQ(ErrorOf(s), absl::PermissionDeniedError("no"));
  s.addErrback([](absl::Status) { return std::string("recovered"); });
  EXPECT_EQ(ValueOf(s), "recovered");
}

TEST(DeferredTest, ThenWithAFailingOrDeferredResult) {
  Deferred<int> d;
  Deferred<std::string> inner;
  Deferred<std::string> s = d.then([&](int) { return inner; });
  Deferred<double> f = s.then([](std::string) -> absl::StatusOr<double> {
    return absl::OutOfRangeError("too big");
  });
  ASSERT_TRUE(d.callback(1).ok());
  EXPECT_TRUE(s.paused());
  EXPECT_EQ(f.result(), nullptr);
  ASSERT_TRUE(inner.callback("hi").ok());
  EXPECT_EQ(ErrorOf(f), absl::OutOfRangeError("too big"));
  f.addErrback([](absl::Status) { return 0.0; });
}

// Chaining: a callback that returns a Deferred pauses the chain until that
// one fires, whose result the chain then carries on with.
TEST(DeferredTest, ReturnedDeferredPausesTheChainUntilItFires) {
  Deferred<int> outer;
  Deferred<int> inner;
  std::vector<int> seen;
  outer.addCallback([&](int x) {
    seen.push_back(x);
    return inner;
  });
  outer.addCallback([&](int x) {
    seen.push_back(x);
    return x + 1;
  });
  ASSERT_TRUE(outer.callback(1).ok());
  EXPECT_EQ(seen, std::vector<int>{1});
  EXPECT_TRUE(outer.paused());
  EXPECT_EQ(outer.result(), nullptr);
  ASSERT_TRUE(inner.callback(10).ok());
  EXPECT_EQ(seen, (std::vector<int>{1, 10}));
  EXPECT_FALSE(outer.paused());
  EXPECT_EQ(ValueOf(outer), 11);
  // The inner Deferred handed its result on: nothing more runs there.
  bool ran = false;
  inner.addCallback([&](int x) {
    ran = true;
    return x;
  });
  EXPECT_FALSE(ran);
}

TEST(DeferredTest, ReturnedDeferredThatFailsReachesTheOuterErrbacks) {
  Deferred<int> outer = succeed(1);
  Deferred<int> inner;
  outer.addCallback([&](int) { return inner; });
  absl::Status seen;
  outer.addErrback([&](absl::Status e) {
    seen = e;
    return -1;
  });
  // The error is the outer chain's to handle: nothing is logged for inner.
  std::string err = StderrOf([&] {
    ASSERT_TRUE(inner.errback(absl::DataLossError("corrupt")).ok());
    inner = Deferred<int>();
  });
  EXPECT_EQ(seen, absl::DataLossError("corrupt"));
  EXPECT_EQ(ValueOf(outer), -1);
  EXPECT_EQ(err, "");
}

TEST(DeferredTest, ReturnedDeferredThatAlreadyFiredContinuesAtOnce) {
  Deferred<int> outer = succeed(1);
  outer.addCallback([](int x) { return succeed(x + 1); })
      .addCallback([](int x) { return succeed(x * 3); });
  EXPECT_EQ(ValueOf(outer), 6);
}

TEST(DeferredTest, NestedChainsResumeInOrder) {
  // A callback's Deferred itself waits for another one.
  Deferred<int> a, b, c;
  a.addCallback([&](int) { return b; });
  b.addCallback([&](int) { return c; });
  ASSERT_TRUE(a.callback(0).ok());
  ASSERT_TRUE(b.callback(0).ok());
  EXPECT_TRUE(a.paused());
  EXPECT_TRUE(b.paused());
  ASSERT_TRUE(c.callback(9).ok());
  EXPECT_EQ(ValueOf(a), 9);
}

TEST(DeferredTest, ACallbackReturningItsOwnDeferredIsAnError) {
  Deferred<int> d;
  d.addCallback([&](int) { return d; });
  ASSERT_TRUE(d.callback(1).ok());
  EXPECT_TRUE(absl::IsInternal(ErrorOf(d)));
  d.addErrback([](absl::Status) { return 0; });
}

TEST(DeferredTest, FiringTwiceIsAnErrorThatNamesBothCalls) {
  Deferred<int> d;
  ASSERT_TRUE(d.callback(1).ok());
  absl::Status again = d.callback(2);
  EXPECT_TRUE(absl::IsFailedPrecondition(again));
  EXPECT_THAT(again.message(), HasSubstr("AlreadyCalledError"));
  EXPECT_THAT(again.message(), HasSubstr("callback() on a Deferred already fired by callback()"));
  absl::Status err = d.errback(absl::InternalError("x"));
  EXPECT_THAT(err.message(), HasSubstr("errback() on a Deferred already fired by callback()"));
  EXPECT_EQ(ValueOf(d), 1);  // the first result stands

  Deferred<int> e;
  ASSERT_TRUE(e.errback(absl::InternalError("x")).ok());
  EXPECT_THAT(e.callback(1).message(),
              HasSubstr("callback() on a Deferred already fired by errback()"));
  e.addErrback([](absl::Status) { return 0; });
}

TEST(DeferredTest, ErrbackNeedsAnError) {
  Deferred<int> d;
  EXPECT_TRUE(absl::IsInvalidArgument(d.errback(absl::OkStatus())));
  EXPECT_FALSE(d.called());
}

TEST(DeferredTest, CancelWithoutCancellerFailsWithCancelledError) {
  Deferred<int> d;
  absl::Status seen;
  d.addErrback([&](absl::Status e) {
    seen = e;
    return 0;
  });
  d.cancel();
  EXPECT_TRUE(d.called());
  EXPECT_TRUE(absl::IsCancelled(seen));
  EXPECT_EQ(seen, CancelledError());
  // The source of the result does not know: its one late call is swallowed,
  // as in Twisted; a second is an error again.
  EXPECT_TRUE(d.callback(5).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(d.callback(6)));
  EXPECT_EQ(ValueOf(d), 0);
}

TEST(DeferredTest, CancellerMayFireTheDeferred) {
  int cancels = 0;
  Deferred<int> d([&](Deferred<int>& self) {
    ++cancels;
    ASSERT_TRUE(self.callback(-1).ok());
  });
  d.cancel();
  EXPECT_EQ(cancels, 1);
  EXPECT_EQ(ValueOf(d), -1);
  d.cancel();  // fired: nothing to do
  EXPECT_EQ(cancels, 1);
}

TEST(DeferredTest, CancellerThatDoesNotFireLeavesCancelledError) {
  int cancels = 0;
  Deferred<int> d([&](Deferred<int>&) { ++cancels; });
  d.cancel();
  EXPECT_EQ(cancels, 1);
  EXPECT_TRUE(absl::IsCancelled(ErrorOf(d)));
  // With a canceller, a late result is an error (Twisted does the same).
  EXPECT_TRUE(absl::IsFailedPrecondition(d.callback(1)));
  d.addErrback([](absl::Status) { return 0; });
}

TEST(DeferredTest, CancelAfterFiringDoesNothing) {
  Deferred<int> d = succeed(2);
  d.cancel();
  EXPECT_EQ(ValueOf(d), 2);
}

TEST(DeferredTest, CancelWhilePausedCancelsTheAwaitedDeferred) {
  bool inner_cancelled = false;
  Deferred<int> inner([&](Deferred<int>&) { inner_cancelled = true; });
  Deferred<int> outer = succeed(1);
  outer.addCallback([&](int) { return inner; });
  ASSERT_TRUE(outer.paused());
  outer.cancel();
  EXPECT_TRUE(inner_cancelled);
  EXPECT_TRUE(absl::IsCancelled(ErrorOf(outer)));
  outer.addErrback([](absl::Status) { return 0; });
}

TEST(DeferredTest, CancellingThenCancelsTheFirstDeferred) {
  bool cancelled = false;
  Deferred<int> d([&](Deferred<int>&) { cancelled = true; });
  Deferred<std::string> s = d.then([](int x) { return absl::StrCat(x); });
  s.cancel();
  EXPECT_TRUE(cancelled);
  EXPECT_TRUE(absl::IsCancelled(ErrorOf(s)));
  s.addErrback([](absl::Status) { return std::string(); });
}

TEST(DeferredTest, UnhandledErrorIsLoggedOnceWhenDestroyed) {
  std::string err = StderrOf([] {
    Deferred<int> d;
    Deferred<int> copy = d;
    ASSERT_TRUE(d.errback(absl::NotFoundError("lost key")).ok());
  });
  EXPECT_EQ(err, "twist: Unhandled error in Deferred: NOT_FOUND: lost key\n");
}

TEST(DeferredTest, HandledOrPendingErrorsAreNotLogged) {
  std::string err = StderrOf([] {
    {
      Deferred<int> d = fail<int>(absl::NotFoundError("x"));
      d.addErrback([](absl::Status) { return 0; });
    }
    { Deferred<int> never_fired; }
    {
      Deferred<int> waiting = succeed(1);
      Deferred<int> inner;
      waiting.addCallback([&](int) { return inner; });
    }
    {
      // The error went on to the Deferred then() made, which handles it.
      Deferred<int> d = fail<int>(absl::NotFoundError("x"));
      d.then([](int) { return 1.0; }).addErrback([](absl::Status) { return 0.0; });
    }
  });
  EXPECT_EQ(err, "");
}

TEST(DeferredTest, ErrorHandedOnByThenIsLoggedByTheNewDeferred) {
  std::string err = StderrOf([] {
    Deferred<int> d = fail<int>(absl::NotFoundError("x"));
    d.then([](int) { return 1.0; });
  });
  EXPECT_EQ(err, "twist: Unhandled error in Deferred: NOT_FOUND: x\n");
}

TEST(DeferredTest, ChainHeldOnlyByItsSourceStillRuns) {
  // Fire and forget: the only owner is whatever will fire it.
  std::vector<int> seen;
  absl::AnyInvocable<void()> source;
  {
    Deferred<int> d;
    d.addCallback([&](int x) {
      seen.push_back(x);
      return x;
    });
    d.then([&](int x) {
      seen.push_back(x + 1);
      return x;
    });
    source = [d]() mutable { d.callback(3).IgnoreError(); };
  }
  source();
  EXPECT_EQ(seen, (std::vector<int>{3, 4}));
}

TEST(DeferredTest, ChainDeferredHandsTheResultOn) {
  Deferred<int> a, b;
  a.chainDeferred(b);
  ASSERT_TRUE(a.callback(8).ok());
  EXPECT_EQ(ValueOf(b), 8);
  EXPECT_EQ(a.result(), nullptr);
}

TEST(DeferredTest, CallbackMayAddCallbacksToItsOwnDeferred) {
  Deferred<int> d;
  std::vector<int> seen;
  d.addCallback([&](int x) {
    d.addCallback([&](int y) {
      seen.push_back(y);
      return y;
    });
    return x + 1;
  });
  ASSERT_TRUE(d.callback(1).ok());
  EXPECT_EQ(seen, std::vector<int>{2});
}

TEST(DeferredListTest, EmptyListFiresAtOnce) {
  auto dl = DeferredList(std::vector<Deferred<int>>{});
  ASSERT_NE(dl.result(), nullptr);
  EXPECT_THAT(ValueOf(dl), IsEmpty());
}

TEST(DeferredListTest, ResultsComeInListOrderWhenAllHaveFired) {
  Deferred<int> a, b, c;
  auto dl = DeferredList<int>({a, b, c}, {.consume_errors = true});
  ASSERT_TRUE(c.callback(3).ok());
  ASSERT_TRUE(a.errback(absl::NotFoundError("a")).ok());
  EXPECT_EQ(dl.result(), nullptr);
  ASSERT_TRUE(b.callback(2).ok());
  std::vector<absl::StatusOr<int>> r = ValueOf(dl);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].status(), absl::NotFoundError("a"));
  EXPECT_EQ(*r[1], 2);
  EXPECT_EQ(*r[2], 3);
}

TEST(DeferredListTest, FireOnOneErrbackFailsWithFirstError) {
  Deferred<int> a, b;
  auto dl = DeferredList<int>(
      {a, b}, {.fire_on_one_errback = true, .consume_errors = true});
  ASSERT_TRUE(b.errback(absl::UnavailableError("down")).ok());
  absl::Status e = ErrorOf(dl);
  EXPECT_TRUE(absl::IsUnavailable(e));
  EXPECT_EQ(e.message(), "FirstError[#1, down]");
  ASSERT_TRUE(a.callback(1).ok());  // later results change nothing
  EXPECT_EQ(ErrorOf(dl), e);
  dl.addErrback([](absl::Status) { return std::vector<absl::StatusOr<int>>(); });
}

TEST(DeferredListTest, ErrorsNotConsumedStayUnhandledWithTheirDeferred) {
  std::string err = StderrOf([] {
    Deferred<int> a, b;
    auto dl = DeferredList<int>({a, b});
    ASSERT_TRUE(a.errback(absl::NotFoundError("a")).ok());
    ASSERT_TRUE(b.callback(1).ok());
    EXPECT_EQ(ValueOf(dl).size(), 2u);
  });
  EXPECT_EQ(err, "twist: Unhandled error in Deferred: NOT_FOUND: a\n");
  std::string consumed = StderrOf([] {
    Deferred<int> a;
    auto dl = DeferredList<int>({a}, {.consume_errors = true});
    ASSERT_TRUE(a.errback(absl::NotFoundError("a")).ok());
  });
  EXPECT_EQ(consumed, "");
}

TEST(DeferredListTest, CancelCancelsEveryDeferred) {
  int cancels = 0;
  Deferred<int> a([&](Deferred<int>&) { ++cancels; });
  Deferred<int> b([&](Deferred<int>&) { ++cancels; });
  auto dl = DeferredList<int>({a, b}, {.consume_errors = true});
  dl.cancel();
  EXPECT_EQ(cancels, 2);
  std::vector<absl::StatusOr<int>> r = ValueOf(dl);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_TRUE(absl::IsCancelled(r[0].status()));
  EXPECT_TRUE(absl::IsCancelled(r[1].status()));
}

TEST(GatherResultsTest, ValuesInOrder) {
  Deferred<std::string> a, b;
  auto g = gatherResults<std::string>({a, b});
  ASSERT_TRUE(b.callback("B").ok());
  ASSERT_TRUE(a.callback("A").ok());
  EXPECT_EQ(ValueOf(g), (std::vector<std::string>{"A", "B"}));
}

TEST(GatherResultsTest, FirstErrorFailsIt) {
  Deferred<int> a, b;
  auto g = gatherResults<int>({a, b}, /*consume_errors=*/true);
  ASSERT_TRUE(a.errback(absl::DeadlineExceededError("slow")).ok());
  EXPECT_EQ(ErrorOf(g), absl::DeadlineExceededError("FirstError[#0, slow]"));
  g.addErrback([](absl::Status) { return std::vector<int>(); });
  ASSERT_TRUE(b.callback(1).ok());
}

}  // namespace
}  // namespace twist
