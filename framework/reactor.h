#ifndef TWIST_FRAMEWORK_REACTOR_H_
#define TWIST_FRAMEWORK_REACTOR_H_

#include <atomic>
#include <csignal>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "framework/address.h"
#include "framework/clock.h"
#include "framework/connection_handle.h"
#include "framework/connection_host.h"
#include "framework/delayed_call.h"
#include "framework/poller.h"
#include "framework/protocol.h"
#include "framework/reactor_tcp.h"
#include "framework/reactor_threads.h"
#include "framework/reactor_time.h"
#include "framework/reactor_udp.h"
#include "framework/reactor_unix.h"
#include "framework/system_event.h"
#include "framework/tcp_connector.h"
#include "framework/thread_pool.h"

// Debug builds check that a reactor method runs on the reactor's thread
// (Reactor::isInReactorThread) and abort naming it if not; NDEBUG builds
// (-c opt) compile the check out. Never on the per-message path.
#ifdef NDEBUG
#define TWIST_CHECK_REACTOR_THREAD(method) ((void)0)
#else
#define TWIST_CHECK_REACTOR_THREAD(method) checkReactorThread(method)
#endif

namespace twist {

class ClientFactory;
class DatagramProtocol;
class Port;
class TcpConnection;
class UdpPort;

class StreamConnection;

struct ReactorOptions {
  /// "epoll" (default), "poll" or "select"; see PollerNames().
  std::string poller = "epoll";
  /// Time source for callLater; nullptr = CLOCK_MONOTONIC. Not owned; must
  /// outlive the reactor. Tests pass a FakeClock.
  Clock* clock = nullptr;
  /// After stop(), how long run() lets connections flush their output
  /// before aborting the rest.
  absl::Duration shutdown_grace = absl::Seconds(5);
  /// How connectTCP resolves host names; empty: Address::ResolveAll
  /// (getaddrinfo). Tests inject one so that no real DNS is asked.
  NameResolver resolver;
  /// Threads of the reactor's thread pool (where names are resolved).
  int thread_pool_size = 4;
};

/// The event loop (Twisted's reactor, muduo's EventLoop). It owns the
/// poller, the listening ports, the connections and the timers, and runs
/// every callback on the thread that calls run(). There is no global
/// reactor: pass it to whoever needs it; one reactor per thread is fine.
///
/// Everything except callFromThread() and isInReactorThread() must be
/// called on the reactor's thread: the one in run(), or, while no run() is
/// going, the one that has the reactor (the program hands it from thread to
/// thread with the usual synchronisation: a thread's start, a join). Debug
/// builds abort on a call from another thread, naming the method.
///
/// Its roles are interfaces of their own, after Twisted's: ReactorTime
/// (callLater, seconds), ReactorTCP (listenTCP, connectTCP), ReactorUNIX,
/// ReactorUDP and ReactorThreads (callFromThread, callInThread). Code that
/// needs one role takes that interface; their headers hold the contracts,
/// and this class says only what it adds to them.
class Reactor : public ReactorTime,
                public ReactorTCP,
                public ReactorUNIX,
                public ReactorUDP,
                public ReactorThreads,
                // What its transports, ports and connectors may ask of it:
                // theirs alone, hence private.
                private ConnectionHost {
 public:
  static absl::StatusOr<std::unique_ptr<Reactor>> Create(
      ReactorOptions options = {});
  /// Closes what is still open: connections are aborted (their protocols
  /// get connectionLost), ports stop listening, pending calls are dropped.
  ~Reactor() override;
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  /// Runs the loop until stop(). Then it stops listening, asks every
  /// connection to loseConnection(), waits up to shutdown_grace for them
  /// to flush, aborts the rest, and returns.
  ///
  /// run(), iterate() and runUntilCurrent() drive the loop: called from
  /// inside one of the loop's own callbacks they would close connections
  /// under the caller and reuse the buffer its data points into, so there
  /// they do nothing but say so once on stderr.
  void run();
  /// Makes run() return after the current callback; callable from any
  /// callback (from another thread, use callFromThread).
  void stop();
  bool running() const { return running_; }
  /// Thread-safe. True on the thread inside run(), and on any thread while
  /// no run() is going (then whoever holds the reactor may call it).
  bool isInReactorThread() const {
    std::thread::id loop = loop_thread_.load(std::memory_order_relaxed);
    return loop == std::thread::id() || loop == std::this_thread::get_id();
  }
  /// One turn of the loop: waits up to `max_wait` for I/O, dispatches it,
  /// runs due calls. For tests and for embedding in another loop.
  void iterate(absl::Duration max_wait = absl::ZeroDuration());
  /// Runs the calls that are due now (after moving a FakeClock, say).
  void runUntilCurrent();

  /// Runs `fn` once, `delay` from now (Twisted's callLater).
  DelayedCall callLater(absl::Duration delay, absl::AnyInvocable<void()> fn) override;
  /// Runs `fn` when run() starts (at once if it is already running, as in
  /// Twisted; closes it asks for still wait until the current callback
  /// returns). Not yet running, it is an "after startup" trigger.
  void callWhenRunning(absl::AnyInvocable<void()> fn);

  /// Runs `fn` when `event` is fired, in `phase` (Twisted's
  /// addSystemEventTrigger). The reactor fires "startup" when run() starts
  /// and "shutdown" after stop(); users fire their own events with
  /// fireSystemEvent. `fn` returns void or a Deferred<Unit>: a "before"
  /// trigger's Deferred holds the "during" and "after" triggers back until
  /// it fires, so a "before shutdown" trigger delays the shutdown (the
  /// reactor keeps running meanwhile), for at most shutdown_grace. A
  /// trigger runs once: firing an event consumes its triggers.
  template <class F>
  TriggerId addSystemEventTrigger(EventPhase phase, absl::string_view event, F fn) {
    TWIST_CHECK_REACTOR_THREAD("addSystemEventTrigger");
    return events_->add(phase, event, SystemEvents::MakeTrigger(std::move(fn)));
  }
  /// NotFound if the trigger already ran or was removed.
  absl::Status removeSystemEventTrigger(TriggerId id) {
    TWIST_CHECK_REACTOR_THREAD("removeSystemEventTrigger");
    return events_->remove(id);
  }
  /// Fires `event`'s triggers (Twisted's fireSystemEvent); see
  /// addSystemEventTrigger. "startup" and "shutdown" are the reactor's to
  /// fire.
  void fireSystemEvent(absl::string_view event) {
    TWIST_CHECK_REACTOR_THREAD("fireSystemEvent");
    events_->fire(event, [] {});
  }
  /// Thread-safe: runs `fn` on the reactor's thread soon, waking it up
  /// (ReactorThreads).
  void callFromThread(absl::AnyInvocable<void()> fn) override;
  /// The reactor's current time (Twisted's reactor.seconds()).
  absl::Time seconds() const override { return clock_->now(); }

  // listenTCP and connectTCP (ReactorTCP), listenUNIX and connectUNIX
  // (ReactorUNIX), listenUDP (ReactorUDP) are the roles' calls. Here:
  // connectTCP resolves a name on the reactor's thread pool, through
  // ReactorOptions::resolver, and every port and connector is owned by the
  // reactor (the pointers stay valid while it lives, as the roles promise).

  /// Resolves `host` to its addresses (Twisted's reactor.resolve, through
  /// the pluggable resolver: ReactorOptions::resolver) on the reactor's
  /// thread pool, so the loop never blocks. `done` runs on the reactor's
  /// thread exactly once, never inside this call: with the addresses or the
  /// failure, or CANCELLED when the reactor stops or is destroyed first.
  /// Returns an id for cancelResolve().
  using ResolveCallback =
      absl::AnyInvocable<void(absl::StatusOr<std::vector<Address>>)>;
  uint64_t resolve(absl::string_view host, int port, ResolveCallback done) override;
  /// Forgets a resolution still under way: its `done` will not run, and if
  /// no pool thread has taken it yet, the look-up itself does not either.
  void cancelResolve(uint64_t id) override;

  /// Makes SIGINT and SIGTERM (or `signals`) call stop() on this reactor,
  /// through a signalfd. Blocks those signals in the calling thread: call it
  /// from main() before starting other threads.
  absl::Status installSignalHandlers(
      std::initializer_list<int> signals = {SIGINT, SIGTERM});

  /// Takes over a connected stream socket `fd` (TCP or Unix) made
  /// elsewhere, another thread's accept() say, and serves it with a
  /// protocol from `factory`, as if this reactor had accepted it (Twisted's
  /// IReactorSocket.adoptStreamConnection). Unlike Twisted's, it takes the
  /// descriptor: it is closed in every case of failure, and when the
  /// factory refuses the peer (buildProtocol returns nullptr). The socket
  /// is made non-blocking. FAILED_PRECONDITION while the reactor shuts down
  /// (it takes no new connections then), or the error of getpeername.
  absl::Status adoptStreamConnection(int fd, Factory* factory);
  /// The same, with the peer's address already known (no getpeername);
  /// `fd` must be non-blocking.
  absl::Status adoptStreamConnection(int fd, Factory* factory, const Address& peer);

  /// listenTCP with SO_REUSEPORT: several sockets, of several reactors or
  /// processes of the same user, listen on the same port and the kernel
  /// spreads the connections over them (by a hash of the peer's address
  /// and port). Port 0 gets a free port; the others then ask for that one.
  absl::StatusOr<Port*> listenTCPReusePort(int port, Factory* factory, int backlog = 50,
                                           absl::string_view interface = "",
                                           DualStack dual_stack = DualStack::kOn);

  /// Serves the connections accepted on `fd`, a stream socket (TCP or
  /// Unix) already bound and listening: one made by another process, or by
  /// this one before fork(), so that several worker processes serve one
  /// port (Twisted's IReactorSocket.adoptStreamPort; ProcessSupervisor).
  /// The port works on a duplicate of `fd` and closes only that: the caller
  /// still owns `fd`. Unlike Twisted's, it takes no address family (read
  /// from the socket), and the port removes no Unix socket file (its
  /// creator does). Calls the factory's doStart() like listenTCP.
  /// Errors: INVALID_ARGUMENT for a descriptor that is not a listening
  /// stream socket; the errno of dup/fcntl otherwise.
  absl::StatusOr<Port*> adoptStreamPort(int fd, Factory* factory);

  Poller& poller() { return *poller_; }
  Clock& clock() { return *clock_; }
  size_t connectionCount() const {
    TWIST_CHECK_REACTOR_THREAD("connectionCount");
    return connections_.size();
  }
  /// Connectors that still have something to do (see Connector).
  size_t connectorCount() const {
    TWIST_CHECK_REACTOR_THREAD("connectorCount");
    return connectors_.size();
  }
  /// The reactor's thread pool (Twisted's getThreadPool()): a few threads,
  /// started on first use, for blocking work such as name resolution.
  ThreadPool& threadPool();
  /// Runs `work` on threadPool(), then `done` on the reactor's thread
  /// (ReactorThreads, which has the contract; what deferToThread is made
  /// of).
  absl::StatusOr<uint64_t> callInThread(
      absl::AnyInvocable<void()> work, absl::AnyInvocable<void(absl::Status)> done) override;
  void cancelThreadCall(uint64_t id) override {
    TWIST_CHECK_REACTOR_THREAD("cancelThreadCall");
    thread_done_.erase(id);
  }
  std::weak_ptr<const void> liveness() const override { return alive_; }
  /// Twisted's suggestThreadPoolSize (ReactorThreads); before first use it
  /// sets ReactorOptions::thread_pool_size.
  void suggestThreadPoolSize(int size) override;

 private:
  // The roles' calls (see ReactorTCP, ReactorUNIX, ReactorUDP).
  absl::StatusOr<Port*> doListenTCP(int port, Factory* factory, int backlog,
                                    absl::string_view interface,
                                    DualStack dual_stack) override;
  Connector* doConnectTCP(absl::string_view host, int port, ClientFactory* factory,
                          absl::Duration timeout,
                          std::optional<Address> bind_address) override;
  absl::StatusOr<Port*> doListenUNIX(absl::string_view path, Factory* factory,
                                     int backlog, int mode, bool want_pid) override;
  Connector* doConnectUNIX(absl::string_view path, ClientFactory* factory,
                           absl::Duration timeout) override;
  absl::StatusOr<UdpPort*> doListenUDP(int port, DatagramProtocol* protocol,
                                       absl::string_view interface, size_t maxPacketSize,
                                       DualStack dual_stack) override;

  class Waker;
  class SignalWatcher;

  // Aborts naming `method` unless isInReactorThread() (debug builds only:
  // see TWIST_CHECK_REACTOR_THREAD).
  void checkReactorThread(const char* method) const {
    if (!isInReactorThread()) wrongThread(method);
  }
  [[noreturn]] static void wrongThread(const char* method);
  absl::StatusOr<Port*> listenTCPSocket(int port, Factory* factory, int backlog,
                                        absl::string_view interface, DualStack dual_stack,
                                        bool reuse_port);

  Reactor(std::unique_ptr<Poller> poller, ReactorOptions options);
  absl::Status init();

  // ConnectionHost (connection_host.h has the contracts).
  void adoptConnection(int fd, Factory* factory, const Address& peer) override;
  absl::StatusOr<StreamConnection*> startConnection(
      int fd, std::unique_ptr<Protocol> protocol, Factory* factory,
      const Address& peer, Connector* connector) override;
  void enqueueClose(StreamConnection* c) override;
  void retire(StreamConnection* c) override;
  void connectorMaybeIdle(Connector* c) override;
  bool shedOneConnection(int listen_fd) override;
  bool stopping() const override { return stopping_; }
  ConnectionHandle connectionHandle(StreamConnection* c, Transport* as) override;
  // This reactor as the host its transports, ports and connectors get.
  ConnectionHost* host() { return this; }

  void reapIdleConnectors();
  // Stopping: resolutions under way end (cancelled). True if any did.
  bool abandonResolutions();
  void finishResolve(uint64_t id, absl::StatusOr<std::vector<Address>> result);
  // Stopping: every connector's attempt or pending retry ends (cancelled).
  void abandonConnectors();
  void processPendingCloses();
  void runThreadCalls();
  // callInThread's `done` for call `id`, on the reactor's thread.
  void finishThreadCall(uint64_t id, absl::Status status);
  // Stopping: drops the pool's queued work (reported CANCELLED) and waits
  // for the running work's `done` until `deadline`.
  void stopThreadPool(absl::Time deadline);
  // One turn of the loop (iterate()'s work, for the loop itself).
  void turn(absl::Duration max_wait);
  // Runs the due timers (runUntilCurrent's work, for the loop itself).
  void runDueCalls();
  // Whether the loop may be driven now; if not, says so once on stderr.
  bool mayDrive(const char* method);
  // Marks the loop as dispatching for a scope: user callbacks run inside it.
  class Dispatching;

  ReactorOptions options_;
  std::unique_ptr<Poller> poller_;
  MonotonicClock monotonic_;
  Clock* clock_;
  TimerQueue timers_;

  absl::flat_hash_map<StreamConnection*, std::unique_ptr<StreamConnection>>
      connections_;
  std::vector<StreamConnection*> pending_closes_;
  std::vector<std::unique_ptr<StreamConnection>> dead_;
  std::vector<std::unique_ptr<Port>> ports_;
  std::vector<std::unique_ptr<UdpPort>> udp_ports_;
  absl::flat_hash_map<Connector*, std::unique_ptr<Connector>> connectors_;
  std::vector<Connector*> maybe_idle_;
  std::vector<ReadyEvent> ready_;
  int reserve_fd_ = -1;
  std::shared_ptr<const NameResolver> resolver_;  // shared with pool tasks
  std::unique_ptr<ThreadPool> thread_pool_;       // made on first use
  // resolve(): the callbacks still owed (resolutions run through
  // callInThread), and what each shares with its pool task: the answer, and
  // whether it is still wanted (a look-up cancelled while queued is skipped).
  struct Lookup {
    std::atomic<bool> cancelled{false};
    absl::StatusOr<std::vector<Address>> answer;
  };
  struct Resolution {
    ResolveCallback done;
    std::shared_ptr<Lookup> lookup;
    uint64_t thread_call = 0;  // its callInThread, cancelled with it
  };
  absl::flat_hash_map<uint64_t, Resolution> resolutions_;
  uint64_t next_resolution_ = 0;

  // callInThread: pool tasks reach the reactor only through this, which
  // the destructor clears under its mutex.
  struct ThreadHandoff {
    std::mutex mu;
    Reactor* reactor = nullptr;
  };
  std::shared_ptr<ThreadHandoff> thread_handoff_;
  absl::flat_hash_map<uint64_t, absl::AnyInvocable<void(absl::Status)>> thread_done_;
  uint64_t next_thread_call_ = 0;

  std::shared_ptr<const int> alive_ = std::make_shared<const int>(0);  // liveness()
  // shared: a Deferred that fires after the reactor is gone finds nothing.
  std::shared_ptr<SystemEvents> events_ = std::make_shared<SystemEvents>();
  std::unique_ptr<Waker> waker_;
  std::unique_ptr<SignalWatcher> signals_;
  // std::mutex, not absl::Mutex: Debian's Abseil is not built for
  // ThreadSanitizer, which then cannot see absl::Mutex order its accesses.
  std::mutex thread_calls_mu_;
  std::vector<absl::AnyInvocable<void()>> thread_calls_
      ABSL_GUARDED_BY(thread_calls_mu_);

  // Handles (ConnectionHandle) reach the reactor through this door, which
  // the destructor closes; and each connection a handle was asked for has
  // its anchor here, marked dead when the connection retires.
  std::shared_ptr<internal::ReactorDoor> door_;
  absl::flat_hash_map<StreamConnection*, std::shared_ptr<internal::ConnectionAnchor>> anchors_;
  // The thread inside run(); no thread's id while no run() is going.
  std::atomic<std::thread::id> loop_thread_{};

  int dispatch_depth_ = 0;  // > 0: inside the loop's own dispatch
  bool warned_reentry_ = false;
  bool running_ = false;
  bool warned_refused_ = false;  // say once that connections are refused
  bool stop_requested_ = false;
  bool stopping_ = false;  // shutting down: no new outgoing connections
  bool shutting_down_ = false;  // from stop() until run() returns
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_REACTOR_H_
