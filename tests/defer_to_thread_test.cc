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

TEST(DeferToThreadTest, ReactorDestroyedWhileTheWorkRuns) {
  auto reactor = testing::MakeReactor("epoll");
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::promise<void> started;
  bool fired = false;
  Deferred<int> d = deferToThread(reactor.get(), [gate, &started] {
    started.set_value();
    gate.wait();
    return 1;
  });
  d.addBoth([&](absl::StatusOr<int> r) {
    fired = true;
    return r;
  });
  started.get_future().wait();
  reactor.reset();  // the work is still running
  release.set_value();
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
  std::unique_ptr<Reactor> reactor = ReactorWithGrace(absl::Seconds(20));
  reactor->suggestThreadPoolSize(1);
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::promise<void> started;
  std::optional<absl::StatusOr<int>> a_result;
  std::optional<absl::Status> b_result;
  bool b_ran = false;
  reactor->callWhenRunning([&] {
    Deferred<int> a = deferToThread(reactor.get(), [gate, &started] {
      started.set_value();
      gate.wait();
      return 7;
    });
    a.addBoth([&](absl::StatusOr<int> r) {
      a_result = r;
      return r;
    });
    Deferred<Unit> b = deferToThread(reactor.get(), [&b_ran] { b_ran = true; });
    b.addBoth([&](absl::StatusOr<Unit> r) {
      b_result = r.status();
      release.set_value();  // only now can A finish
      return absl::StatusOr<Unit>(Unit{});
    });
    started.get_future().wait();  // A holds the one thread; B is queued
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

// Work that outlasts the grace is not waited for: run() returns, says so
// on stderr, and the reactor is still safe to destroy while it runs.
TEST(DeferToThreadTest, RunningWorkPastTheGraceIsNotWaitedFor) {
  std::unique_ptr<Reactor> reactor = ReactorWithGrace(absl::Milliseconds(200));
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::promise<void> started;
  bool fired = false;
  reactor->callWhenRunning([&] {
    Deferred<int> d = deferToThread(reactor.get(), [gate, &started] {
      started.set_value();
      gate.wait();
      return 1;
    });
    d.addBoth([&](absl::StatusOr<int> r) {
      fired = true;
      return r;
    });
    started.get_future().wait();
    reactor->stop();
  });
  ::testing::internal::CaptureStderr();
  reactor->run();
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_FALSE(fired);
  EXPECT_NE(err.find("1 thread pool task(s) still running after the shutdown grace"),
            std::string::npos)
      << err;
  reactor.reset();
  release.set_value();
}

// Work whose Deferred was cancelled is not waited for (nobody wants it):
// a blocked read of stdin must not hold a client's exit for the grace.
TEST(DeferToThreadTest, CancelledWorkIsNotWaitedForWhenStopping) {
  std::unique_ptr<Reactor> reactor = ReactorWithGrace(absl::Seconds(20));
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::promise<void> started;
  std::optional<absl::Status> result;
  reactor->callWhenRunning([&] {
    Deferred<int> d = deferToThread(reactor.get(), [gate, &started] {
      started.set_value();
      gate.wait();
      return 1;
    });
    d.addBoth([&](absl::StatusOr<int> r) {
      result = r.status();
      return absl::StatusOr<int>(0);
    });
    started.get_future().wait();
    d.cancel();
    reactor->stop();
  });
  const absl::Time begun = absl::Now();
  ::testing::internal::CaptureStderr();
  reactor->run();
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  EXPECT_LT(absl::Now() - begun, absl::Seconds(10)) << "waited for cancelled work";
  ASSERT_TRUE(result.has_value());
  EXPECT_TRUE(absl::IsCancelled(*result)) << *result;
  reactor.reset();
  release.set_value();
}

// suggestThreadPoolSize (Twisted's name): a larger size takes queued work
// at once; the pool never runs more threads than it is given.
TEST(DeferToThreadTest, SuggestThreadPoolSizeResizesThePool) {
  auto reactor = testing::MakeReactor("epoll");
  reactor->suggestThreadPoolSize(1);
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::promise<void> a_started;
  std::promise<void> b_started;
  std::future<void> b_seen = b_started.get_future();
  Deferred<Unit> a = deferToThread(reactor.get(), [gate, &a_started] {
    a_started.set_value();
    gate.wait();
  });
  Deferred<Unit> b = deferToThread(reactor.get(), [gate, &b_started] {
    b_started.set_value();
    gate.wait();
  });
  a_started.get_future().wait();
  EXPECT_EQ(reactor->threadPool().threadCount(), 1);
  EXPECT_EQ(reactor->threadPool().queued(), 1u);  // B waits: one thread only
  reactor->suggestThreadPoolSize(2);
  EXPECT_EQ(reactor->threadPool().maxThreads(), 2);
  ASSERT_EQ(b_seen.wait_for(std::chrono::seconds(10)), std::future_status::ready)
      << "the larger size did not take the queued work";
  EXPECT_EQ(reactor->threadPool().threadCount(), 2);
  release.set_value();
  ASSERT_TRUE(RunUntil(*reactor, [&] { return a.called() && b.called(); }));
  EXPECT_TRUE(a.result()->ok());
  EXPECT_TRUE(b.result()->ok());
}

}  // namespace
}  // namespace twist
