#ifndef TWIST_FRAMEWORK_CLOCK_H_
#define TWIST_FRAMEWORK_CLOCK_H_

#include "absl/time/time.h"

namespace twist {

/// The reactor's time source. Timers are scheduled against it, so a test can
/// replace it with a FakeClock and move time by hand (Twisted's task.Clock).
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time now() const = 0;
};

/// CLOCK_MONOTONIC, so timers are immune to wall-clock steps. The absolute
/// value is only meaningful relative to other readings of the same clock.
class MonotonicClock final : public Clock {
 public:
  absl::Time now() const override;
};

/// A clock that only moves when told to. Pair it with
/// Reactor::runUntilCurrent() to fire the calls that became due.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::UnixEpoch()) : now_(start) {}
  absl::Time now() const override { return now_; }
  void advance(absl::Duration d) { now_ += d; }

 private:
  absl::Time now_;
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_CLOCK_H_
