#ifndef TWIST_FRAMEWORK_SYSTEM_EVENT_H_
#define TWIST_FRAMEWORK_SYSTEM_EVENT_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "framework/defer.h"

namespace twist {

/// When a system event trigger runs (Twisted's "before", "during",
/// "after"): every "before" trigger runs first, and the "during" ones wait
/// until every Deferred the "before" ones returned has fired; "after" ones
/// run right after the "during" ones.
enum class EventPhase { kBefore, kDuring, kAfter };

/// Names a trigger for removeSystemEventTrigger.
struct TriggerId {
  uint64_t id = 0;
};

/// The system event triggers of a reactor (Twisted's _ThreePhaseEvent, one
/// per event name). A trigger runs once: firing an event consumes its
/// triggers, as in Twisted. Used by Reactor; see addSystemEventTrigger.
class SystemEvents : public std::enable_shared_from_this<SystemEvents> {
 public:
  using Trigger = absl::AnyInvocable<Deferred<Unit>()>;

  /// Wraps a function that returns void or Deferred<Unit>.
  template <class F>
  static Trigger MakeTrigger(F f) {
    using R = decltype(f());
    if constexpr (std::is_void_v<R>) {
      return [f = std::move(f)]() mutable {
        f();
        return succeed();
      };
    } else {
      static_assert(std::is_same_v<R, Deferred<Unit>>,
                    "a system event trigger returns void or Deferred<Unit>");
      return Trigger(std::move(f));
    }
  }

  TriggerId add(EventPhase phase, absl::string_view event, Trigger fn);
  /// NotFound if there is no such trigger (already run, or removed).
  absl::Status remove(TriggerId id);
  /// Fires `event`: its "before" triggers now (and those they add); its
  /// "during" and "after" triggers when every Deferred those returned has
  /// fired, now if they all have. `after_each` runs after each trigger run
  /// now (not after those run later, from a Deferred's callback).
  void fire(absl::string_view event, absl::FunctionRef<void()> after_each);
  /// Fire in steps (the reactor's shutdown): the "before" triggers, and a
  /// Deferred that fires when theirs have; cancelling it cancels them.
  Deferred<Unit> fireBefore(absl::string_view event, absl::FunctionRef<void()> after_each);
  /// Runs the "during" or "after" triggers of `event`.
  void firePhase(absl::string_view event, EventPhase phase,
                 absl::FunctionRef<void()> after_each);
  /// Triggers not yet run, for tests.
  size_t size() const;

 private:
  struct Entry {
    uint64_t id;
    Trigger fn;
  };
  struct Event {
    std::deque<Entry> phases[3];
  };
  Event& event(absl::string_view name);

  uint64_t next_id_ = 1;
  // unique_ptr: a trigger may add an event while its own is being fired.
  absl::flat_hash_map<std::string, std::unique_ptr<Event>> events_;
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_SYSTEM_EVENT_H_
