#include "framework/reactor_pool.h"

#include <unistd.h>

#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "framework/address.h"
#include "framework/protocol.h"
#include "framework/system_event.h"
#include "framework/tcp_port.h"

namespace twist {
namespace {

// SO_REUSEPORT lets any socket of this user join a port, so a pool that
// binds its listeners with it would silently share a port another process
// already serves. One bind without it first fails while anyone listens
// there, as a plain listenTCP does. (A process that starts listening
// between this probe and the pool's binds still gets in.)
absl::Status PortIsFree(int port, absl::string_view interface, DualStack dual_stack) {
  absl::StatusOr<Address> addr = Address::Resolve(interface, port);
  if (!addr.ok()) return addr.status();
  absl::StatusOr<int> fd = BoundTcpSocket(*addr, dual_stack, /*reuse_port=*/false);
  if (!fd.ok()) return fd.status();
  ::close(*fd);
  return absl::OkStatus();
}

// A socket on its way to another reactor: closed if the call that carries
// it is dropped (its reactor stopped, or was destroyed, first).
class OwnedFd {
 public:
  explicit OwnedFd(int fd) : fd_(fd) {}
  OwnedFd(OwnedFd&& o) noexcept : fd_(o.release()) {}
  OwnedFd& operator=(OwnedFd&&) = delete;
  ~OwnedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

// The pool and reactor index the current thread runs, for currentIndex().
struct CurrentReactor {
  const ReactorPool* pool = nullptr;
  int index = -1;
};
thread_local CurrentReactor current;

}  // namespace

absl::StatusOr<Spread> ParseSpread(absl::string_view name) {
  if (name == "round_robin") return Spread::kRoundRobin;
  if (name == "reuseport") return Spread::kReusePort;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown spread '", name, "': round_robin or reuseport"));
}

const char* SpreadName(Spread spread) {
  return spread == Spread::kRoundRobin ? "round_robin" : "reuseport";
}

// One round-robin listener's hand-off: runs on reactor 0's thread (the
// port's accept loop), so `next_` needs no lock.
class ReactorPool::RoundRobin {
 public:
  RoundRobin(ReactorPool* pool, Factory* factory) : pool_(pool), factory_(factory) {}

  void handOff(int fd, const Address& peer) {
    const int k = next_;
    next_ = (next_ + 1) % pool_->size();
    Reactor* target = &pool_->reactor(k);
    if (k == 0) {  // the listener's own reactor: no hop
      target->adoptStreamConnection(fd, factory_.raw(), peer).IgnoreError();
      return;
    }
    // The factory may be gone by the time the call runs (a program that
    // destroys it first): FactoryRef says so instead of dangling.
    target->callFromThread([target, fd = OwnedFd(fd), factory = factory_, peer]() mutable {
      Factory* f = factory.get();
      if (f == nullptr) return;  // `fd` closes with the call
      target->adoptStreamConnection(fd.release(), f, peer).IgnoreError();
    });
  }

 private:
  ReactorPool* pool_;
  FactoryRef<Factory> factory_;
  int next_ = 0;
};

absl::StatusOr<std::unique_ptr<ReactorPool>> ReactorPool::Create(int threads,
                                                                 ReactorOptions options) {
  if (threads < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("a reactor pool needs at least 1 thread, not ", threads));
  }
  std::vector<std::unique_ptr<Reactor>> reactors;
  for (int i = 0; i < threads; ++i) {
    absl::StatusOr<std::unique_ptr<Reactor>> r = Reactor::Create(options);
    if (!r.ok()) return r.status();
    reactors.push_back(*std::move(r));
  }
  return std::unique_ptr<ReactorPool>(new ReactorPool(std::move(reactors)));
}

ReactorPool::ReactorPool(std::vector<std::unique_ptr<Reactor>> reactors)
    : reactors_(std::move(reactors)) {}

ReactorPool::~ReactorPool() {
  // Our ports stop while every reactor is still there: the last one to stop
  // stops its factory, and a PerReactorFactory's per-reactor factories may
  // use their reactors then (ports stopped in ~Reactor would stop them after
  // some reactors were gone).
  for (Port* p : ports_) p->stopListening();
  // The last first: reactor 0's round-robin ports hand off to the others,
  // but only from their accept loop, which no longer runs.
  while (!reactors_.empty()) reactors_.pop_back();
}

void ReactorPool::spreadRoundRobin(Port* port, Factory* factory) {
  if (size() == 1) return;  // nothing to spread: the port's own reactor serves
  round_robins_.push_back(std::make_unique<RoundRobin>(this, factory));
  RoundRobin* rr = round_robins_.back().get();
  port->setHandOff([rr](int fd, const Address& peer) { rr->handOff(fd, peer); });
}

absl::StatusOr<std::vector<Port*>> ReactorPool::listenTCP(int port, Factory* factory,
                                                          Spread spread, int backlog,
                                                          absl::string_view interface,
                                                          DualStack dual_stack) {
  if (spread == Spread::kRoundRobin) {
    absl::StatusOr<Port*> p =
        reactors_[0]->listenTCP(port, factory, backlog, interface, dual_stack);
    if (!p.ok()) return p.status();
    spreadRoundRobin(*p, factory);
    ports_.push_back(*p);
    return std::vector<Port*>{*p};
  }
  if (port != 0) {
    if (absl::Status s = PortIsFree(port, interface, dual_stack); !s.ok()) return s;
  }
  std::vector<Port*> ports;
  for (auto& r : reactors_) {
    absl::StatusOr<Port*> p =
        r->listenTCPReusePort(port, factory, backlog, interface, dual_stack);
    if (!p.ok()) {
      for (Port* done : ports) done->stopListening();
      return p.status();
    }
    // Port 0: the first socket picked a free port; the others share it.
    if (port == 0) port = (*p)->getHost().port();
    ports.push_back(*p);
  }
  ports_.insert(ports_.end(), ports.begin(), ports.end());
  return ports;
}

absl::StatusOr<std::vector<Port*>> ReactorPool::listenUNIX(absl::string_view path,
                                                           Factory* factory, Spread spread,
                                                           int backlog, int mode,
                                                           bool want_pid) {
  if (spread != Spread::kRoundRobin) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot listen on unix:", path,
                     " with SO_REUSEPORT: a path is one socket's; use round_robin"));
  }
  absl::StatusOr<Port*> p = reactors_[0]->listenUNIX(path, factory, backlog, mode, want_pid);
  if (!p.ok()) return p.status();
  spreadRoundRobin(*p, factory);
  ports_.push_back(*p);
  return std::vector<Port*>{*p};
}

absl::Status ReactorPool::installSignalHandlers(std::initializer_list<int> signals) {
  // Reactor 0 stops on the signal; its "before shutdown" trigger (run())
  // stops the others.
  return reactors_[0]->installSignalHandlers(signals);
}

int ReactorPool::currentIndex() const {
  return current.pool == this ? current.index : -1;
}

void ReactorPool::stop() {
  if (stop_requested_.exchange(true, std::memory_order_acq_rel)) return;
  // Through callFromThread even for the calling reactor: stop() may come
  // from any thread, and Reactor::stop() belongs to the reactor's own. A
  // reactor that is not running yet runs its call first thing in run().
  for (auto& r : reactors_) {
    Reactor* reactor = r.get();
    reactor->callFromThread([reactor] { reactor->stop(); });
  }
}

void ReactorPool::callOnReactor(int i, absl::AnyInvocable<void()> fn) const {
  if (currentIndex() == i) {
    fn();
    return;
  }
  bool queued = false;
  bool first = false;
  {
    std::lock_guard<std::mutex> lock(late_mu_);
    if (pool_running_ && !finished_[i]) {
      first = late_[i].empty();
      late_[i].push_back(std::move(fn));
      queued = true;
    }
  }
  if (!queued) {
    // No run() of reactor i is going, nor will one start: the pool is not
    // running (this is the thread that holds it), or reactor i has finished
    // (finishRun's lock orders its last touch before this one).
    fn();
    return;
  }
  // One drain per batch, so that the calls run in the order they were
  // queued whichever thread's post arrives first. A drain the reactor drops
  // (it stopped first) leaves them to finishRun, on the same thread.
  if (first) reactors_[i]->callFromThread([this, i] { drainLate(i); });
}

void ReactorPool::drainLate(int i) const {
  for (;;) {
    std::vector<absl::AnyInvocable<void()>> calls;
    {
      std::lock_guard<std::mutex> lock(late_mu_);
      if (late_[i].empty()) return;
      calls.swap(late_[i]);
    }
    for (auto& call : calls) call();  // a call may queue more: taken next
  }
}

void ReactorPool::finishRun(int i) {
  for (;;) {
    std::vector<absl::AnyInvocable<void()>> calls;
    {
      std::lock_guard<std::mutex> lock(late_mu_);
      if (late_[i].empty()) {
        finished_[i] = true;  // later calls run on their caller's thread
        return;
      }
      calls.swap(late_[i]);
    }
    // Posted after the reactor's last turn (or dropped with it): here,
    // still on its thread.
    for (auto& call : calls) call();
  }
}

void ReactorPool::run() {
  // Any reactor that stops, however (a callback's stop(), a signal),
  // stops the pool: as its shutdown begins, not after its grace.
  for (auto& r : reactors_) {
    r->addSystemEventTrigger(EventPhase::kBefore, "shutdown", [this] { stop(); });
  }
  {
    std::lock_guard<std::mutex> lock(late_mu_);
    pool_running_ = true;
    finished_.assign(reactors_.size(), false);
    late_.clear();
    late_.resize(reactors_.size());
  }
  // Reactor i on this thread, known to currentIndex() until everything
  // callOnReactor asked of it has run.
  auto run_as = [this](int i) {
    CurrentReactor saved = current;
    current = {this, i};
    reactors_[i]->run();
    finishRun(i);
    current = saved;
  };
  std::vector<std::thread> threads;
  threads.reserve(reactors_.size() - 1);
  for (size_t i = 1; i < reactors_.size(); ++i) {
    threads.emplace_back([run_as, i] { run_as(static_cast<int>(i)); });
  }
  run_as(0);
  for (std::thread& t : threads) t.join();
  {
    std::lock_guard<std::mutex> lock(late_mu_);
    pool_running_ = false;
  }
  stop_requested_.store(false, std::memory_order_release);
}

}  // namespace twist
