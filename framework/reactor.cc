#include "framework/reactor.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "framework/errors.h"
#include "framework/stream_connection.h"
#include "framework/tcp_connection.h"
#include "framework/tcp_port.h"
#include "framework/thread_pool.h"
#include "framework/udp_port.h"
#include "framework/unix_connection.h"
#include "framework/unix_socket_file.h"

namespace twist {

// Wakes the loop from another thread (callFromThread) through an eventfd.
class Reactor::Waker final : public Selectable {
 public:
  Waker(Reactor* reactor, int fd) : reactor_(reactor), fd_(fd) {}
  ~Waker() override { ::close(fd_); }
  int fd() const { return fd_; }
  void wake() {
    uint64_t one = 1;
    ssize_t n;
    do {
      n = ::write(fd_, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
  }
  void handleEvents(uint32_t) override {
    uint64_t count;
    while (::read(fd_, &count, sizeof(count)) < 0 && errno == EINTR) {
    }
    reactor_->runThreadCalls();
  }

 private:
  Reactor* reactor_;
  int fd_;
};

// Turns signals into a stop() on the loop, through a signalfd: no code runs
// in signal context.
class Reactor::SignalWatcher final : public Selectable {
 public:
  SignalWatcher(Reactor* reactor, int fd) : reactor_(reactor), fd_(fd) {}
  ~SignalWatcher() override { ::close(fd_); }
  int fd() const { return fd_; }
  void handleEvents(uint32_t) override {
    signalfd_siginfo info;
    while (true) {
      ssize_t n = ::read(fd_, &info, sizeof(info));
      if (n < 0 && errno == EINTR) continue;
      if (n != static_cast<ssize_t>(sizeof(info))) break;
      reactor_->stop();
    }
  }

 private:
  Reactor* reactor_;
  int fd_;
};

class Reactor::Dispatching {
 public:
  explicit Dispatching(Reactor* r) : r_(r) { ++r_->dispatch_depth_; }
  ~Dispatching() { --r_->dispatch_depth_; }
  Dispatching(const Dispatching&) = delete;
  Dispatching& operator=(const Dispatching&) = delete;

 private:
  Reactor* r_;
};

void Reactor::wrongThread(const char* method) {
  fprintf(stderr,
          "twist: Reactor::%s called from a thread that is not the reactor's "
          "(use callFromThread, or a ConnectionHandle)\n",
          method);
  fflush(stderr);
  abort();
}

bool Reactor::mayDrive(const char* method) {
  if (dispatch_depth_ == 0) return true;
  if (!warned_reentry_) {
    warned_reentry_ = true;
    fprintf(stderr,
            "twist: Reactor::%s() called from inside a reactor callback; ignored "
            "(the loop cannot be re-entered)\n",
            method);
  }
  return false;
}

absl::StatusOr<std::unique_ptr<Reactor>> Reactor::Create(
    ReactorOptions options) {
  absl::StatusOr<std::unique_ptr<Poller>> poller =
      CreatePoller(options.poller);
  if (!poller.ok()) return poller.status();
  std::unique_ptr<Reactor> reactor(
      new Reactor(*std::move(poller), std::move(options)));
  if (absl::Status s = reactor->init(); !s.ok()) return s;
  return reactor;
}

Reactor::Reactor(std::unique_ptr<Poller> poller, ReactorOptions options)
    : ConnectionHost(poller.get(), this),
      options_(std::move(options)),
      poller_(std::move(poller)),
      clock_(options_.clock != nullptr ? options_.clock : &monotonic_),
      timers_(clock_),
      resolver_(std::make_shared<const NameResolver>(
          options_.resolver ? options_.resolver : NameResolver(&Address::ResolveAll))) {}

ThreadPool& Reactor::threadPool() {
  TWIST_CHECK_REACTOR_THREAD("threadPool");
  if (thread_pool_ == nullptr) {
    thread_pool_ = std::make_unique<ThreadPool>(options_.thread_pool_size);
  }
  return *thread_pool_;
}

namespace {

// Rides in a pool task and reports it to the reactor when the task goes:
// OK once it has run, CANCELLED if it is destroyed unrun (dropped from the
// queue when the reactor stopped, or with the pool). Reaches the reactor only
// through the hand-off, which ~Reactor clears.
template <class Handoff, class Post>
class ThreadCallReport {
 public:
  ThreadCallReport(std::shared_ptr<Handoff> handoff, uint64_t id, Post post)
      : handoff_(std::move(handoff)), id_(id), post_(post) {}
  ThreadCallReport(ThreadCallReport&& other) noexcept
      : handoff_(std::move(other.handoff_)), id_(other.id_), post_(other.post_),
        ran_(other.ran_) {}
  ThreadCallReport& operator=(ThreadCallReport&&) = delete;
  ~ThreadCallReport() {
    if (handoff_ == nullptr) return;  // moved from
    std::lock_guard<std::mutex> lock(handoff_->mu);
    if (handoff_->reactor == nullptr) return;
    post_(handoff_->reactor, id_,
          ran_ ? absl::OkStatus()
               : absl::CancelledError(
                     "the reactor stopped before a pool thread took the work"));
  }
  void ran() { ran_ = true; }

 private:
  std::shared_ptr<Handoff> handoff_;
  uint64_t id_;
  Post post_;
  bool ran_ = false;
};

}  // namespace

absl::StatusOr<uint64_t> Reactor::callInThread(absl::AnyInvocable<void()> work,
                                               absl::AnyInvocable<void(absl::Status)> done) {
  TWIST_CHECK_REACTOR_THREAD("callInThread");
  if (thread_handoff_ == nullptr) {
    thread_handoff_ = std::make_shared<ThreadHandoff>();
    thread_handoff_->reactor = this;
  }
  const uint64_t id = ++next_thread_call_;
  thread_done_[id] = std::move(done);
  auto post = [](Reactor* r, uint64_t id, absl::Status status) {
    r->callFromThread([r, id, status = std::move(status)]() mutable {
      r->finishThreadCall(id, std::move(status));
    });
  };
  absl::Status s = threadPool().callInThread(
      [report = ThreadCallReport<ThreadHandoff, decltype(post)>(thread_handoff_, id, post),
       work = std::move(work)]() mutable {
        work();
        work = nullptr;  // what it captured goes here, not on the reactor
        report.ran();    // and the report goes when the pool drops this task
      });
  if (!s.ok()) {
    thread_done_.erase(id);
    return s;
  }
  return id;
}

void Reactor::finishThreadCall(uint64_t id, absl::Status status) {
  auto it = thread_done_.find(id);
  if (it == thread_done_.end()) return;
  absl::AnyInvocable<void(absl::Status)> fn = std::move(it->second);
  thread_done_.erase(it);
  fn(std::move(status));
}

void Reactor::suggestThreadPoolSize(int size) {
  TWIST_CHECK_REACTOR_THREAD("suggestThreadPoolSize");
  options_.thread_pool_size = size;
  if (thread_pool_ != nullptr) thread_pool_->setMaxThreads(size);
}

void Reactor::stopThreadPool(absl::Time deadline) {
  if (thread_pool_ == nullptr) return;
  // Each dropped task reports itself CANCELLED through callFromThread.
  thread_pool_->dropQueued();
  while (!thread_done_.empty()) {
    absl::Duration left = deadline - monotonic_.now();
    if (left <= absl::ZeroDuration()) break;
    turn(left);
  }
  if (!thread_done_.empty()) {
    std::fprintf(stderr,
                 "twist: %zu thread pool task(s) still running after the shutdown "
                 "grace; their results will be dropped\n",
                 thread_done_.size());
  }
}

absl::Status Reactor::init() {
  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd < 0) return absl::ErrnoToStatus(errno, "eventfd");
  waker_ = std::make_unique<Waker>(this, efd);
  door_ = std::make_shared<internal::ReactorDoor>();
  door_->reactor = this;
  if (absl::Status s = poller_->add(efd, kReadable, waker_.get()); !s.ok()) {
    return s;
  }
  // Held in reserve for accept's EMFILE handling (see shedOneConnection).
  reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  return absl::OkStatus();
}

Reactor::~Reactor() {
  // No trigger runs from here on (docs/design.md, "Shutdown"): a "before"
  // Deferred that a connectionLost below fires finds its event gone instead
  // of running "during"/"after" triggers in a half-destroyed reactor, and
  // triggers added or events fired meanwhile meet an empty set.
  events_ = std::make_shared<SystemEvents>();
  if (thread_handoff_ != nullptr) {
    std::lock_guard<std::mutex> lock(thread_handoff_->mu);
    thread_handoff_->reactor = nullptr;  // pool tasks still running call nothing
  }
  if (door_ != nullptr) {
    std::lock_guard<std::mutex> lock(door_->mu);
    door_->reactor = nullptr;  // handles' posts from now on are dropped
  }
  // Abort what is left so that every protocol still gets connectionLost;
  // no client reconnects from there.
  Dispatching dispatching(this);
  stopping_ = true;
  std::vector<StreamConnection*> open;
  for (auto& [c, owned] : connections_) open.push_back(c);
  for (StreamConnection* c : open) c->abortConnection();
  processPendingCloses();
  dead_.clear();
  abandonConnectors();
  maybe_idle_.clear();
  connectors_.clear();
  for (auto& port : ports_) port->stopListening();
  ports_.clear();
  for (auto& port : udp_ports_) port->stopListening();
  udp_ports_.clear();
  if (signals_ != nullptr) poller_->remove(signals_->fd());
  if (waker_ != nullptr) poller_->remove(waker_->fd());
  if (reserve_fd_ >= 0) ::close(reserve_fd_);
}

void Reactor::run() {
  TWIST_CHECK_REACTOR_THREAD("run");
  if (!mayDrive("run")) return;
  Dispatching dispatching(this);
  loop_thread_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  running_ = true;
  stop_requested_ = false;
  // Twisted fires "startup" as the loop starts; callWhenRunning's calls are
  // its "after" triggers.
  events_->fire("startup", [this] { processPendingCloses(); });
  while (!stop_requested_) turn(absl::InfiniteDuration());

  // Shut down. The grace bounds all of it: "before shutdown" triggers'
  // Deferreds (the reactor runs as usual meanwhile), then the flush.
  shutting_down_ = true;
  stop_requested_ = false;
  const absl::Time deadline = monotonic_.now() + options_.shutdown_grace;
  Deferred<Unit> before =
      events_->fireBefore("shutdown", [this] { processPendingCloses(); });
  auto ready = std::make_shared<bool>(false);
  before.addBoth([ready](absl::StatusOr<Unit>) { *ready = true; });
  while (!*ready) {
    absl::Duration left = deadline - monotonic_.now();
    if (left <= absl::ZeroDuration()) break;
    turn(left);
  }
  before.cancel();  // the grace ended first: they are cancelled

  // No new connections; let the open ones flush and close.
  stopping_ = true;
  for (auto& port : ports_) port->stopListening();
  // A callback may add ports: index, not iterators.
  for (size_t i = 0; i < udp_ports_.size(); ++i) udp_ports_[i]->stopListening();
  abandonConnectors();
  std::vector<StreamConnection*> open;
  for (auto& [c, owned] : connections_) open.push_back(c);
  // As the application would close it: a TLS layer sends close_notify.
  for (StreamConnection* c : open) c->loseConnectionFromApplication();
  processPendingCloses();
  dead_.clear();
  events_->firePhase("shutdown", EventPhase::kDuring,
                     [this] { processPendingCloses(); });
  // Twisted stops its thread pool "during shutdown" too.
  stopThreadPool(deadline);
  while (!connections_.empty()) {
    absl::Duration left = deadline - monotonic_.now();
    if (left <= absl::ZeroDuration()) break;
    turn(left);
  }
  open.clear();
  for (auto& [c, owned] : connections_) open.push_back(c);
  for (StreamConnection* c : open) c->abortConnection();
  processPendingCloses();
  dead_.clear();
  abandonConnectors();  // attempts begun by callbacks during the grace
  reapIdleConnectors();
  events_->firePhase("shutdown", EventPhase::kAfter,
                     [this] { processPendingCloses(); });
  processPendingCloses();
  dead_.clear();
  stopping_ = false;
  shutting_down_ = false;
  running_ = false;
  loop_thread_.store(std::thread::id(), std::memory_order_relaxed);
}

void Reactor::stop() {
  TWIST_CHECK_REACTOR_THREAD("stop");
  // While shutting down, a second stop() changes nothing (Twisted raises
  // ReactorNotRunning once the loop has stopped).
  if (running_ && !shutting_down_) stop_requested_ = true;
}

void Reactor::iterate(absl::Duration max_wait) {
  TWIST_CHECK_REACTOR_THREAD("iterate");
  if (!mayDrive("iterate")) return;
  Dispatching dispatching(this);
  turn(max_wait);
}

void Reactor::turn(absl::Duration max_wait) {
  processPendingCloses();
  absl::Duration timeout = max_wait;
  absl::Time due = timers_.nextDue();
  if (due != absl::InfiniteFuture()) {
    timeout = std::min(timeout, std::max(absl::ZeroDuration(), due - clock_->now()));
  }
  if (stop_requested_) timeout = absl::ZeroDuration();
  ready_.clear();
  absl::Status s = poller_->poll(timeout, &ready_);
  if (!s.ok()) {
    // Only a bug (EBADF, EINVAL) gets here; say so rather than spin silently.
    fprintf(stderr, "twist: %s\n", std::string(s.message()).c_str());
  }
  for (const ReadyEvent& ev : ready_) {
    ev.selectable->handleEvents(ev.events);
    processPendingCloses();
  }
  runDueCalls();
  dead_.clear();
  reapIdleConnectors();
}

void Reactor::runUntilCurrent() {
  TWIST_CHECK_REACTOR_THREAD("runUntilCurrent");
  if (!mayDrive("runUntilCurrent")) return;
  Dispatching dispatching(this);
  runDueCalls();
  dead_.clear();
}

void Reactor::runDueCalls() {
  timers_.runDue([this] { processPendingCloses(); });
}

DelayedCall Reactor::callLater(absl::Duration delay,
                               absl::AnyInvocable<void()> fn) {
  TWIST_CHECK_REACTOR_THREAD("callLater");
  return timers_.callLater(delay, std::move(fn));
}

void Reactor::callWhenRunning(absl::AnyInvocable<void()> fn) {
  TWIST_CHECK_REACTOR_THREAD("callWhenRunning");
  if (running_) {
    // Inside a callback (where all of a running reactor's own code runs):
    // closes it asks for are processed when that callback returns.
    fn();
  } else {
    events_->add(EventPhase::kAfter, "startup", SystemEvents::MakeTrigger(std::move(fn)));
  }
}

void Reactor::callFromThread(absl::AnyInvocable<void()> fn) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(thread_calls_mu_);
    was_empty = thread_calls_.empty();
    thread_calls_.push_back(std::move(fn));
  }
  if (was_empty) waker_->wake();
}

void Reactor::runThreadCalls() {
  std::vector<absl::AnyInvocable<void()>> calls;
  {
    std::lock_guard<std::mutex> lock(thread_calls_mu_);
    calls.swap(thread_calls_);
  }
  for (auto& fn : calls) {
    fn();
    processPendingCloses();
  }
}

absl::StatusOr<Port*> Reactor::doListenTCP(int port, Factory* factory,
                                         int backlog,
                                         absl::string_view interface,
                                         DualStack dual_stack) {
  TWIST_CHECK_REACTOR_THREAD("listenTCP");
  return listenTCPSocket(port, factory, backlog, interface, dual_stack, /*reuse_port=*/false);
}

absl::StatusOr<Port*> Reactor::listenTCPReusePort(int port, Factory* factory, int backlog,
                                                  absl::string_view interface,
                                                  DualStack dual_stack) {
  TWIST_CHECK_REACTOR_THREAD("listenTCPReusePort");
  return listenTCPSocket(port, factory, backlog, interface, dual_stack, /*reuse_port=*/true);
}

absl::StatusOr<Port*> Reactor::listenTCPSocket(int port, Factory* factory, int backlog,
                                               absl::string_view interface,
                                               DualStack dual_stack, bool reuse_port) {
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid port ", port, ": must be 0..65535"));
  }
  absl::StatusOr<Address> addr = Address::Resolve(interface, port);
  if (!addr.ok()) return addr.status();
  const std::string where = absl::StrCat("cannot listen on ", addr->ToString());
  absl::StatusOr<int> bound_fd = BoundTcpSocket(*addr, dual_stack, reuse_port);
  if (!bound_fd.ok()) return bound_fd.status();
  const int fd = *bound_fd;
  if (::listen(fd, backlog) != 0) {
    absl::Status s = absl::ErrnoToStatus(errno, where);
    ::close(fd);
    return s;
  }
  absl::StatusOr<Address> bound = Address::LocalOf(fd);
  auto p = std::make_unique<Port>(host(), factory, fd, bound.ok() ? *bound : *addr);
  if (absl::Status s = p->startListening(); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(where, ": ", s.message()));
  }
  factory->doStart();
  ports_.push_back(std::move(p));
  return ports_.back().get();
}

absl::StatusOr<Port*> Reactor::adoptStreamPort(int fd, Factory* factory) {
  const std::string where = absl::StrCat("cannot adopt descriptor ", fd, " as a port");
  int type = 0;
  int accepting = 0;
  socklen_t len = sizeof(type);
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", strerror(errno)));
  }
  len = sizeof(accepting);
  if (type != SOCK_STREAM ||
      ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0 || !accepting) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": not a listening stream socket"));
  }
  int own = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) return absl::ErrnoToStatus(errno, where);
  // Non-blocking is the open file's flag, shared with every duplicate: the
  // other processes accepting on it need it as much as this one.
  const int flags = ::fcntl(own, F_GETFL);
  if (flags < 0 || ::fcntl(own, F_SETFL, flags | O_NONBLOCK) != 0) {
    absl::Status s = absl::ErrnoToStatus(errno, where);
    ::close(own);
    return s;
  }
  absl::StatusOr<Address> bound = Address::LocalOf(own);
  if (!bound.ok()) {
    ::close(own);
    return absl::Status(bound.status().code(),
                        absl::StrCat(where, ": ", bound.status().message()));
  }
  auto p = std::make_unique<Port>(host(), factory, own, *bound);
  if (absl::Status s = p->startListening(); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(where, ": ", s.message()));
  }
  factory->doStart();
  ports_.push_back(std::move(p));
  return ports_.back().get();
}

absl::StatusOr<UdpPort*> Reactor::doListenUDP(int port, DatagramProtocol* protocol,
                                            absl::string_view interface,
                                            size_t maxPacketSize,
                                            DualStack dual_stack) {
  TWIST_CHECK_REACTOR_THREAD("listenUDP");
  absl::StatusOr<std::unique_ptr<UdpPort>> p = UdpPort::Listen(
      host(), port, protocol, interface, maxPacketSize, dual_stack == DualStack::kOn);
  if (!p.ok()) return p.status();
  udp_ports_.push_back(*std::move(p));
  UdpPort* udp = udp_ports_.back().get();
  Dispatching dispatching(this);  // startProtocol is a callback
  udp->start();
  return udp;
}

absl::StatusOr<Port*> Reactor::doListenUNIX(absl::string_view path, Factory* factory,
                                          int backlog, int mode, bool want_pid) {
  TWIST_CHECK_REACTOR_THREAD("listenUNIX");
  absl::StatusOr<Address> addr = Address::Unix(path);
  if (!addr.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot listen on unix:", path, ": ", addr.status().message()));
  }
  const std::string where = absl::StrCat("cannot listen on ", addr->ToString());
  auto fail = [&where](const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat(where, ": ", s.message()));
  };
  // A path is claimed first (lock, stale file); an abstract name has no
  // file, and the kernel frees it with its socket: nothing to claim.
  std::unique_ptr<UnixSocketFile> file;
  if (!addr->isAbstract()) {
    absl::StatusOr<std::unique_ptr<UnixSocketFile>> claimed =
        UnixSocketFile::Claim(std::string(path), want_pid);
    if (!claimed.ok()) return fail(claimed.status());
    file = *std::move(claimed);
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ErrnoToStatus(errno, where);
  if (::bind(fd, addr->sockaddr_ptr(), addr->length()) != 0) {
    absl::Status s = absl::ErrnoToStatus(errno, where);
    ::close(fd);
    return s;
  }
  absl::Status s;
  if (file != nullptr) {
    s = file->bound();
    // Before listen(): nobody connects under the umask's permissions.
    if (s.ok() && ::chmod(file->path().c_str(), static_cast<mode_t>(mode & 07777)) != 0) {
      s = absl::ErrnoToStatus(errno, absl::StrCat("chmod ", file->path()));
    }
  }
  if (s.ok() && ::listen(fd, backlog) != 0) s = absl::ErrnoToStatus(errno, "listen");
  if (!s.ok()) {
    ::close(fd);
    return fail(s);  // `file`, bound or not, removes what it made
  }
  // The port takes the socket and the file; if it cannot start, it closes
  // the one and the file removes what it made, as above.
  auto p = std::make_unique<Port>(host(), factory, fd, *addr, std::move(file));
  if (s = p->startListening(); !s.ok()) return fail(s);
  factory->doStart();
  ports_.push_back(std::move(p));
  return ports_.back().get();
}

Connector* Reactor::doConnectUNIX(absl::string_view path, ClientFactory* factory,
                                absl::Duration timeout) {
  TWIST_CHECK_REACTOR_THREAD("connectUNIX");
  auto owned = std::make_unique<Connector>(host(), std::string(path), factory, timeout);
  Connector* c = owned.get();
  connectors_.emplace(c, std::move(owned));
  c->start();
  return c;
}

absl::Status Reactor::installSignalHandlers(std::initializer_list<int> signals) {
  TWIST_CHECK_REACTOR_THREAD("installSignalHandlers");
  sigset_t set;
  sigemptyset(&set);
  for (int sig : signals) sigaddset(&set, sig);
  if (pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0) {
    return absl::InternalError("pthread_sigmask failed");
  }
  int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, "signalfd");
  if (signals_ != nullptr) poller_->remove(signals_->fd());
  signals_ = std::make_unique<SignalWatcher>(this, fd);
  return poller_->add(fd, kReadable, signals_.get());
}

absl::Status Reactor::adoptStreamConnection(int fd, Factory* factory) {
  TWIST_CHECK_REACTOR_THREAD("adoptStreamConnection");
  absl::StatusOr<Address> peer = Address::PeerOf(fd);
  if (!peer.ok()) {
    ::close(fd);
    return peer.status();
  }
  int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0 && (flags & O_NONBLOCK) == 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  return adoptStreamConnection(fd, factory, peer->unmapped());
}

absl::Status Reactor::adoptStreamConnection(int fd, Factory* factory, const Address& peer) {
  TWIST_CHECK_REACTOR_THREAD("adoptStreamConnection");
  if (stopping_) {
    // Its ports are closed and its connections closing: refuse as they do.
    ::close(fd);
    return absl::FailedPreconditionError("the reactor is shutting down");
  }
  Dispatching dispatching(this);  // buildProtocol and connectionMade are callbacks
  adoptConnection(fd, factory, peer);
  processPendingCloses();
  return absl::OkStatus();
}

ConnectionHandle Reactor::connectionHandle(StreamConnection* c, Transport* as) {
  TWIST_CHECK_REACTOR_THREAD("connectionHandle (Transport::handle)");
  std::shared_ptr<internal::ConnectionAnchor>& anchor = anchors_[c];
  if (anchor == nullptr) anchor = std::make_shared<internal::ConnectionAnchor>(door_);
  return ConnectionHandle(anchor, as);
}

void Reactor::adoptConnection(int fd, Factory* factory, const Address& peer) {
  std::unique_ptr<Protocol> protocol = factory->buildProtocol(peer);
  if (protocol == nullptr) {  // the factory refused this peer
    ::close(fd);
    return;
  }
  absl::StatusOr<StreamConnection*> c =
      startConnection(fd, std::move(protocol), factory, peer, /*connector=*/nullptr);
  if (!c.ok() && !warned_refused_) {
    warned_refused_ = true;
    fprintf(stderr, "twist: refusing connection from %s: %s\n",
            peer.ToString().c_str(), std::string(c.status().message()).c_str());
  }
}

absl::StatusOr<StreamConnection*> Reactor::startConnection(
    int fd, std::unique_ptr<Protocol> protocol, Factory* factory,
    const Address& peer, Connector* connector) {
  if (protocol->factory() == nullptr) protocol->setFactory(factory);
  std::unique_ptr<StreamConnection> conn;
  if (peer.isUnix()) {
    conn = std::make_unique<UnixConnection>(host(), fd, std::move(protocol), peer);
  } else {
    conn = std::make_unique<TcpConnection>(host(), fd, std::move(protocol), peer);
  }
  StreamConnection* c = conn.get();
  c->setConnector(connector);
  // Known to its connector before connectionMade() asks for it.
  if (connector != nullptr) connector->attachConnection(c);
  connections_.emplace(c, std::move(conn));
  if (absl::Status s = c->start(); !s.ok()) {
    // The poller cannot watch this descriptor (select's FD_SETSIZE): the
    // protocol never started, so it hears nothing; the socket is closed.
    connections_.erase(c);
    return s;
  }
  return c;
}

Connector* Reactor::doConnectTCP(absl::string_view host, int port,
                               ClientFactory* factory, absl::Duration timeout,
                               std::optional<Address> bind_address) {
  TWIST_CHECK_REACTOR_THREAD("connectTCP");
  auto owned = std::make_unique<Connector>(this->host(), std::string(host), port, factory,
                                           timeout, std::move(bind_address));
  Connector* c = owned.get();
  connectors_.emplace(c, std::move(owned));
  c->start();
  return c;
}

void Reactor::abandonConnectors() {
  // Attempts in progress and pending retries end as cancelled, and failures
  // waiting for their turn are delivered, so every factory hears. A
  // callback may add connectors (whose attempt, refused while stopping,
  // waits for its turn): hence the copy, and the rounds.
  while (true) {
    std::vector<Connector*> pending;
    for (auto& [c, owned] : connectors_) {
      if (c->abandonable()) pending.push_back(c);
    }
    for (Connector* c : pending) c->abandon();
    // Resolutions too: their callbacks may start connectors, and back.
    if (!abandonResolutions() && pending.empty()) break;
  }
}

uint64_t Reactor::resolve(absl::string_view host, int port, ResolveCallback done) {
  TWIST_CHECK_REACTOR_THREAD("resolve");
  const uint64_t id = ++next_resolution_;
  auto lookup = std::make_shared<Lookup>();
  resolutions_.emplace(id, Resolution{std::move(done), lookup});
  // While stopping, nothing new starts: abandonConnectors() delivers the
  // cancellation before run() returns.
  if (stopping_) return id;
  // The pool thread writes the answer, the reactor's thread reads it after
  // callInThread's hand-off (callFromThread's mutex orders the two).
  absl::StatusOr<uint64_t> call = callInThread(
      [resolver = resolver_, host = std::string(host), port, lookup] {
        // Cancelled while queued (a connector that timed out, say): nobody
        // wants the answer, so no look-up.
        if (lookup->cancelled.load(std::memory_order_relaxed)) return;
        lookup->answer = (*resolver)(host, port);
      },
      [this, id, lookup, host = std::string(host)](absl::Status ran) {
        if (!ran.ok()) {
          finishResolve(id, absl::Status(ran.code(), absl::StrCat("cannot resolve '", host,
                                                                  "': ", ran.message())));
          return;
        }
        finishResolve(id, std::move(lookup->answer));
      });
  if (call.ok()) {
    resolutions_.at(id).thread_call = *call;
  } else {
    absl::Status s = call.status();
    // Never inside the caller's call: on the next turn.
    callLater(absl::ZeroDuration(), [this, id, host = std::string(host), s] {
      finishResolve(id, absl::Status(s.code(), absl::StrCat("cannot resolve '", host,
                                                            "': ", s.message())));
    });
  }
  return id;
}

void Reactor::cancelResolve(uint64_t id) {
  TWIST_CHECK_REACTOR_THREAD("cancelResolve");
  auto it = resolutions_.find(id);
  if (it == resolutions_.end()) return;
  it->second.lookup->cancelled.store(true, std::memory_order_relaxed);
  cancelThreadCall(it->second.thread_call);  // stopping need not wait for it
  resolutions_.erase(it);
}

void Reactor::finishResolve(uint64_t id, absl::StatusOr<std::vector<Address>> result) {
  auto it = resolutions_.find(id);
  if (it == resolutions_.end()) return;  // cancelled, or already abandoned
  // An abandoned look-up still queued need not run either, nor be waited for.
  it->second.lookup->cancelled.store(true, std::memory_order_relaxed);
  cancelThreadCall(it->second.thread_call);
  ResolveCallback done = std::move(it->second.done);
  resolutions_.erase(it);
  done(std::move(result));
}

bool Reactor::abandonResolutions() {
  if (resolutions_.empty()) return false;
  std::vector<uint64_t> ids;
  for (auto& [id, done] : resolutions_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());  // in the order they were asked for
  for (uint64_t id : ids) {
    finishResolve(id, absl::CancelledError("name resolution cancelled: the reactor is stopping"));
  }
  return true;
}

void Reactor::connectorMaybeIdle(Connector* c) { maybe_idle_.push_back(c); }

void Reactor::reapIdleConnectors() {
  while (!maybe_idle_.empty()) {
    std::vector<Connector*> candidates;
    candidates.swap(maybe_idle_);
    for (Connector* c : candidates) {
      auto it = connectors_.find(c);
      if (it != connectors_.end() && c->idle()) connectors_.erase(it);
    }
  }
}

void Reactor::enqueueClose(StreamConnection* c) { pending_closes_.push_back(c); }

void Reactor::processPendingCloses() {
  while (!pending_closes_.empty()) {
    std::vector<StreamConnection*> closes;
    closes.swap(pending_closes_);
    for (StreamConnection* c : closes) c->closeQueued();
  }
}

void Reactor::retire(StreamConnection* c) {
  auto it = connections_.find(c);
  if (it == connections_.end()) return;
  if (!anchors_.empty()) {  // handles posting to it from now on find it gone
    auto a = anchors_.find(c);
    if (a != anchors_.end()) {
      a->second->alive = false;
      anchors_.erase(a);
    }
  }
  dead_.push_back(std::move(it->second));
  connections_.erase(it);
}

bool Reactor::shedOneConnection(int listen_fd) {
  if (reserve_fd_ < 0) {
    reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    return false;
  }
  ::close(reserve_fd_);
  int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0) ::close(fd);
  reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  return fd >= 0;
}

}  // namespace twist
