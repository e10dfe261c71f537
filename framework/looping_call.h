#ifndef TWIST_FRAMEWORK_LOOPING_CALL_H_
#define TWIST_FRAMEWORK_LOOPING_CALL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "framework/defer.h"
#include "framework/delayed_call.h"
#include "framework/reactor_time.h"

namespace twist {
namespace task {

/// Calls a function every `interval` (Twisted's task.LoopingCall), on any
/// ReactorTime: the reactor, or a task::Clock in tests.
///
///   task::LoopingCall beat(reactor, [&] { sendHeartbeat(); });
///   beat.start(absl::Seconds(1)).addErrback([](absl::Status e) { ... });
///   ...
///   beat.stop().IgnoreError();   // the Deferred start() returned fires
///
/// `f` returns void, absl::Status or Deferred<Unit>. An error (returned, or
/// the Deferred failing) stops the loop and fails start()'s Deferred with it.
/// If `f` returns a Deferred, the next call is scheduled once it fires.
///
/// Calls are due at start + k*interval. A call that comes late (the reactor
/// was busy, or a Deferred took long) runs once, and the next is scheduled
/// at the next multiple of the interval: the intervals missed meanwhile are
/// skipped, not made up. withCount() tells the function how many intervals
/// passed since its last call (1 when on time), as Twisted's withCount does.
///
/// Destroying a LoopingCall cancels its pending call; a Deferred its
/// function returned may still fire, and is then ignored. start()'s Deferred
/// does not fire then. `clock` must outlive the LoopingCall (a Deferred its
/// function returned schedules the next call on it when it fires).
class LoopingCall {
 public:
  template <class F>
  LoopingCall(ReactorTime* clock, F f) : core_(std::make_shared<Core>(clock)) {
    core_->f = [f = std::move(f)](int64_t) mutable { return AsDeferred(f); };
  }
  /// A LoopingCall whose function gets the number of intervals that passed
  /// since its previous call (Twisted's LoopingCall.withCount). If none did
  /// (a call came early), the function is not called.
  template <class F>
  static LoopingCall withCount(ReactorTime* clock, F f) {
    LoopingCall lc(clock);
    lc.core_->counted = true;
    lc.core_->f = [f = std::move(f)](int64_t n) mutable {
      return AsDeferred([&] { return f(n); });
    };
    return lc;
  }
  LoopingCall(LoopingCall&&) = default;
  LoopingCall& operator=(LoopingCall&&) = default;
  ~LoopingCall();

  /// Starts calling, every `interval`, at once if `now`. The Deferred fires
  /// (Unit) when stop() ends the loop, or fails with the function's error.
  /// A running LoopingCall or a negative interval: a failed Deferred
  /// (FAILED_PRECONDITION, INVALID_ARGUMENT), and nothing changes.
  Deferred<Unit> start(absl::Duration interval, bool now = true);
  /// Stops; FAILED_PRECONDITION if not running. start()'s Deferred fires
  /// now, or, if the function's Deferred is pending, when that fires.
  absl::Status stop();
  /// Restarts the interval from now: the next call is one interval away.
  absl::Status reset();
  bool running() const { return core_ != nullptr && core_->running; }
  absl::Duration interval() const { return core_->interval; }

 private:
  struct Core;
  explicit LoopingCall(ReactorTime* clock) : core_(std::make_shared<Core>(clock)) {}

  template <class G>
  static Deferred<Unit> AsDeferred(G& g) {
    using R = decltype(g());
    if constexpr (std::is_void_v<R>) {
      g();
      return succeed();
    } else if constexpr (std::is_same_v<R, absl::Status>) {
      absl::Status s = g();
      return s.ok() ? succeed() : fail(std::move(s));
    } else {
      static_assert(std::is_same_v<R, Deferred<Unit>>,
                    "a LoopingCall's function returns void, absl::Status or Deferred<Unit>");
      return g();
    }
  }
  template <class G>
  static Deferred<Unit> AsDeferred(G&& g) {
    return AsDeferred(g);
  }

  struct Core : std::enable_shared_from_this<Core> {
    explicit Core(ReactorTime* c) : clock(c) {}
    void call();
    void scheduleFrom(absl::Time when);
    int64_t intervalOf(absl::Time t) const;

    ReactorTime* clock;
    absl::AnyInvocable<Deferred<Unit>(int64_t)> f;
    bool counted = false;
    bool running = false;
    bool run_at_start = false;
    absl::Duration interval;
    absl::Time start_time;
    std::optional<absl::Time> last_time;  // withCount: of the last call
    DelayedCall next;
    uint64_t loop = 0;        // counts start()s
    Deferred<Unit> stopped;   // start()'s, of the current loop
  };

  std::shared_ptr<Core> core_;
};

}  // namespace task
}  // namespace twist

#endif  // TWIST_FRAMEWORK_LOOPING_CALL_H_
