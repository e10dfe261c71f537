#include "framework/delayed_call.h"

namespace twist {

bool DelayedCall::active() const {
  return entry_ != nullptr && entry_->queue != nullptr;
}

absl::Status DelayedCall::checkActive() const {
  if (entry_ == nullptr) {
    return absl::FailedPreconditionError("DelayedCall was never scheduled");
  }
  if (entry_->queue == nullptr) {
    return absl::FailedPreconditionError(
        "DelayedCall already called or cancelled");
  }
  return absl::OkStatus();
}

absl::Status DelayedCall::cancel() {
  if (absl::Status s = checkActive(); !s.ok()) return s;
  TimerQueue* q = entry_->queue;
  q->unschedule(entry_.get());
  entry_->queue = nullptr;
  entry_->fn = nullptr;  // release what the callback captured now
  return absl::OkStatus();
}

absl::Status DelayedCall::reset(absl::Duration delay) {
  if (absl::Status s = checkActive(); !s.ok()) return s;
  TimerQueue* q = entry_->queue;
  q->unschedule(entry_.get());
  q->schedule(entry_, q->clock_->now() + delay);
  return absl::OkStatus();
}

absl::Status DelayedCall::delay(absl::Duration extra) {
  if (absl::Status s = checkActive(); !s.ok()) return s;
  TimerQueue* q = entry_->queue;
  q->unschedule(entry_.get());
  q->schedule(entry_, entry_->when + extra);
  return absl::OkStatus();
}

absl::Time DelayedCall::getTime() const {
  return entry_ == nullptr ? absl::InfinitePast() : entry_->when;
}

TimerQueue::~TimerQueue() {
  for (auto& [key, entry] : calls_) {
    entry->queue = nullptr;
    entry->fn = nullptr;
  }
}

DelayedCall TimerQueue::callLater(absl::Duration delay,
                                  absl::AnyInvocable<void()> fn) {
  auto e = std::make_shared<internal::TimerEntry>();
  e->fn = std::move(fn);
  schedule(e, clock_->now() + delay);
  return DelayedCall(std::move(e));
}

void TimerQueue::schedule(const std::shared_ptr<internal::TimerEntry>& e,
                          absl::Time when) {
  e->queue = this;
  e->when = when;
  e->seq = next_seq_++;
  // Calls are mostly scheduled in due order (equal timeouts set one after
  // another): hinting the end makes that insert O(1) instead of a walk down
  // a tree too big for the cache; any other key falls back to the search.
  calls_.emplace_hint(calls_.end(), Key(when, e->seq), e);
}

void TimerQueue::unschedule(internal::TimerEntry* e) {
  calls_.erase(Key(e->when, e->seq));
}

void TimerQueue::runDue(absl::FunctionRef<void()> after_each) {
  if (calls_.empty()) return;  // no clock read for a reactor without timers
  const absl::Time now = clock_->now();
  const uint64_t first_new = next_seq_;
  // Walk in due order; a call rescheduled or added during the pass gets a
  // seq >= first_new and is skipped until the next pass.
  auto it = calls_.begin();
  while (it != calls_.end() && it->first.first <= now) {
    if (it->first.second >= first_new) {
      ++it;
      continue;
    }
    std::shared_ptr<internal::TimerEntry> e = std::move(it->second);
    calls_.erase(it);
    e->queue = nullptr;
    absl::AnyInvocable<void()> fn = std::move(e->fn);
    e->fn = nullptr;
    fn();
    after_each();
    // The callback may have changed the map; start again from the front.
    it = calls_.begin();
  }
}

absl::Time TimerQueue::nextDue() const {
  return calls_.empty() ? absl::InfiniteFuture() : calls_.begin()->first.first;
}

}  // namespace twist
