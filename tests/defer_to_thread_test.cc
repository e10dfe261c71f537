// deferToThread: the work runs on a pool thread, the Deferred fires on the
// reactor's thread, and a reactor destroyed while the work runs is safe
// (run under TSan and ASan).

#include "framework/defer_to_thread.h"

#include <chrono>
#include <future>
#include <optional>
#include <string>
#include <memory>
#include <thread>

#include "absl/status/status.h"
#include "framework/reactor.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using testing::RunUntil;

TEST(DeferToThreadTest, ResultComesBackOnTheReactorThread) {
  auto reactor = testing::MakeReactor("epoll");
  const std::thread::id reactor_thread = std::this_thread::get_id();
  std::thread::id worked_on;
  std::thread::id fired_on;
  Deferred<int> d = deferToThread(reactor.get(), [&] {
    worked_on = std::this_thread::get_id();
    return 6 * 7;
  });
  int got = 0;
  d.addCallback([&](int x) {
    fired_on = std::this_thread::get_id();
    got = x;
    return x;
  });
  ASSERT_TRUE(RunUntil(*reactor, [&] { return got != 0; }));
  EXPECT_EQ(got, 42);
  EXPECT_NE(worked_on, reactor_thread);
  EXPECT_EQ(fired_on, reactor_thread);
}

TEST(DeferToThreadTest, ErrorsAndUnitResults) {
  auto reactor = testing::MakeReactor("epoll");
  Deferred<Unit> bad = deferToThread(reactor.get(), [] { return absl::NotFoundError("x"); });
  Deferred<Unit> fine = deferToThread(reactor.get(), [] {});
  ASSERT_TRUE(RunUntil(*reactor, [&] { return bad.called() && fine.called(); }));
  EXPECT_EQ(bad.result()->status(), absl::NotFoundError("x"));
  EXPECT_TRUE(fine.result()->ok());
  bad.addErrback([](absl::Status) { return absl::OkStatus(); });
}

// Work that holds a pool thread until release() (or the helper goes):
// waitStarted() returns once a thread runs it. Declare it before the
// reactor, so that a thread still blocked is let go after the reactor.
class BlockingWork {
 public:
  ~BlockingWork() {
    if (!released_) release();
  }
  template <class T = int>
  Deferred<T> start(ReactorThreads* reactor, T value = T()) {
    return deferToThread(reactor, [gate = gate_, started = started_, value] {
      started->set_value();
      gate.wait();
      return value;
    });
  }
  void waitStarted() { started_future_.wait(); }
  bool startedWithin(absl::Duration d) {
    return started_future_.wait_for(absl::ToChronoMilliseconds(d)) ==
           std::future_status::ready;
  }
  void release() {
    released_ = true;
    release_.set_value();
  }

 private:
  std::promise<void> release_;
  std::shared_future<void> gate_ = release_.get_future().share();
  std::shared_ptr<std::promise<void>> started_ = std::make_shared<std::promise<void>>();
  std::future<void> started_future_ = started_->get_future();
  bool released_ = false;
};

TEST(DeferToThreadTest, ReactorDestroyedWhileTheWorkRuns) {
  BlockingWork work;
  auto reactor = testing::MakeReactor("epoll");
  bool fired = false;
  work.start(reactor.get(), 1).addBoth([&](absl::StatusOr<int> r) {
    fired = true;
    return r;
  });
  work.waitStarted();
  reactor.reset();  // the work is still running
  work.release();
  // The pool's thread finds no reactor and drops the result; nothing fires.
  // (The pool went with the reactor; its thread ends on its own.)
  EXPECT_FALSE(fired);
}

std::unique_ptr<Reactor> ReactorWithGrace(absl::Duration grace) {
  ReactorOptions options;
  options.shutdown_grace = grace;
  absl::StatusOr<std::unique_ptr<Reactor>> r = Reactor::Create(options);
  EXPECT_TRUE(r.ok()) << r.status();
  return *std::move(r);
}

// Twisted stops the reactor's pool "during shutdown"; the rule:
// work no thread has taken is dropped and reported, running work is
// waited for. One thread: A runs and blocks, B waits in the queue. B's
// CANCELLED (delivered while run() shuts down) is what lets A finish, so
// A's result arrives before run() returns only if both rules hold.
TEST(DeferToThreadTest, StoppingDropsQueuedWorkAndWaitsForRunningWork) {
  BlockingWork a;
  std::unique_ptr<Reactor> reactor = ReactorWithGrace(absl::Seconds(20));
  reactor->suggestThreadPoolSize(1);
  std::optional<absl::StatusOr<int>> a_result;
  std::optional<absl::Status> b_result;
  bool b_ran = false;
  reactor->callWhenRunning([&] {
    a.start(reactor.get(), 7).addBoth([&](absl::StatusOr<int> r) {
      a_result = r;
      return r;
    });
    Deferred<Unit> b = deferToThread(reactor.get(), [&b_ran] { b_ran = true; });
    b.addBoth([&](absl::StatusOr<Unit> r) {
      b_result = r.status();
      a.release();  // only now can A finish
      return absl::StatusOr<Unit>(Unit{});
    });
    a.waitStarted();  // A holds the one thread; B is queued
    EXPECT_EQ(reactor->threadPool().queued(), 1u);
    reactor->stop();
  });
  const absl::Time begun = absl::Now();
  reactor->run();
  ASSERT_TRUE(b_result.has_value()) << "queued work was not reported";
  EXPECT_TRUE(absl::IsCancelled(*b_result)) << *b_result;
  EXPECT_FALSE(b_ran);
  ASSERT_TRUE(a_result.has_value()) << "run() returned before the running work";
  ASSERT_TRUE(a_result->ok()) << a_result->status();
  EXPECT_EQ(**a_result, 7);
  EXPECT_LT(absl::Now() - begun, absl::Seconds(20)) << "waited out the grace";
}

// Started work that the reactor stops on, as `stop` says: waited for up to
// the grace (`cancel`: not at all, nobody wants it). Returns what run()
// printed on stderr and whether the Deferred fired before run() returned.
struct StopOutcome {
  std::string err;
  std::optional<absl::Status> fired;
  absl::Duration took;
};
StopOutcome StopWhileWorkRuns(absl::Duration grace, bool cancel) {
  BlockingWork work;
  std::unique_ptr<Reactor> reactor = ReactorWithGrace(grace);
  StopOutcome out;
  reactor->callWhenRunning([&] {
    Deferred<int> d = work.start(reactor.get(), 1);
    d.addBoth([&](absl::StatusOr<int> r) {
      out.fired = r.status();
      return absl::StatusOr<int>(0);
    });
    work.waitStarted();
    if (cancel) d.cancel();
    reactor->stop();
  });
  const absl::Time begun = absl::Now();
  ::testing::internal::CaptureStderr();
  reactor->run();
  out.err = ::testing::internal::GetCapturedStderr();
  out.took = absl::Now() - begun;
  return out;  // the reactor goes, then the work is let go
}

// Work that outlasts the grace is not waited for: run() returns, says so
// on stderr, and the reactor is still safe to destroy while it runs.
TEST(DeferToThreadTest, RunningWorkPastTheGraceIsNotWaitedFor) {
  StopOutcome out = StopWhileWorkRuns(absl::Milliseconds(200), /*cancel=*/false);
  EXPECT_FALSE(out.fired.has_value());
  EXPECT_NE(out.err.find("1 thread pool task(s) still running after the shutdown grace"),
            std::string::npos)
      << out.err;
}

// Work whose Deferred was cancelled is not waited for (nobody wants it):
// a blocked read of stdin must not hold a client's exit for the grace.
TEST(DeferToThreadTest, CancelledWorkIsNotWaitedForWhenStopping) {
  StopOutcome out = StopWhileWorkRuns(absl::Seconds(20), /*cancel=*/true);
  EXPECT_EQ(out.err, "");
  EXPECT_LT(out.took, absl::Seconds(10)) << "waited for cancelled work";
  ASSERT_TRUE(out.fired.has_value());
  EXPECT_TRUE(absl::IsCancelled(*out.fired)) << *out.fired;
}

// suggestThreadPoolSize (Twisted's name): a larger size takes queued work
// at once; the pool never runs more threads than it is given.
TEST(DeferToThreadTest, SuggestThreadPoolSizeResizesThePool) {
  BlockingWork a;
  BlockingWork b;
  auto reactor = testing::MakeReactor("epoll");
  reactor->suggestThreadPoolSize(1);
  Deferred<int> da = a.start(reactor.get(), 1);
  Deferred<int> db = b.start(reactor.get(), 2);
  a.waitStarted();
  EXPECT_EQ(reactor->threadPool().threadCount(), 1);
  EXPECT_EQ(reactor->threadPool().queued(), 1u);  // B waits: one thread only
  reactor->suggestThreadPoolSize(2);
  EXPECT_EQ(reactor->threadPool().maxThreads(), 2);
  ASSERT_TRUE(b.startedWithin(absl::Seconds(10)))
      << "the larger size did not take the queued work";
  EXPECT_EQ(reactor->threadPool().threadCount(), 2);
  a.release();
  b.release();
  ASSERT_TRUE(RunUntil(*reactor, [&] { return da.called() && db.called(); }));
  EXPECT_EQ(**da.result(), 1);
  EXPECT_EQ(**db.result(), 2);
}

}  // namespace
}  // namespace twist
