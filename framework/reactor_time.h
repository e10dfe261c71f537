#ifndef TWIST_FRAMEWORK_REACTOR_TIME_H_
#define TWIST_FRAMEWORK_REACTOR_TIME_H_

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "framework/delayed_call.h"

namespace twist {

/// Scheduling calls in time (Twisted's IReactorTime): all that timeouts,
/// periodic calls and most protocols need of a reactor. Reactor implements
/// it; so does task::Clock (framework/task_clock.h), which tests drive by
/// hand without sockets or a poller.
class ReactorTime {
 public:
  virtual ~ReactorTime() = default;
  /// Runs `fn` once, `delay` from now.
  virtual DelayedCall callLater(absl::Duration delay, absl::AnyInvocable<void()> fn) = 0;
  /// The current time of this reactor (Twisted's reactor.seconds()).
  virtual absl::Time seconds() const = 0;
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_REACTOR_TIME_H_
