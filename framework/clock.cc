#include "framework/clock.h"

#include <time.h>

namespace twist {

absl::Time MonotonicClock::now() const {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  // Inline arithmetic (FromUnixNanos is constexpr): UnixEpoch() +
  // DurationFromTimespec() is two calls into libabsl_time, read several
  // times per loop turn by a server with timers. int64 nanoseconds of
  // CLOCK_MONOTONIC (time since boot) last 292 years.
  return absl::FromUnixNanos(static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec);
}

}  // namespace twist
