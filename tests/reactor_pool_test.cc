// ReactorPool: N reactors on N threads, connections spread round robin or
// by SO_REUSEPORT, one stop for all, ConnectionHandle across threads, and
// the wrong-thread assertion. Real loopback sockets; every wait bounded.

#include "framework/reactor_pool.h"

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/connection_handle.h"
#include "framework/defer.h"
#include "framework/per_reactor_factory.h"
#include "framework/protocol.h"
#include "framework/reactor.h"
#include "framework/tcp_port.h"
#include "gtest/gtest.h"
#include "protocols/policies.h"
#include "tests/echoed_client.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using ::twist::testing::BlockingClient;
using ::twist::testing::EchoedClients;
using ::twist::testing::kTimeout;
using ::twist::testing::LoopbackOf;

// Echo that records on which reactor each connection was made (a factory
// shared by every reactor: its counts are atomic).
class CountingEcho : public Protocol {
 public:
  explicit CountingEcho(std::vector<std::atomic<int>>* made, ReactorPool* pool)
      : made_(made), pool_(pool) {}
  void connectionMade() override {
    int i = pool_->currentIndex();
    if (i >= 0) (*made_)[i].fetch_add(1);
  }
  void dataReceived(absl::string_view data) override { transport()->write(data); }

 private:
  std::vector<std::atomic<int>>* made_;
  ReactorPool* pool_;
};

class CountingFactory : public Factory {
 public:
  CountingFactory(int reactors) : made(reactors) {}
  std::unique_ptr<Protocol> buildProtocol(const Address&) override {
    return std::make_unique<CountingEcho>(&made, pool);
  }
  std::vector<std::atomic<int>> made;
  ReactorPool* pool = nullptr;
};

// pool.run() on a thread of its own; Join() waits for it, bounded.
class PoolThread {
 public:
  explicit PoolThread(ReactorPool* pool, bool install_signals = false) {
    thread_ = std::thread([this, pool, install_signals] {
      if (install_signals) {
        // On this thread, which runs reactor 0 and starts the others: they
        // all block the signals; only reactor 0's signalfd takes them.
        installed_ = pool->installSignalHandlers().ok();
      }
      pool->run();
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
      cv_.notify_all();
    });
  }
  ~PoolThread() {
    if (thread_.joinable()) {
      if (!Join()) {
        fprintf(stderr, "the pool did not stop within %s\n",
                absl::FormatDuration(kTimeout).c_str());
        abort();  // a hang must fail, not time the whole binary out
      }
    }
  }
  // Whether run() returned within kTimeout.
  bool Join() {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::seconds(absl::ToInt64Seconds(kTimeout)),
                      [this] { return done_; })) {
      return false;
    }
    lock.unlock();
    thread_.join();
    return true;
  }
  pthread_t native() { return thread_.native_handle(); }
  bool installed() const { return installed_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::atomic<bool> installed_{false};
  std::thread thread_;
};

// Waits until every reactor of `pool` has run a call (so all are running).
bool AllRunning(ReactorPool& pool) {
  auto left = std::make_shared<std::atomic<int>>(pool.size());
  std::promise<void> all;
  std::future<void> done = all.get_future();
  auto p = std::make_shared<std::promise<void>>(std::move(all));
  for (int i = 0; i < pool.size(); ++i) {
    pool.reactor(i).callFromThread([left, p] {
      if (left->fetch_sub(1) == 1) p->set_value();
    });
  }
  return done.wait_for(std::chrono::seconds(absl::ToInt64Seconds(kTimeout))) ==
         std::future_status::ready;
}

std::unique_ptr<ReactorPool> MakePool(int n, absl::Duration grace = absl::Seconds(5)) {
  ReactorOptions options;
  options.shutdown_grace = grace;
  absl::StatusOr<std::unique_ptr<ReactorPool>> pool = ReactorPool::Create(n, options);
  if (!pool.ok()) {
    fprintf(stderr, "ReactorPool::Create: %s\n", pool.status().ToString().c_str());
    abort();
  }
  return *std::move(pool);
}

// Raises RLIMIT_NOFILE's soft limit to `want` (as far as the hard one
// allows); false if that is not enough.
bool RaiseOpenFiles(rlim_t want) {
  rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return false;
  if (lim.rlim_cur >= want) return true;
  lim.rlim_cur = std::min(want, lim.rlim_max);
  return setrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur >= want;
}

TEST(ReactorPoolTest, CreateRejectsZeroThreads) {
  EXPECT_FALSE(ReactorPool::Create(0).ok());
  EXPECT_EQ(ParseSpread("round_robin").value(), Spread::kRoundRobin);
  EXPECT_EQ(ParseSpread("reuseport").value(), Spread::kReusePort);
  EXPECT_FALSE(ParseSpread("random").ok());
}

// 1000 clients over 4 reactors: each sends its own bytes and gets exactly
// them back; the connections are spread as the mode says.
class SpreadTest : public ::testing::TestWithParam<Spread> {};

TEST_P(SpreadTest, ThousandClientsOverFourReactorsEveryByteChecked) {
  constexpr int kReactors = 4;
  constexpr int kClients = 1000;
  // Both ends of every connection are in this process, plus the pool's.
  if (!RaiseOpenFiles(2 * kClients + 100)) GTEST_SKIP() << "RLIMIT_NOFILE too low";
  std::unique_ptr<ReactorPool> pool = MakePool(kReactors);
  CountingFactory factory(kReactors);
  factory.pool = pool.get();
  absl::StatusOr<std::vector<Port*>> ports =
      pool->listenTCP(0, &factory, GetParam(), /*backlog=*/1024, "127.0.0.1");
  ASSERT_TRUE(ports.ok()) << ports.status();
  ASSERT_EQ(ports->size(), GetParam() == Spread::kRoundRobin ? 1u : size_t{kReactors});
  const Address to = LoopbackOf((*ports)[0]->getHost());
  for (Port* p : *ports) EXPECT_EQ(p->getHost().port(), to.port());
  PoolThread running(pool.get());

  std::vector<BlockingClient> clients;
  clients.reserve(kClients);
  for (int i = 0; i < kClients; ++i) {
    absl::StatusOr<BlockingClient> c = BlockingClient::Connect(to);
    ASSERT_TRUE(c.ok()) << "client " << i << ": " << c.status();
    clients.push_back(*std::move(c));
  }
  // Every client's bytes are its own: a byte delivered to the wrong
  // connection, or twice, or lost, shows.
  auto message = [](int i) {
    return absl::StrCat("client ", i, " says ", std::string(i % 97 + 1, 'a' + i % 26), "\n");
  };
  for (int i = 0; i < kClients; ++i) ASSERT_TRUE(clients[i].SendAll(message(i)).ok());
  for (int i = 0; i < kClients; ++i) {
    const std::string want = message(i);
    ASSERT_EQ(clients[i].ReadExpected(want), want) << "client " << i;
  }
  std::vector<int> counts;
  int total = 0;
  for (auto& n : factory.made) {
    counts.push_back(n.load());
    total += counts.back();
  }
  EXPECT_EQ(total, kClients);
  const std::string line = absl::StrCat("spread of ", kClients, " connections over ",
                                        kReactors, " reactors (", SpreadName(GetParam()),
                                        "): ", absl::StrJoin(counts, " "));
  printf("%s\n", line.c_str());
  RecordProperty("spread", line);
  for (int n : counts) {
    if (GetParam() == Spread::kRoundRobin) {
      // Exactly even: 1000 over 4 is 250 each (± 1 if it did not divide).
      EXPECT_LE(std::abs(n - kClients / kReactors), 1) << line;
    } else {
      // The kernel's hash: even on average only. Every reactor takes part.
      EXPECT_GT(n, 0) << line;
    }
  }
  pool->stop();  // from another thread: the test's
  EXPECT_TRUE(running.Join());
  // Each reactor closed its connections as it stopped.
  for (int i = 0; i < kClients; i += 37) {
    absl::StatusOr<std::string> rest = clients[i].ReadUntilClosed();
    EXPECT_TRUE(rest.ok()) << rest.status();
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, SpreadTest,
                         ::testing::Values(Spread::kRoundRobin, Spread::kReusePort),
                         [](const ::testing::TestParamInfo<Spread>& info) {
                           return std::string(SpreadName(info.param));
                         });

// SO_REUSEPORT would let a second pool (or process) join a port that is
// already served and take half its clients; the pool refuses, as a plain
// listen does, whichever spread the port in use was made with.
TEST(ReactorPoolTest, ReusePortRefusesAPortInUse) {
  for (Spread first : {Spread::kReusePort, Spread::kRoundRobin}) {
    SCOPED_TRACE(SpreadName(first));
    std::unique_ptr<ReactorPool> a = MakePool(2);
    std::unique_ptr<ReactorPool> b = MakePool(2);
    CountingFactory fa(2), fb(2);
    fa.pool = a.get();
    fb.pool = b.get();
    absl::StatusOr<std::vector<Port*>> served = a->listenTCP(0, &fa, first, 128, "127.0.0.1");
    ASSERT_TRUE(served.ok()) << served.status();
    const int port = (*served)[0]->getHost().port();
    absl::StatusOr<std::vector<Port*>> again =
        b->listenTCP(port, &fb, Spread::kReusePort, 128, "127.0.0.1");
    ASSERT_FALSE(again.ok()) << "joined a port in use";
    EXPECT_TRUE(absl::StrContains(again.status().message(), "cannot listen on 127.0.0.1:"))
        << again.status();
    // Once it is free again, the same call takes it.
    for (Port* p : *served) p->stopListening();
    absl::StatusOr<std::vector<Port*>> later =
        b->listenTCP(port, &fb, Spread::kReusePort, 128, "127.0.0.1");
    EXPECT_TRUE(later.ok()) << later.status();
  }
}

TEST(ReactorPoolTest, UnixRoundRobinAndNoReusePort) {
  testing::SocketDir dir;
  std::unique_ptr<ReactorPool> pool = MakePool(3);
  CountingFactory factory(3);
  factory.pool = pool.get();
  EXPECT_FALSE(pool->listenUNIX(dir.path("x.sock"), &factory, Spread::kReusePort).ok());
  absl::StatusOr<std::vector<Port*>> ports =
      pool->listenUNIX(dir.path("pool.sock"), &factory, Spread::kRoundRobin);
  ASSERT_TRUE(ports.ok()) << ports.status();
  const Address to = (*ports)[0]->getHost();
  PoolThread running(pool.get());
  absl::StatusOr<std::vector<BlockingClient>> clients =
      EchoedClients(to, 6, [](int i) { return absl::StrCat("u", i); });
  ASSERT_TRUE(clients.ok()) << clients.status();
  for (auto& n : factory.made) EXPECT_EQ(n.load(), 2);
  pool->stop();
  EXPECT_TRUE(running.Join());
}

TEST(ReactorPoolTest, StopBeforeRunReturnsAtOnce) {
  std::unique_ptr<ReactorPool> pool = MakePool(3);
  pool->stop();
  PoolThread running(pool.get());
  EXPECT_TRUE(running.Join());
}

// A callback on any reactor stops them all: through the pool, or by
// stopping its own reactor.
class StopFromReactorTest : public ::testing::TestWithParam<std::tuple<int, bool>> {};

TEST_P(StopFromReactorTest, StopsEveryReactorAndClosesConnections) {
  const auto [which, own_reactor] = GetParam();
  std::unique_ptr<ReactorPool> pool = MakePool(4);
  CountingFactory factory(4);
  factory.pool = pool.get();
  absl::StatusOr<std::vector<Port*>> ports = pool->listenTCP(0, &factory);
  ASSERT_TRUE(ports.ok()) << ports.status();
  const Address to = LoopbackOf((*ports)[0]->getHost());
  PoolThread running(pool.get());
  ASSERT_TRUE(AllRunning(*pool));
  // One connection per reactor, each answered (so each is there).
  absl::StatusOr<std::vector<BlockingClient>> clients =
      EchoedClients(to, 4, [](int) { return std::string("hi"); });
  ASSERT_TRUE(clients.ok()) << clients.status();
  ReactorPool* p = pool.get();
  Reactor* r = &pool->reactor(which);
  r->callFromThread([p, r, own = own_reactor] {
    if (own) {
      r->stop();  // its own reactor, from its own thread
    } else {
      p->stop();
    }
  });
  EXPECT_TRUE(running.Join());
  for (auto& c : *clients) {
    absl::StatusOr<std::string> rest = c.ReadUntilClosed();
    EXPECT_TRUE(rest.ok()) << rest.status();
  }
}

INSTANTIATE_TEST_SUITE_P(AnyReactor, StopFromReactorTest,
                         ::testing::Combine(::testing::Values(0, 1, 3), ::testing::Bool()));

TEST(ReactorPoolTest, SignalStopsEveryReactor) {
  std::unique_ptr<ReactorPool> pool = MakePool(3);
  CountingFactory factory(3);
  factory.pool = pool.get();
  absl::StatusOr<std::vector<Port*>> ports = pool->listenTCP(0, &factory);
  ASSERT_TRUE(ports.ok()) << ports.status();
  const Address to = LoopbackOf((*ports)[0]->getHost());
  PoolThread running(pool.get(), /*install_signals=*/true);
  ASSERT_TRUE(AllRunning(*pool));
  ASSERT_TRUE(running.installed());
  absl::StatusOr<std::vector<BlockingClient>> clients =
      EchoedClients(to, 3, [](int) { return std::string("x"); });
  ASSERT_TRUE(clients.ok()) << clients.status();
  // To the thread of reactor 0, which blocks it: its signalfd reads it (a
  // signal to the process could land on a thread of the test runner's).
  ASSERT_EQ(pthread_kill(running.native(), SIGTERM), 0);
  EXPECT_TRUE(running.Join());
  for (auto& c : *clients) EXPECT_TRUE(c.ReadUntilClosed().ok());
}

// A protocol that hands its connection's handle to the test, and says when
// it is lost.
struct HandleBox {
  std::mutex mu;
  std::condition_variable cv;
  ConnectionHandle handle;
  bool made = false;
  bool lost = false;
  template <class Pred>
  bool Wait(Pred pred) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(absl::ToInt64Seconds(kTimeout)), pred);
  }
  // The handle of the connection made last, once it is made (empty if
  // none was within kTimeout); clears `made` for the next.
  ConnectionHandle TakeHandle() {
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(absl::ToInt64Seconds(kTimeout)),
                     [this] { return made; })) {
      return ConnectionHandle();
    }
    made = false;
    return handle;
  }
};

class HandingOut : public Protocol {
 public:
  explicit HandingOut(HandleBox* box) : box_(box) {}
  void connectionMade() override {
    std::lock_guard<std::mutex> lock(box_->mu);
    box_->handle = transport()->handle();
    box_->made = true;
    box_->cv.notify_all();
  }
  void connectionLost(const absl::Status&) override {
    std::lock_guard<std::mutex> lock(box_->mu);
    box_->lost = true;
    box_->cv.notify_all();
  }

 private:
  HandleBox* box_;
};

// Counts how many times it was destroyed unrun or run.
struct CallProbe {
  std::atomic<int> ran{0};
  std::atomic<int> destroyed{0};
};
class ProbeCall {
 public:
  explicit ProbeCall(CallProbe* p, std::string data = "") : p_(p), data_(std::move(data)) {}
  ProbeCall(ProbeCall&& o) noexcept : p_(o.p_), data_(std::move(o.data_)) { o.p_ = nullptr; }
  ~ProbeCall() {
    if (p_ != nullptr) p_->destroyed.fetch_add(1);
  }
  void operator()(Transport& t) {
    p_->ran.fetch_add(1);
    if (!data_.empty()) t.write(data_);
  }

 private:
  CallProbe* p_;
  std::string data_;
};

TEST(ConnectionHandleTest, PostsRunOnTheConnectionsReactorUntilItIsGone) {
  std::unique_ptr<ReactorPool> pool = MakePool(2);
  HandleBox box;
  Factory factory([&box] { return std::make_unique<HandingOut>(&box); });
  absl::StatusOr<std::vector<Port*>> ports = pool->listenTCP(0, &factory);
  ASSERT_TRUE(ports.ok()) << ports.status();
  const Address to = LoopbackOf((*ports)[0]->getHost());
  auto running = std::make_unique<PoolThread>(pool.get());
  // Two connections: the second lands on reactor 1 (round robin).
  absl::StatusOr<BlockingClient> first = BlockingClient::Connect(to);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(box.TakeHandle());
  absl::StatusOr<BlockingClient> client = BlockingClient::Connect(to);
  ASSERT_TRUE(client.ok());
  ConnectionHandle handle = box.TakeHandle();
  ASSERT_TRUE(handle);

  // From this thread: the write happens on the connection's reactor.
  CallProbe probe;
  EXPECT_TRUE(handle.post(ProbeCall(&probe, "from another thread\n")));
  EXPECT_EQ(client->ReadExpected("from another thread\n"), "from another thread\n");
  EXPECT_EQ(probe.ran.load(), 1);

  // The connection goes; a post after connectionLost is dropped, not run.
  client->Reset();
  ASSERT_TRUE(box.Wait([&] { return box.lost; }));
  CallProbe late;
  EXPECT_TRUE(handle.post(ProbeCall(&late)));  // the reactor is there
  // Ordered after the post on the same reactor: once this has run, the
  // post has been dealt with.
  std::promise<void> after;
  std::future<void> after_done = after.get_future();
  pool->reactor(1).callFromThread([&after] { after.set_value(); });
  ASSERT_EQ(after_done.wait_for(std::chrono::seconds(absl::ToInt64Seconds(kTimeout))),
            std::future_status::ready);
  EXPECT_EQ(late.ran.load(), 0);
  EXPECT_EQ(late.destroyed.load(), 1);

  // After the pool is gone: dropped at once, on this thread.
  pool->stop();
  ASSERT_TRUE(running->Join());
  running.reset();
  pool.reset();
  CallProbe gone;
  EXPECT_FALSE(handle.post(ProbeCall(&gone)));
  EXPECT_EQ(gone.ran.load(), 0);
  EXPECT_EQ(gone.destroyed.load(), 1);
  // An empty handle drops too.
  EXPECT_FALSE(ConnectionHandle().post(ProbeCall(&gone)));
  EXPECT_EQ(gone.destroyed.load(), 2);
}

TEST(ConnectionHandleTest, PostsQueuedWhenTheReactorIsDestroyedAreDropped) {
  std::unique_ptr<ReactorPool> pool = MakePool(1);
  HandleBox box;
  Factory factory([&box] { return std::make_unique<HandingOut>(&box); });
  absl::StatusOr<std::vector<Port*>> ports = pool->listenTCP(0, &factory);
  ASSERT_TRUE(ports.ok());
  const Address to = LoopbackOf((*ports)[0]->getHost());
  auto running = std::make_unique<PoolThread>(pool.get());
  absl::StatusOr<BlockingClient> client = BlockingClient::Connect(to);
  ASSERT_TRUE(client.ok());
  ConnectionHandle handle = box.TakeHandle();
  ASSERT_TRUE(handle);
  pool->stop();
  ASSERT_TRUE(running->Join());
  running.reset();
  // The reactor no longer runs: the post waits in its queue, and goes
  // with the reactor, unrun.
  CallProbe queued;
  EXPECT_TRUE(handle.post(ProbeCall(&queued)));
  pool.reset();
  EXPECT_EQ(queued.ran.load(), 0);
  EXPECT_EQ(queued.destroyed.load(), 1);
}

// The limit holds across reactors: 4 reactors share one
// LimitTotalConnectionsFactory of 10; of 20 clients held open, 10 are
// served and 10 are closed at once.
class LimitAcrossThreadsTest : public ::testing::TestWithParam<Spread> {};

TEST_P(LimitAcrossThreadsTest, LimitHoldsAcrossReactors) {
  constexpr int kLimit = 10;
  std::unique_ptr<ReactorPool> pool = MakePool(4);
  CountingFactory echo(4);
  echo.pool = pool.get();
  LimitTotalConnectionsFactory limited(&echo, kLimit);
  absl::StatusOr<std::vector<Port*>> ports =
      pool->listenTCP(0, &limited, GetParam(), 1024, "127.0.0.1");
  ASSERT_TRUE(ports.ok()) << ports.status();
  const Address to = LoopbackOf((*ports)[0]->getHost());
  PoolThread running(pool.get());
  std::vector<BlockingClient> clients;
  int served = 0;
  int refused = 0;
  for (int i = 0; i < 2 * kLimit; ++i) {
    absl::StatusOr<BlockingClient> c = BlockingClient::Connect(to);
    ASSERT_TRUE(c.ok()) << c.status();
    // A refused connection is closed before it reads: the send may fail.
    (void)c->SendAll("?");
    absl::StatusOr<std::string> got = c->ReadExactly(1);
    if (got.ok()) {
      EXPECT_EQ(*got, "?");
      ++served;
    } else {
      ++refused;
    }
    clients.push_back(*std::move(c));
  }
  EXPECT_EQ(served, kLimit);
  EXPECT_EQ(refused, kLimit);
  EXPECT_EQ(limited.connectionCount(), kLimit);
  EXPECT_EQ(limited.refusedCount(), kLimit);
  int reactors_used = 0;
  for (auto& n : echo.made) reactors_used += n.load() > 0;
  EXPECT_GT(reactors_used, 1) << "the limit was not tested across threads";
  // Freed slots are taken again, whichever reactor frees and takes them.
  for (auto& c : clients) c.Reset();
  clients.clear();
  pool->stop();
  EXPECT_TRUE(running.Join());
  EXPECT_EQ(limited.connectionCount(), 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, LimitAcrossThreadsTest,
                         ::testing::Values(Spread::kRoundRobin, Spread::kReusePort),
                         [](const ::testing::TestParamInfo<Spread>& info) {
                           return std::string(SpreadName(info.param));
                         });

// Many connections at once against a limit, over 4 reactors: the count
// never goes over it (a check-then-increment would let two threads take
// the last slot).
TEST(LimitAcrossThreadsTest, ConcurrentConnectsNeverExceedTheLimit) {
  constexpr int kLimit = 8;
  constexpr int kClients = 64;
  std::unique_ptr<ReactorPool> pool = MakePool(4);
  std::atomic<int> open{0};
  std::atomic<int> most{0};
  class Watch : public Protocol {
   public:
    Watch(std::atomic<int>* open, std::atomic<int>* most) : open_(open), most_(most) {}
    void connectionMade() override {
      int n = open_->fetch_add(1) + 1;
      int m = most_->load();
      while (n > m && !most_->compare_exchange_weak(m, n)) {
      }
      transport()->write("k");
    }
    void connectionLost(const absl::Status&) override { open_->fetch_sub(1); }

   private:
    std::atomic<int>* open_;
    std::atomic<int>* most_;
  };
  Factory watch([&] { return std::make_unique<Watch>(&open, &most); });
  LimitTotalConnectionsFactory limited(&watch, kLimit);
  absl::StatusOr<std::vector<Port*>> ports =
      pool->listenTCP(0, &limited, Spread::kReusePort, 1024, "127.0.0.1");
  ASSERT_TRUE(ports.ok()) << ports.status();
  const Address to = LoopbackOf((*ports)[0]->getHost());
  PoolThread running(pool.get());
  std::vector<BlockingClient> clients;
  for (int i = 0; i < kClients; ++i) {
    absl::StatusOr<BlockingClient> c = BlockingClient::Connect(to);
    ASSERT_TRUE(c.ok()) << c.status();
    clients.push_back(*std::move(c));
  }
  int served = 0;
  for (auto& c : clients) {
    absl::StatusOr<std::string> got = c.ReadExactly(1);
    served += got.ok();
  }
  EXPECT_EQ(served, kLimit);
  EXPECT_LE(most.load(), kLimit);
  pool->stop();
  EXPECT_TRUE(running.Join());
}

// The wrong thread is caught in debug builds, naming the method.
TEST(ReactorThreadDeathTest, CallFromAnotherThreadAbortsNamingTheMethod) {
#ifdef NDEBUG
  GTEST_SKIP() << "the check is compiled out under NDEBUG";
#else
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_DEATH(
      {
        std::unique_ptr<ReactorPool> pool = MakePool(2);
        PoolThread running(pool.get());
        if (!AllRunning(*pool)) abort();
        EXPECT_FALSE(pool->reactor(1).isInReactorThread());
        pool->reactor(1).callLater(absl::Seconds(1), [] {});
      },
      "Reactor::callLater called from a thread that is not the reactor's");
  EXPECT_DEATH(
      {
        std::unique_ptr<ReactorPool> pool = MakePool(2);
        PoolThread running(pool.get());
        if (!AllRunning(*pool)) abort();
        pool->reactor(0).stop();
      },
      "Reactor::stop called from a thread");
#endif
}

// A per-reactor factory that checks where it is started and stopped: on
// its reactor's thread, which it touches there (seconds(): ASan sees a
// reactor already destroyed).
class ThreadCheckingFactory : public Factory {
 public:
  explicit ThreadCheckingFactory(Reactor* reactor) : reactor_(reactor) {}
  void startFactory() override {
    if (!reactor_->isInReactorThread()) wrong_thread = true;
    reactor_->seconds();
    ++starts;
  }
  void stopFactory() override {
    if (!reactor_->isInReactorThread()) {
      wrong_thread = true;
    } else {
      stopped_in_run = reactor_->running();
      reactor_->seconds();
    }
    stopped_on = std::this_thread::get_id();
    if (on_stop) on_stop();
    ++stops;
  }
  Reactor* reactor_;
  absl::AnyInvocable<void()> on_stop;  // set before the pool runs
  std::atomic<int> starts{0};
  std::atomic<int> stops{0};
  std::atomic<bool> wrong_thread{false};
  std::atomic<bool> stopped_in_run{false};
  std::atomic<std::thread::id> stopped_on{};
};

// The thread id each reactor of `pool` runs on (they all run).
std::vector<std::thread::id> ReactorThreads(ReactorPool& pool) {
  std::vector<std::promise<std::thread::id>> ids(pool.size());
  std::vector<std::thread::id> out;
  for (int i = 0; i < pool.size(); ++i) {
    pool.reactor(i).callFromThread([&ids, i] { ids[i].set_value(std::this_thread::get_id()); });
  }
  for (auto& id : ids) {
    std::future<std::thread::id> f = id.get_future();
    if (f.wait_for(std::chrono::seconds(absl::ToInt64Seconds(kTimeout))) !=
        std::future_status::ready) {
      return {};
    }
    out.push_back(f.get());
  }
  return out;
}

// The round-robin port is on reactor 0, so the pool's last port stops
// there. Reactors 1 and 2 are held in their shutdown ("before shutdown"
// Deferreds) until factory 2 has stopped: if the factories were stopped on
// reactor 0's thread, 1 and 2 would be stopped while their reactors run on
// other threads.
TEST(PerReactorFactoryTest, StopsEachFactoryOnItsOwnRunningReactor) {
  std::unique_ptr<ReactorPool> pool = MakePool(3, kTimeout);
  std::vector<std::unique_ptr<ThreadCheckingFactory>> each;
  for (int i = 0; i < 3; ++i) {
    each.push_back(std::make_unique<ThreadCheckingFactory>(&pool->reactor(i)));
  }
  PerReactorFactory factory(pool.get(), {each[0].get(), each[1].get(), each[2].get()});
  absl::StatusOr<std::vector<Port*>> ports =
      pool->listenTCP(0, &factory, Spread::kRoundRobin, 16, "127.0.0.1");
  ASSERT_TRUE(ports.ok()) << ports.status();
  for (auto& f : each) EXPECT_EQ(f->starts.load(), 1);  // before run(): here
  // Made here, before the threads start; then touched on its reactor only.
  std::vector<Deferred<Unit>> held(3);
  for (int i = 1; i < 3; ++i) {
    pool->reactor(i).addSystemEventTrigger(EventPhase::kBefore, "shutdown",
                                           [&held, i] { return held[i]; });
  }
  ReactorPool* p = pool.get();
  each[2]->on_stop = [p, &held] {
    for (int i = 1; i < 3; ++i) {
      p->reactor(i).callFromThread([&held, i] { held[i].callback(Unit{}).IgnoreError(); });
    }
  };
  PoolThread running(pool.get());
  std::vector<std::thread::id> threads = ReactorThreads(*pool);
  ASSERT_EQ(threads.size(), 3u);
  pool->stop();
  ASSERT_TRUE(running.Join());
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(each[i]->stops.load(), 1);
    EXPECT_FALSE(each[i]->wrong_thread.load());
    EXPECT_TRUE(each[i]->stopped_in_run.load()) << "not stopped while its reactor ran";
    EXPECT_EQ(each[i]->stopped_on.load(), threads[i]);
  }
}

// Without run(), every factory is started and stopped on the thread that
// holds the pool, while every reactor exists: the pool's ports stop first
// when it is destroyed.
TEST(PerReactorFactoryTest, StartsAndStopsHereWhenThePoolNeverRuns) {
  for (Spread spread : {Spread::kRoundRobin, Spread::kReusePort}) {
    SCOPED_TRACE(SpreadName(spread));
    std::unique_ptr<ReactorPool> pool = MakePool(3);
    std::vector<std::unique_ptr<ThreadCheckingFactory>> each;
    for (int i = 0; i < 3; ++i) {
      each.push_back(std::make_unique<ThreadCheckingFactory>(&pool->reactor(i)));
    }
    PerReactorFactory factory(pool.get(), {each[0].get(), each[1].get(), each[2].get()});
    ASSERT_TRUE(pool->listenTCP(0, &factory, spread, 16, "127.0.0.1").ok());
    pool.reset();
    for (auto& f : each) {
      EXPECT_EQ(f->starts.load(), 1);
      EXPECT_EQ(f->stops.load(), 1);
      EXPECT_FALSE(f->wrong_thread.load());
      EXPECT_EQ(f->stopped_on.load(), std::this_thread::get_id());
    }
  }
}

// Reactors that finish their run() before the last port stops, or between
// the post and their last turn: each factory is still stopped exactly once,
// on a thread that may use its reactor. Many short runs, for the races.
TEST(PerReactorFactoryTest, EveryFactoryStopsOnceWhicheverReactorFinishesFirst) {
  for (int run = 0; run < 20; ++run) {
    SCOPED_TRACE(run);
    std::unique_ptr<ReactorPool> pool = MakePool(3);
    std::vector<std::unique_ptr<ThreadCheckingFactory>> each;
    for (int i = 0; i < 3; ++i) {
      each.push_back(std::make_unique<ThreadCheckingFactory>(&pool->reactor(i)));
    }
    PerReactorFactory factory(pool.get(), {each[0].get(), each[1].get(), each[2].get()});
    const Spread spread = run % 2 == 0 ? Spread::kReusePort : Spread::kRoundRobin;
    ASSERT_TRUE(pool->listenTCP(0, &factory, spread, 16, "127.0.0.1").ok());
    if (run % 4 < 2) pool->stop();  // before run(): some reactors may not have started
    PoolThread running(pool.get());
    if (run % 4 >= 2) pool->stop();
    ASSERT_TRUE(running.Join());
    for (auto& f : each) {
      EXPECT_EQ(f->stops.load(), 1);
      EXPECT_FALSE(f->wrong_thread.load());
    }
  }
}

TEST(ReactorThreadTest, IsInReactorThreadOnlyOnItsOwn) {
  std::unique_ptr<ReactorPool> pool = MakePool(2);
  EXPECT_TRUE(pool->reactor(0).isInReactorThread());  // not running: whoever holds it
  PoolThread running(pool.get());
  ASSERT_TRUE(AllRunning(*pool));
  EXPECT_FALSE(pool->reactor(0).isInReactorThread());
  EXPECT_FALSE(pool->reactor(1).isInReactorThread());
  std::promise<std::pair<bool, bool>> seen;
  std::future<std::pair<bool, bool>> got = seen.get_future();
  ReactorPool* p = pool.get();
  pool->reactor(1).callFromThread([p, &seen] {
    seen.set_value({p->reactor(1).isInReactorThread(), p->reactor(0).isInReactorThread()});
  });
  ASSERT_EQ(got.wait_for(std::chrono::seconds(absl::ToInt64Seconds(kTimeout))),
            std::future_status::ready);
  auto [own, other] = got.get();
  EXPECT_TRUE(own);
  EXPECT_FALSE(other);
  pool->stop();
  EXPECT_TRUE(running.Join());
}

}  // namespace
}  // namespace twist
