// deferToThread: the work runs on a pool thread, the Deferred fires on the
// reactor's thread, and a reactor destroyed while the work runs is safe
// (run under TSan and ASan).

#include "framework/defer_to_thread.h"

#include <future>
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

}  // namespace
}  // namespace twist
