#ifndef TWIST_FRAMEWORK_CONNECTION_HANDLE_H_
#define TWIST_FRAMEWORK_CONNECTION_HANDLE_H_

#include <memory>
#include <mutex>

#include "absl/functional/any_invocable.h"
#include "framework/reactor_threads.h"

namespace twist {

class Transport;

namespace internal {
// A reactor's door for other threads: while `reactor` is set (under `mu`),
// callFromThread on it is safe; the reactor's destructor clears it first.
// Shared by every ConnectionHandle of the reactor's connections.
struct ReactorDoor {
  std::mutex mu;
  ReactorThreads* reactor = nullptr;
};
// One connection as handles see it. `alive` is read and written on the
// connection's reactor's thread only: true until the connection has run
// connectionLost.
struct ConnectionAnchor {
  explicit ConnectionAnchor(std::shared_ptr<ReactorDoor> d) : door(std::move(d)) {}
  std::shared_ptr<ReactorDoor> door;
  bool alive = true;
};
}  // namespace internal

/// A connection as another thread may hold it: the one safe way to reach a
/// connection of another reactor (a ReactorPool's, say). Get one from the
/// connection's own thread with `transport()->handle()`; copy it and hand
/// it to any thread. post() runs a call on the connection's reactor's
/// thread, with the transport the handle came from, only if the connection
/// is still there then; otherwise the call is dropped (destroyed, not run),
/// also when the reactor itself is gone. Nothing in it points into the
/// connection from another thread: the transport pointer is used only on
/// the connection's own thread, after it was found alive.
///
/// An empty handle (default-constructed, or from a transport that has no
/// reactor, such as StringTransport) drops every call.
class ConnectionHandle {
 public:
  ConnectionHandle() = default;

  /// Thread-safe. Queues `fn` for the connection's reactor (callFromThread:
  /// in order with the other calls posted to it, one wake-up for a batch).
  /// There, `fn(transport)` runs if the connection has not been lost by
  /// then; else `fn` is destroyed unrun. Returns false if it is known at
  /// once that it cannot run (empty handle, reactor destroyed); `fn` is
  /// then destroyed on the calling thread.
  bool post(absl::AnyInvocable<void(Transport&)> fn) const;

  /// Whether the handle names a connection at all (not whether that
  /// connection is still open: only its own thread can know that).
  explicit operator bool() const { return anchor_ != nullptr; }

  // ---- For the reactor that makes handles (framework-internal) ----------
  ConnectionHandle(std::shared_ptr<internal::ConnectionAnchor> anchor, Transport* as)
      : anchor_(std::move(anchor)), as_(as) {}

 private:
  std::shared_ptr<internal::ConnectionAnchor> anchor_;
  Transport* as_ = nullptr;  // dereferenced on the reactor's thread only
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_CONNECTION_HANDLE_H_
