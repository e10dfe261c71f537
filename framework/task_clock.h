#ifndef TWIST_FRAMEWORK_TASK_CLOCK_H_
#define TWIST_FRAMEWORK_TASK_CLOCK_H_

#include <cstddef>
#include <initializer_list>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "framework/clock.h"
#include "framework/delayed_call.h"
#include "framework/reactor_time.h"

namespace twist {
namespace task {

/// A ReactorTime whose time moves only when a test says so (Twisted's
/// twisted.internet.task.Clock): callLater schedules, advance() moves time
/// and runs what became due. For unit tests of anything that needs only
/// time (TimeoutMixin, TimeoutFactory, users' protocols), without sockets:
///
///   task::Clock clock;
///   MyProtocol p(&clock);           // takes a ReactorTime*
///   StringTransport t;
///   t.connect(&p);
///   clock.advance(absl::Seconds(30));
///   EXPECT_TRUE(t.disconnecting());
class Clock final : public ReactorTime {
 public:
  explicit Clock(absl::Time start = absl::UnixEpoch()) : time_(start), calls_(&time_) {}

  DelayedCall callLater(absl::Duration delay, absl::AnyInvocable<void()> fn) override {
    return calls_.callLater(delay, std::move(fn));
  }
  absl::Time seconds() const override { return time_.now(); }

  /// Moves time forward by `amount` and runs every call due by then, in due
  /// order, including calls they schedule that are due by then too.
  void advance(absl::Duration amount);
  /// Advances by each of `amounts` in turn (Twisted's pump).
  void pump(std::initializer_list<absl::Duration> amounts);
  /// Calls still pending.
  size_t pendingCalls() const { return calls_.size(); }

 private:
  FakeClock time_;
  TimerQueue calls_;
};

}  // namespace task
}  // namespace twist

#endif  // TWIST_FRAMEWORK_TASK_CLOCK_H_
