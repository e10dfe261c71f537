#ifndef TWIST_FRAMEWORK_POLLER_H_
#define TWIST_FRAMEWORK_POLLER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace twist {

/// Readiness bits, both as interest (what to watch) and as result.
enum : uint32_t {
  kReadable = 1u << 0,
  kWritable = 1u << 1,
  /// Error or hang-up. Reported whatever the interest; the handler finds the
  /// cause by reading or writing.
  kErrorOrHangup = 1u << 2,
};

/// Something the poller watches: a listening port, a connection, the
/// reactor's wake-up descriptor (muduo's Channel). It does not own its fd's
/// registration; whoever added it removes it before the object goes away.
class Selectable {
 public:
  virtual ~Selectable() = default;
  virtual void handleEvents(uint32_t ready) = 0;
};

struct ReadyEvent {
  Selectable* selectable;
  uint32_t events;
};

/// One way to wait for readiness on many descriptors: epoll, poll or select.
/// Level-triggered in all three, so a handler may leave data unread and be
/// told again on the next turn. Not thread-safe: owned by one reactor.
class Poller {
 public:
  virtual ~Poller() = default;
  virtual absl::string_view name() const = 0;
  /// Starts watching fd for `interest` (a mix of kReadable and kWritable;
  /// 0 watches for kErrorOrHangup alone, which select cannot report). Fails
  /// cleanly when the fd cannot be watched (select's FD_SETSIZE, epoll's
  /// limits).
  virtual absl::Status add(int fd, uint32_t interest, Selectable* s) = 0;
  virtual absl::Status modify(int fd, uint32_t interest, Selectable* s) = 0;
  virtual void remove(int fd) = 0;
  /// Waits at most `timeout` (absl::InfiniteDuration() = until something is
  /// ready) and appends what is ready to `ready`. EINTR returns no events.
  virtual absl::Status poll(absl::Duration timeout,
                            std::vector<ReadyEvent>* ready) = 0;
};

/// "epoll", "poll" or "select".
absl::StatusOr<std::unique_ptr<Poller>> CreatePoller(absl::string_view name);
/// The names CreatePoller accepts, the default first.
const std::vector<std::string>& PollerNames();

/// Milliseconds for poll(2)/epoll_wait(2): rounds up so a timer is never
/// woken early, -1 for infinite.
int TimeoutMillis(absl::Duration timeout);

}  // namespace twist

#endif  // TWIST_FRAMEWORK_POLLER_H_
