#include "framework/system_event.h"

#include <vector>

namespace twist {

SystemEvents::Event& SystemEvents::event(absl::string_view name) {
  std::unique_ptr<Event>& e = events_[name];
  if (e == nullptr) e = std::make_unique<Event>();
  return *e;
}

TriggerId SystemEvents::add(EventPhase phase, absl::string_view name, Trigger fn) {
  TriggerId id{next_id_++};
  event(name).phases[static_cast<int>(phase)].push_back(Entry{id.id, std::move(fn)});
  return id;
}

absl::Status SystemEvents::remove(TriggerId id) {
  for (auto& [name, e] : events_) {
    for (auto& phase : e->phases) {
      for (auto it = phase.begin(); it != phase.end(); ++it) {
        if (it->id == id.id) {
          phase.erase(it);
          return absl::OkStatus();
        }
      }
    }
  }
  return absl::NotFoundError("no such system event trigger (it ran, or was removed)");
}

size_t SystemEvents::size() const {
  size_t n = 0;
  for (const auto& [name, e] : events_) {
    for (const auto& phase : e->phases) n += phase.size();
  }
  return n;
}

Deferred<Unit> SystemEvents::fireBefore(absl::string_view name,
                                        absl::FunctionRef<void()> after_each) {
  Event& e = event(name);
  std::deque<Entry>& before = e.phases[static_cast<int>(EventPhase::kBefore)];
  std::vector<Deferred<Unit>> results;
  // One at a time: a trigger may add (or remove) triggers of this phase.
  while (!before.empty()) {
    Trigger fn = std::move(before.front().fn);
    before.pop_front();
    Deferred<Unit> d = fn();
    after_each();
    if (d.result() == nullptr || !d.result()->ok()) results.push_back(std::move(d));
  }
  // Errors stay with the triggers' Deferreds (reported if unhandled), as in
  // Twisted's DeferredList without consumeErrors.
  return DeferredList(std::move(results)).then([](std::vector<absl::StatusOr<Unit>>) {});
}

void SystemEvents::firePhase(absl::string_view name, EventPhase phase,
                             absl::FunctionRef<void()> after_each) {
  std::deque<Entry>& q = event(name).phases[static_cast<int>(phase)];
  while (!q.empty()) {
    Trigger fn = std::move(q.front().fn);
    q.pop_front();
    fn();  // a failed Deferred reports itself as unhandled
    after_each();
  }
}

void SystemEvents::fire(absl::string_view name, absl::FunctionRef<void()> after_each) {
  Deferred<Unit> before = fireBefore(name, after_each);
  if (before.result() != nullptr) {
    firePhase(name, EventPhase::kDuring, after_each);
    firePhase(name, EventPhase::kAfter, after_each);
    return;
  }
  // Later, from the callback of whatever fires the last Deferred: the
  // reactor's own work (after_each) is not done there.
  std::weak_ptr<SystemEvents> weak = weak_from_this();
  before.addBoth([weak, event = std::string(name)](absl::StatusOr<Unit>) {
    if (std::shared_ptr<SystemEvents> self = weak.lock()) {
      self->firePhase(event, EventPhase::kDuring, [] {});
      self->firePhase(event, EventPhase::kAfter, [] {});
    }
  });
}

}  // namespace twist
