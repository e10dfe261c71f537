// System event triggers (Twisted's addSystemEventTrigger): the reactor's
// startup and shutdown, users' own events, and a "before shutdown" trigger
// whose Deferred holds the shutdown back, bounded by shutdown_grace.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "framework/defer.h"
#include "framework/reactor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::unique_ptr<Reactor> MakeReactor(absl::Duration grace = absl::Seconds(5)) {
  ReactorOptions options;
  options.shutdown_grace = grace;
  absl::StatusOr<std::unique_ptr<Reactor>> r = Reactor::Create(options);
  EXPECT_TRUE(r.ok()) << r.status();
  return std::move(*r);
}

TEST(SystemEventTest, StartupRunsBeforeDuringAfterThenCallWhenRunning) {
  auto reactor = MakeReactor();
  std::vector<std::string> log;
  reactor->callWhenRunning([&] { log.push_back("whenRunning"); });
  reactor->addSystemEventTrigger(EventPhase::kAfter, "startup", [&] { log.push_back("after"); });
  reactor->addSystemEventTrigger(EventPhase::kDuring, "startup", [&] { log.push_back("during"); });
  reactor->addSystemEventTrigger(EventPhase::kBefore, "startup", [&] { log.push_back("before"); });
  reactor->callWhenRunning([&] { reactor->stop(); });
  reactor->run();
  EXPECT_THAT(log, ElementsAre("before", "during", "whenRunning", "after"));
}

TEST(SystemEventTest, ShutdownWaitsForABeforeTriggersDeferred) {
  auto reactor = MakeReactor();
  std::vector<std::string> log;
  reactor->addSystemEventTrigger(EventPhase::kBefore, "shutdown", [&] {
    log.push_back("before");
    Deferred<Unit> d;
    // The reactor still runs: timers fire while the shutdown waits.
    reactor->callLater(absl::Milliseconds(10), [&] { log.push_back("timer"); });
    reactor->callLater(absl::Milliseconds(20), [&log, d]() mutable {
      log.push_back("fired");
      d.callback(Unit{}).IgnoreError();
    });
    return d;
  });
  reactor->addSystemEventTrigger(EventPhase::kDuring, "shutdown", [&] { log.push_back("during"); });
  reactor->addSystemEventTrigger(EventPhase::kAfter, "shutdown", [&] { log.push_back("after"); });
  reactor->callWhenRunning([&] { reactor->stop(); });
  reactor->run();
  EXPECT_THAT(log, ElementsAre("before", "timer", "fired", "during", "after"));
  EXPECT_FALSE(reactor->running());
}

TEST(SystemEventTest, ShutdownGraceBoundsTheWaitAndCancelsTheDeferred) {
  auto reactor = MakeReactor(absl::Milliseconds(100));
  std::vector<std::string> log;
  std::optional<Deferred<Unit>> held;
  reactor->addSystemEventTrigger(EventPhase::kBefore, "shutdown", [&] {
    held.emplace([&](Deferred<Unit>&) { log.push_back("cancelled"); });
    return *held;  // never fired by anyone
  });
  reactor->addSystemEventTrigger(EventPhase::kAfter, "shutdown", [&] { log.push_back("after"); });
  reactor->callWhenRunning([&] { reactor->stop(); });
  const absl::Time start = absl::Now();
  reactor->run();
  EXPECT_LT(absl::Now() - start, testing::kTimeout);
  EXPECT_THAT(log, ElementsAre("cancelled", "after"));
  ASSERT_NE(held->result(), nullptr);
  EXPECT_TRUE(absl::IsCancelled(held->result()->status()));
  held->addErrback([](absl::Status) { return absl::OkStatus(); });
}

TEST(SystemEventTest, UsersOwnEventWaitsForItsBeforeDeferreds) {
  auto reactor = MakeReactor();
  std::vector<std::string> log;
  Deferred<Unit> a, b;
  reactor->addSystemEventTrigger(EventPhase::kBefore, "reload", [&] { return a; });
  reactor->addSystemEventTrigger(EventPhase::kBefore, "reload", [&] { return b; });
  reactor->addSystemEventTrigger(EventPhase::kDuring, "reload", [&] { log.push_back("during"); });
  reactor->addSystemEventTrigger(EventPhase::kAfter, "reload", [&] { log.push_back("after"); });
  reactor->addSystemEventTrigger(EventPhase::kDuring, "other", [&] { log.push_back("other"); });
  reactor->fireSystemEvent("reload");
  EXPECT_THAT(log, IsEmpty());
  ASSERT_TRUE(a.callback(Unit{}).ok());
  EXPECT_THAT(log, IsEmpty());
  ASSERT_TRUE(b.callback(Unit{}).ok());
  EXPECT_THAT(log, ElementsAre("during", "after"));
  // Triggers run once: firing again finds none.
  reactor->fireSystemEvent("reload");
  EXPECT_THAT(log, ElementsAre("during", "after"));
  reactor->fireSystemEvent("nobody-listens");
}

TEST(SystemEventTest, RemovedTriggersDoNotRun) {
  auto reactor = MakeReactor();
  std::vector<std::string> log;
  TriggerId gone = reactor->addSystemEventTrigger(EventPhase::kDuring, "e", [&] {
    log.push_back("gone");
  });
  TriggerId ran = reactor->addSystemEventTrigger(EventPhase::kDuring, "e", [&] {
    log.push_back("ran");
  });
  EXPECT_TRUE(reactor->removeSystemEventTrigger(gone).ok());
  EXPECT_TRUE(absl::IsNotFound(reactor->removeSystemEventTrigger(gone)));
  reactor->fireSystemEvent("e");
  EXPECT_THAT(log, ElementsAre("ran"));
  EXPECT_TRUE(absl::IsNotFound(reactor->removeSystemEventTrigger(ran)));
}

TEST(SystemEventTest, ATriggerMayAddTriggersToItsOwnPhase) {
  auto reactor = MakeReactor();
  std::vector<std::string> log;
  reactor->addSystemEventTrigger(EventPhase::kBefore, "e", [&] {
    log.push_back("first");
    reactor->addSystemEventTrigger(EventPhase::kBefore, "e", [&] { log.push_back("added"); });
  });
  reactor->addSystemEventTrigger(EventPhase::kAfter, "e", [&] { log.push_back("after"); });
  reactor->fireSystemEvent("e");
  EXPECT_THAT(log, ElementsAre("first", "added", "after"));
}

// Destroying a reactor fires no triggers, even when a connectionLost it
// causes fires the Deferred an event's "before" trigger is waiting for.
TEST(SystemEventTest, ConnectionLostInTheDestructorRunsNoTrigger) {
  auto reactor = MakeReactor();
  Deferred<Unit> d;
  class FiresOnLoss : public Protocol {
   public:
    explicit FiresOnLoss(Deferred<Unit> d) : d_(std::move(d)) {}
    void connectionLost(const absl::Status&) override { d_.callback(Unit{}).IgnoreError(); }

   private:
    Deferred<Unit> d_;
  };
  auto factory = Factory::forProtocol<FiresOnLoss>(d);
  absl::StatusOr<Port*> port = reactor->listenTCP(0, factory.get(), 8, "127.0.0.1");
  ASSERT_TRUE(port.ok()) << port.status();
  absl::StatusOr<testing::BlockingClient> client =
      testing::BlockingClient::Connect((*port)->getHost());
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE(testing::RunUntil(*reactor, [&] { return reactor->connectionCount() == 1; }));
  bool during = false;
  reactor->addSystemEventTrigger(EventPhase::kBefore, "e", [d] { return d; });
  reactor->addSystemEventTrigger(EventPhase::kDuring, "e", [&] { during = true; });
  reactor->fireSystemEvent("e");
  EXPECT_FALSE(during);  // waits for d
  reactor.reset();       // aborts the connection: connectionLost fires d
  EXPECT_FALSE(during) << "a trigger ran inside ~Reactor";
}

TEST(SystemEventTest, DeferredFiredAfterTheReactorIsGoneIsHarmless) {
  Deferred<Unit> d;
  bool during = false;
  {
    auto reactor = MakeReactor();
    reactor->addSystemEventTrigger(EventPhase::kBefore, "e", [&] { return d; });
    reactor->addSystemEventTrigger(EventPhase::kDuring, "e", [&] { during = true; });
    reactor->fireSystemEvent("e");
  }
  ASSERT_TRUE(d.callback(Unit{}).ok());
  EXPECT_FALSE(during);
}

}  // namespace
}  // namespace twist
