#ifndef TWIST_FRAMEWORK_THREAD_POOL_H_
#define TWIST_FRAMEWORK_THREAD_POOL_H_

#include <cstddef>
#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"

namespace twist {

/// A small bounded pool of worker threads for blocking work that must stay
/// off the reactor's thread (Twisted's reactor thread pool); the reactor
/// owns one and resolves connectTCP's host names on it.
///
/// Threads start lazily: a task that finds no free thread starts one, up to
/// `max_threads`; beyond that, tasks wait in a queue, first in first out.
/// So a million look-ups cost at most `max_threads` threads.
///
/// Destroying the pool drops the tasks that have not started and does not
/// wait for the running ones (a getaddrinfo() can block for as long as the
/// system resolver's timeout): a task must reach anything that may be gone
/// by then only through state it shares (a shared_ptr), never through the
/// pool's owner. Thread-safe.
class ThreadPool {
 public:
  explicit ThreadPool(int max_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  /// Runs `task` on a pool thread, now or once one is free (Twisted's
  /// callInThread). ResourceExhausted, with `task` dropped, when no thread
  /// can ever run it: none could be started and none is running (the
  /// process is out of threads, or max_threads is 0).
  absl::Status callInThread(absl::AnyInvocable<void()> task);

  /// Drops the tasks no thread has taken yet (their captures are
  /// destroyed, outside the pool's lock) and returns how many; running
  /// tasks go on. The pool stays usable.
  size_t dropQueued();
  /// Changes max_threads (Twisted's adjustPoolsize): threads over it leave
  /// once idle; under it, queued tasks get new threads at once.
  void setMaxThreads(int max_threads);
  int maxThreads() const;
  /// Threads started and not yet finished.
  int threadCount() const;
  /// Tasks waiting for a free thread.
  size_t queued() const;

 private:
  struct State;
  static void Work(std::shared_ptr<State> state);
  static absl::Status StartThreads(const std::shared_ptr<State>& s, size_t tasks);

  std::shared_ptr<State> state_;  // shared with the threads: they may outlive us
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_THREAD_POOL_H_
