#ifndef TWIST_FRAMEWORK_DELAYED_CALL_H_
#define TWIST_FRAMEWORK_DELAYED_CALL_H_

#include <cstdint>
#include <map>
#include <memory>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "framework/clock.h"

namespace twist {

class TimerQueue;

namespace internal {
struct TimerEntry;
}  // namespace internal

/// A handle on a call scheduled with Reactor::callLater (Twisted's
/// IDelayedCall). Cheap to copy; every copy names the same call. A handle
/// may outlive its call and its reactor: it then reports !active().
class DelayedCall {
 public:
  DelayedCall() = default;

  /// True until the call has run or been cancelled.
  bool active() const;
  /// Cancels the call. FailedPrecondition if it already ran or was
  /// cancelled (Twisted's AlreadyCalled / AlreadyCancelled).
  absl::Status cancel();
  /// Reschedules the call to run `delay` from now.
  absl::Status reset(absl::Duration delay);
  /// Pushes the call `extra` later than currently scheduled.
  absl::Status delay(absl::Duration extra);
  /// When the call is due to run (or ran, or would have run).
  absl::Time getTime() const;

 private:
  friend class TimerQueue;
  explicit DelayedCall(std::shared_ptr<internal::TimerEntry> e)
      : entry_(std::move(e)) {}
  absl::Status checkActive() const;

  std::shared_ptr<internal::TimerEntry> entry_;
};

/// The reactor's pending calls, ordered by due time and then by the order
/// they were scheduled, so calls due at the same time run first-in first-out.
/// Insert, cancel and reset are O(log n); nothing cancelled lingers.
class TimerQueue {
 public:
  explicit TimerQueue(const Clock* clock) : clock_(clock) {}
  ~TimerQueue();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  DelayedCall callLater(absl::Duration delay, absl::AnyInvocable<void()> fn);
  /// Runs every call due at the clock's current time that was scheduled
  /// before this pass began; calls scheduled while it runs (even with zero
  /// delay) wait for the next pass, so a callback that reschedules itself
  /// cannot starve I/O. `after_each` runs after every call.
  void runDue(absl::FunctionRef<void()> after_each);
  /// When the earliest call is due; InfiniteFuture if none.
  absl::Time nextDue() const;
  size_t size() const { return calls_.size(); }

 private:
  friend class DelayedCall;
  using Key = std::pair<absl::Time, uint64_t>;

  void schedule(const std::shared_ptr<internal::TimerEntry>& e, absl::Time when);
  void unschedule(internal::TimerEntry* e);

  const Clock* clock_;
  uint64_t next_seq_ = 0;
  std::map<Key, std::shared_ptr<internal::TimerEntry>> calls_;
};

namespace internal {
struct TimerEntry {
  TimerQueue* queue;  // nullptr once run, cancelled, or the queue is gone
  absl::Time when;
  uint64_t seq;
  absl::AnyInvocable<void()> fn;
};
}  // namespace internal

}  // namespace twist

#endif  // TWIST_FRAMEWORK_DELAYED_CALL_H_
