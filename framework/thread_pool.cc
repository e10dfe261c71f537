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
  int max = 0;        // threads allowed; guarded by mu
  bool shutdown = false;  // guarded by mu
};

ThreadPool::ThreadPool(int max_threads) : state_(std::make_shared<State>()) {
  state_->max = max_threads < 0 ? 0 : max_threads;
}

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
    s->wake.wait(lock, [&] {
      return s->shutdown || !s->tasks.empty() || s->threads > s->max;
    });
    if (s->shutdown || s->threads > s->max) break;  // over a smaller size: leave
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

// Starts threads while tasks outnumber the free threads and the size
// allows; the error of the last start that failed, if any. Called with
// s->mu held: a new thread waits for it before it counts itself.
absl::Status ThreadPool::StartThreads(const std::shared_ptr<State>& s, size_t tasks) {
  while (static_cast<size_t>(s->free) < tasks && s->threads < s->max) {
    try {
      std::thread(&ThreadPool::Work, s).detach();
    } catch (const std::system_error& e) {
      return absl::ResourceExhaustedError(absl::StrCat("cannot start a thread: ", e.what()));
    }
    ++s->threads;
    ++s->free;
  }
  return absl::OkStatus();
}

absl::Status ThreadPool::callInThread(absl::AnyInvocable<void()> task) {
  // On failure `task` is destroyed after the lock is released (it is a
  // parameter): its captures may take locks of their own when they go.
  std::unique_lock<std::mutex> lock(state_->mu);
  absl::Status started = StartThreads(state_, state_->tasks.size() + 1);
  if (state_->threads == 0) {
    // The threads we have would get to it; with none, nothing ever would.
    return started.ok() ? absl::ResourceExhaustedError("the thread pool may start no thread")
                        : started;
  }
  state_->tasks.push_back(std::move(task));
  lock.unlock();
  state_->wake.notify_one();
  return absl::OkStatus();
}

size_t ThreadPool::dropQueued() {
  std::deque<absl::AnyInvocable<void()>> dropped;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    dropped.swap(state_->tasks);
  }
  return dropped.size();  // destroyed here, outside the lock
}

void ThreadPool::setMaxThreads(int max_threads) {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->max = max_threads < 0 ? 0 : max_threads;
    // A larger size takes queued tasks now; if no thread starts, the running
    // ones still get to them.
    StartThreads(state_, state_->tasks.size()).IgnoreError();
  }
  state_->wake.notify_all();  // idle threads over the size leave
}

int ThreadPool::maxThreads() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->max;
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
