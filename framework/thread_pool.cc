#include "framework/thread_pool.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"

namespace twist {

// std::mutex, not absl::Mutex: Debian's Abseil is not built for
// ThreadSanitizer.
struct ThreadPool::State {
  std::mutex mu;
  std::condition_variable wake;
  std::deque<absl::AnyInvocable<void()>> tasks;  // guarded by mu
  int threads = 0;    // started, not finished; guarded by mu
  int free = 0;       // of those, not running a task; guarded by mu
  bool shutdown = false;  // guarded by mu
};

ThreadPool::ThreadPool(int max_threads)
    : max_threads_(max_threads < 0 ? 0 : max_threads),
      state_(std::make_shared<State>()) {}

ThreadPool::~ThreadPool() {
  std::deque<absl::AnyInvocable<void()>> dropped;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->shutdown = true;
    dropped.swap(state_->tasks);
  }
  state_->wake.notify_all();
  // `dropped` is destroyed here, outside the lock: a task's captures may
  // take locks of their own when they go.
}

void ThreadPool::Work(std::shared_ptr<State> s) {
  std::unique_lock<std::mutex> lock(s->mu);
  while (true) {
    s->wake.wait(lock, [&] { return s->shutdown || !s->tasks.empty(); });
    if (s->shutdown) break;
    absl::AnyInvocable<void()> task = std::move(s->tasks.front());
    s->tasks.pop_front();
    --s->free;
    lock.unlock();
    task();
    task = nullptr;  // its captures go before we take the lock again
    lock.lock();
    ++s->free;
  }
  --s->free;
  --s->threads;
}

absl::Status ThreadPool::callInThread(absl::AnyInvocable<void()> task) {
  // On failure `task` is destroyed after the lock is released (it is a
  // parameter): its captures may take locks of their own when they go.
  std::unique_lock<std::mutex> lock(state_->mu);
  if (static_cast<size_t>(state_->free) <= state_->tasks.size() &&
      state_->threads < max_threads_) {
    try {
      // The thread waits for the lock we hold before it counts itself.
      std::thread(&ThreadPool::Work, state_).detach();
      ++state_->threads;
      ++state_->free;
    } catch (const std::system_error& e) {
      if (state_->threads == 0) {
        return absl::ResourceExhaustedError(
            absl::StrCat("cannot start a thread: ", e.what()));
      }
      // The threads we have will get to it.
    }
  } else if (state_->threads == 0) {
    return absl::ResourceExhaustedError("the thread pool may start no thread");
  }
  state_->tasks.push_back(std::move(task));
  lock.unlock();
  state_->wake.notify_one();
  return absl::OkStatus();
}

int ThreadPool::threadCount() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->threads;
}

size_t ThreadPool::queued() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->tasks.size();
}

}  // namespace twist
