#include "framework/connection_handle.h"

#include <utility>

namespace twist {

bool ConnectionHandle::post(absl::AnyInvocable<void(Transport&)> fn) const {
  if (anchor_ == nullptr) return false;
  internal::ReactorDoor& door = *anchor_->door;
  {
    std::lock_guard<std::mutex> lock(door.mu);
    if (door.reactor != nullptr) {
      door.reactor->callFromThread(
          [anchor = anchor_, as = as_, fn = std::move(fn)]() mutable {
            // On the connection's thread: `alive` is only touched here.
            if (anchor->alive) fn(*as);
            fn = nullptr;  // run or dropped, it ends here, on this thread
          });
      return true;
    }
  }
  // The reactor is gone: `fn` is dropped here, outside the lock (its
  // destructor may do anything, post again included).
  return false;
}

}  // namespace twist
