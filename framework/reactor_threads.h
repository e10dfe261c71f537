#ifndef TWIST_FRAMEWORK_REACTOR_THREADS_H_
#define TWIST_FRAMEWORK_REACTOR_THREADS_H_

#include <cstdint>
#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace twist {

/// Threads meeting the loop (Twisted's IReactorThreads): what
/// deferToThread (framework/defer_to_thread.h) needs of a reactor, and all
/// it needs. Reactor implements it with its thread pool and an eventfd; a
/// test can hand deferToThread a stand-in that runs the work when it says.
class ReactorThreads {
 public:
  virtual ~ReactorThreads() = default;

  /// Thread-safe, the one call that is: runs `fn` on the reactor's thread
  /// soon, waking the loop up.
  virtual void callFromThread(absl::AnyInvocable<void()> fn) = 0;

  /// Runs `work` on a pool thread, then `done` on the reactor's thread
  /// (Twisted's callInThread followed by callFromThread). `done` gets OK
  /// once `work` has run, or CANCELLED if `work` never will: the reactor
  /// stopped (run() returned) before a pool thread took it; queued work is
  /// dropped then, work already running is waited for, up to the shutdown
  /// grace. `done` never leaves the reactor's thread: if the reactor is
  /// destroyed first, it is dropped there, not run. RESOURCE_EXHAUSTED
  /// (nothing runs) if the pool cannot take `work`. Called on the reactor's
  /// thread. Returns an id for cancelThreadCall().
  virtual absl::StatusOr<uint64_t> callInThread(
      absl::AnyInvocable<void()> work, absl::AnyInvocable<void(absl::Status)> done) = 0;

  /// The caller no longer wants call `id`'s outcome: its `done` will not
  /// run, and stopping the reactor does not wait for its work (which may
  /// still run; it cannot be interrupted). A no-op once `done` has run.
  virtual void cancelThreadCall(uint64_t id) = 0;

  /// Expires when the reactor is destroyed: what something that may outlive
  /// it (a Deferred's canceller) checks before calling into it.
  virtual std::weak_ptr<const void> liveness() const = 0;

  /// At most `size` pool threads from now on (Twisted's
  /// suggestThreadPoolSize); threads over the new size leave when idle.
  /// Called on the reactor's thread.
  virtual void suggestThreadPoolSize(int size) = 0;
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_REACTOR_THREADS_H_
