#include "framework/task_clock.h"

namespace twist {
namespace task {

void Clock::advance(absl::Duration amount) {
  time_.advance(amount);
  // TimerQueue::runDue leaves calls scheduled during its pass for the next
  // one (the reactor turns in between); here, as in Twisted, they run now.
  while (calls_.nextDue() <= time_.now()) calls_.runDue([] {});
}

void Clock::pump(std::initializer_list<absl::Duration> amounts) {
  for (absl::Duration d : amounts) advance(d);
}

}  // namespace task
}  // namespace twist
