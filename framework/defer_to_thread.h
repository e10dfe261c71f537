#ifndef TWIST_FRAMEWORK_DEFER_TO_THREAD_H_
#define TWIST_FRAMEWORK_DEFER_TO_THREAD_H_

#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "framework/defer.h"
#include "framework/reactor_threads.h"

namespace twist {

/// Runs `f` on the reactor's thread pool and fires the returned Deferred
/// with its result on the reactor's thread (Twisted's deferToThread). Only
/// the threads role is needed (a Reactor; in tests, a stand-in). `f`
/// returns U, absl::StatusOr<U>, absl::Status or void (the last two:
/// Deferred<Unit>); it must not touch the reactor's objects. If the reactor
/// stops before a pool thread takes `f`, `f` never runs and the Deferred
/// fails with CANCELLED; if the reactor is destroyed before `f` returns, the
/// Deferred never fires. If the pool cannot run `f`, the Deferred fails with
/// RESOURCE_EXHAUSTED. cancel() makes it fail with CANCELLED at once; `f`
/// still runs (it cannot be interrupted), but nobody waits for it.
template <class F>
auto deferToThread(ReactorThreads* reactor, F f) {
  using R = std::invoke_result_t<F&>;
  using U = typename defer_internal::ValueOf<std::decay_t<R>>::type;
  // Written by the pool thread before its hand-off to the reactor's queue
  // (a mutex), read on the reactor's thread after it.
  auto slot = std::make_shared<std::optional<absl::StatusOr<U>>>();
  // Cancelling the Deferred cancels the call: stopping the reactor then
  // does not wait for `f` (which cannot be interrupted) for nobody.
  auto call = std::make_shared<uint64_t>(0);
  Deferred<U> d([reactor, alive = reactor->liveness(), call](Deferred<U>&) {
    if (*call != 0 && !alive.expired()) reactor->cancelThreadCall(*call);
  });
  absl::StatusOr<uint64_t> id = reactor->callInThread(
      [slot, f = std::move(f)]() mutable {
        if constexpr (std::is_void_v<R>) {
          f();
          slot->emplace(Unit{});
        } else if constexpr (std::is_same_v<std::decay_t<R>, absl::Status>) {
          absl::Status st = f();
          if (st.ok()) {
            slot->emplace(Unit{});
          } else {
            slot->emplace(std::move(st));
          }
        } else {
          slot->emplace(f());
        }
      },
      [slot, d](absl::Status ran) mutable {
        if (!ran.ok()) {
          d.errback(std::move(ran)).IgnoreError();
          return;
        }
        absl::StatusOr<U> r = std::move(**slot);
        if (r.ok()) {
          d.callback(std::move(*r)).IgnoreError();
        } else {
          d.errback(r.status()).IgnoreError();
        }
      });
  if (id.ok()) {
    *call = *id;
  } else {
    d.errback(id.status()).IgnoreError();
  }
  return d;
}

}  // namespace twist

#endif  // TWIST_FRAMEWORK_DEFER_TO_THREAD_H_
