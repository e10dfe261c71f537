#ifndef TWIST_FRAMEWORK_DEFER_LATER_H_
#define TWIST_FRAMEWORK_DEFER_LATER_H_

#include <memory>
#include <utility>

#include "absl/time/time.h"
#include "framework/defer.h"
#include "framework/delayed_call.h"
#include "framework/reactor_time.h"

namespace twist {
namespace task {

/// A Deferred that fires (Unit) `delay` from now on `clock` (Twisted's
/// task.deferLater). Cancelling it cancels the call; it then fails with
/// CancelledError().
inline Deferred<Unit> deferLater(ReactorTime* clock, absl::Duration delay) {
  // The timer's closure owns the Deferred, whose canceller names the timer:
  // the cycle ends when the call runs or is cancelled (both drop the closure).
  auto call = std::make_shared<DelayedCall>();
  Deferred<Unit> d([call](Deferred<Unit>&) { call->cancel().IgnoreError(); });
  *call = clock->callLater(delay, [d]() mutable { d.callback(Unit{}).IgnoreError(); });
  return d;
}

/// The same, firing with f()'s result (a value, StatusOr, Deferred, or
/// nothing: see Deferred::then).
template <class F>
auto deferLater(ReactorTime* clock, absl::Duration delay, F f) {
  return deferLater(clock, delay).then(std::move(f));
}

}  // namespace task
}  // namespace twist

#endif  // TWIST_FRAMEWORK_DEFER_LATER_H_
