#ifndef TWIST_FRAMEWORK_REACTOR_POOL_H_
#define TWIST_FRAMEWORK_REACTOR_POOL_H_

#include <atomic>
#include <csignal>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "framework/dual_stack.h"
#include "framework/reactor.h"

namespace twist {

class Factory;
class Port;

/// How a ReactorPool spreads the connections of one listening address over
/// its reactors.
enum class Spread {
  /// One listening socket, on reactor 0, which accepts and hands each
  /// socket to the next reactor in turn (callFromThread, then
  /// Reactor::adoptStreamConnection there): exactly even in count.
  kRoundRobin,
  /// A listening socket per reactor on the same port (SO_REUSEPORT): each
  /// reactor accepts its own, the kernel picks by a hash of the peer's
  /// address and port, so the spread is only even on average; no hand-off.
  /// TCP only.
  kReusePort,
};
/// "round_robin" or "reuseport"; InvalidArgument for anything else.
absl::StatusOr<Spread> ParseSpread(absl::string_view name);
const char* SpreadName(Spread spread);

/// N reactors, each running on its own thread (muduo's
/// EventLoopThreadPool): what a server uses to serve on every core. Every
/// reactor is a plain Reactor, made with the same ReactorOptions; each
/// connection lives on one of them for its whole life, and its protocol
/// is called on that reactor's thread only.
///
/// Set-up (Create, listenTCP/listenUNIX, installSignalHandlers, calls on
/// reactor(i) such as listenTCP or callLater) happens on the thread that
/// will call run(), before it. run() runs reactor 0 on the calling thread
/// and reactors 1..N-1 on threads of their own, and returns when all have
/// stopped and their threads are joined. stop() is thread-safe: from any
/// thread, a signal (installSignalHandlers), or a callback on any reactor;
/// any one reactor stopping (its own stop(), in a callback) stops them all.
/// Each reactor then shuts down as Reactor::run does, in parallel: it stops
/// listening, lets its connections flush for ReactorOptions::shutdown_grace,
/// and aborts the rest.
///
/// Between reactors, only callFromThread (Reactor) and post (a
/// ConnectionHandle, from Transport::handle) are safe: never hold another
/// reactor's connection, port or protocol by pointer.
///
/// The factories given to listenTCP/listenUNIX are shared by the reactors:
/// their buildProtocol runs on several threads at once (Factory has the
/// contract), and they must outlive the pool.
class ReactorPool {
 public:
  /// `threads` reactors (>= 1), each made with `options`. A
  /// ReactorOptions::clock, if given, is shared and must be thread-safe.
  static absl::StatusOr<std::unique_ptr<ReactorPool>> Create(int threads,
                                                             ReactorOptions options = {});
  /// Destroys the reactors (after run() has returned, or if it never ran):
  /// what they still hold is closed as ~Reactor does. The ports listenTCP
  /// and listenUNIX made stop first, while every reactor still exists.
  ~ReactorPool();
  ReactorPool(const ReactorPool&) = delete;
  ReactorPool& operator=(const ReactorPool&) = delete;

  int size() const { return static_cast<int>(reactors_.size()); }
  /// Reactor `i` (0 <= i < size()). Call its methods on its own thread
  /// once run() has started (Reactor::isInReactorThread), from anywhere
  /// only callFromThread.
  Reactor& reactor(int i) { return *reactors_[i]; }
  /// Thread-safe: the index of the reactor of this pool whose run() the
  /// calling thread is in (a callback's own reactor: for state kept per
  /// reactor), or -1 on any other thread.
  int currentIndex() const;

  /// Listens on `interface`:`port` as ReactorTCP::listenTCP does and
  /// spreads the connections over the reactors as `spread` says. Returns
  /// the listening ports: one (on reactor 0) for kRoundRobin, one per
  /// reactor (port i on reactor i) for kReusePort; they all report the
  /// same address. Before run(), on the thread that will call it.
  absl::StatusOr<std::vector<Port*>> listenTCP(int port, Factory* factory,
                                               Spread spread = Spread::kRoundRobin,
                                               int backlog = 50,
                                               absl::string_view interface = "",
                                               DualStack dual_stack = DualStack::kOn);
  /// A Unix socket (ReactorUNIX::listenUNIX), its connections handed round
  /// robin: one path cannot be bound by several sockets, so kReusePort is
  /// InvalidArgument.
  absl::StatusOr<std::vector<Port*>> listenUNIX(absl::string_view path, Factory* factory,
                                                Spread spread = Spread::kRoundRobin,
                                                int backlog = 50, int mode = 0666,
                                                bool want_pid = true);

  /// Makes SIGINT and SIGTERM (or `signals`) stop the whole pool, through
  /// reactor 0's signalfd. Blocks those signals in the calling thread, so
  /// call it before run() (whose threads inherit the mask) and before
  /// starting any other thread.
  absl::Status installSignalHandlers(std::initializer_list<int> signals = {SIGINT, SIGTERM});

  /// Runs every reactor (0 on this thread, the others on their own) until
  /// stop(); returns once each has shut down and its thread is joined. A
  /// stop() before run() makes run() shut down at once.
  void run();
  /// Thread-safe: asks every reactor to stop (each after its current
  /// callback). Idempotent; run() then returns.
  void stop();
  /// Thread-safe: whether stop() was asked for since run() started.
  bool stopRequested() const { return stop_requested_.load(std::memory_order_acquire); }

  /// Thread-safe: runs `fn` once on reactor `i`'s thread, for work that
  /// belongs to that reactor and must not be lost at shutdown (a
  /// per-reactor factory's stopFactory). On that thread, at once. While
  /// run() is going and reactor `i`'s run() has not returned, posted
  /// (callFromThread): it runs before reactor `i`'s thread is done, even if
  /// posted after that reactor's last turn. Otherwise (run() is not going,
  /// or reactor `i` has finished and its thread touches it no more), at
  /// once on the calling thread, which may then use reactor `i`
  /// (isInReactorThread() is true there); two threads that call it then
  /// for the same finished reactor run their calls at the same time, so such
  /// calls must not touch what they share without a lock (a per-reactor
  /// factory's stopFactory touches its own factory only). Calls posted to
  /// one reactor run in the order they were posted. `i` is 0..size()-1.
  void callOnReactor(int i, absl::AnyInvocable<void()> fn) const;

 private:
  class RoundRobin;
  explicit ReactorPool(std::vector<std::unique_ptr<Reactor>> reactors);
  // Makes `port` (on reactor 0) hand its sockets round robin.
  void spreadRoundRobin(Port* port, Factory* factory);
  // On reactor `i`'s thread: runs what callOnReactor queued for it, in
  // order, until none is left.
  void drainLate(int i) const;
  // Reactor `i`'s run() has returned (on its thread): runs what
  // callOnReactor posted that it did not run, then marks it finished.
  void finishRun(int i);

  std::vector<std::unique_ptr<Reactor>> reactors_;
  std::vector<std::unique_ptr<RoundRobin>> round_robins_;
  std::vector<Port*> ports_;  // listenTCP's and listenUNIX's (their reactors own them)
  std::atomic<bool> stop_requested_{false};

  // callOnReactor's state: whether run() is going, which reactors have
  // finished, and the calls posted to each that may not have run yet.
  mutable std::mutex late_mu_;
  bool pool_running_ ABSL_GUARDED_BY(late_mu_) = false;
  std::vector<bool> finished_ ABSL_GUARDED_BY(late_mu_);
  mutable std::vector<std::vector<absl::AnyInvocable<void()>>> late_ ABSL_GUARDED_BY(late_mu_);
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_REACTOR_POOL_H_
