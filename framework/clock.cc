#include "framework/clock.h"

#include <time.h>

namespace twist {

absl::Time MonotonicClock::now() const {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return absl::UnixEpoch() + absl::DurationFromTimespec(ts);
}

}  // namespace twist
