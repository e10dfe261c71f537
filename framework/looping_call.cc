#include "framework/looping_call.h"

namespace twist {
namespace task {

LoopingCall::~LoopingCall() {
  if (core_ == nullptr) return;  // moved from
  core_->running = false;
  core_->next.cancel().IgnoreError();
}

Deferred<Unit> LoopingCall::start(absl::Duration interval, bool now) {
  if (core_->running) {
    return fail(absl::FailedPreconditionError(
        "Tried to start an already running LoopingCall"));
  }
  if (interval < absl::ZeroDuration()) {
    return fail(absl::InvalidArgumentError("LoopingCall interval must be >= 0"));
  }
  Core& c = *core_;
  c.running = true;
  ++c.loop;
  Deferred<Unit> d;
  c.stopped = d;
  c.start_time = c.clock->seconds();
  c.interval = interval;
  c.run_at_start = now;
  c.last_time.reset();
  if (now) {
    c.call();
  } else {
    c.scheduleFrom(c.start_time);
  }
  return d;
}

absl::Status LoopingCall::stop() {
  if (!running()) {
    return absl::FailedPreconditionError("Tried to stop a LoopingCall that was not running");
  }
  std::shared_ptr<Core> keep = core_;  // the Deferred's callbacks may destroy us
  keep->running = false;
  if (keep->next.active()) {
    keep->next.cancel().IgnoreError();
    Deferred<Unit> d = keep->stopped;
    d.callback(Unit{}).IgnoreError();
  }
  // Otherwise the function's Deferred is pending: its callback fires it.
  return absl::OkStatus();
}

absl::Status LoopingCall::reset() {
  if (!running()) {
    return absl::FailedPreconditionError("Tried to reset a LoopingCall that was not running");
  }
  if (core_->next.active()) {
    core_->next.cancel().IgnoreError();
    core_->start_time = core_->clock->seconds();
    core_->scheduleFrom(core_->start_time);
  }
  return absl::OkStatus();
}

int64_t LoopingCall::Core::intervalOf(absl::Time t) const {
  return (t - start_time) / interval;
}

void LoopingCall::Core::call() {
  std::shared_ptr<Core> self = shared_from_this();
  int64_t count = 1;
  if (counted) {
    // Twisted's withCount: intervals between the last call and now.
    absl::Time now = clock->seconds();
    if (interval == absl::ZeroDuration()) {
      last_time = now;
    } else {
      absl::Time last = last_time.has_value()
                            ? *last_time
                            : (run_at_start ? start_time - interval : start_time);
      count = intervalOf(now) - intervalOf(last);
      if (count > 0) last_time = now;
    }
  }
  Deferred<Unit> d = count > 0 ? f(count) : succeed();
  // `d` ends the loop it was called in (`done`, start()'s Deferred), even if
  // that loop was stopped and another started while `d` was pending: it
  // schedules only into its own loop, and fires only its own Deferred.
  std::weak_ptr<Core> weak = self;
  d.addCallbacks(
      [weak, in_loop = loop, done = stopped]() mutable {
        std::shared_ptr<Core> c = weak.lock();
        if (c == nullptr) return;
        if (c->running && c->loop == in_loop) {
          c->scheduleFrom(c->clock->seconds());
        } else if (!done.called()) {
          done.callback(Unit{}).IgnoreError();
        }
      },
      [weak, in_loop = loop, done = stopped](absl::Status e) mutable -> absl::Status {
        std::shared_ptr<Core> c = weak.lock();
        if (c == nullptr || done.called()) return e;  // nobody else to tell
        if (c->loop == in_loop) c->running = false;
        done.errback(std::move(e)).IgnoreError();
        return absl::OkStatus();
      });
}

void LoopingCall::Core::scheduleFrom(absl::Time when) {
  absl::Duration delay = absl::ZeroDuration();
  if (interval != absl::ZeroDuration()) {
    // The next multiple of the interval after `when`: missed ones are skipped.
    absl::Duration running_for = when - start_time;
    delay = interval - (running_for % interval);
  }
  std::weak_ptr<Core> weak = shared_from_this();
  next = clock->callLater(delay, [weak] {
    if (std::shared_ptr<Core> c = weak.lock()) c->call();
  });
}

}  // namespace task
}  // namespace twist
