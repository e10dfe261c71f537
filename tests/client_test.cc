// The client side through the real reactor and loopback sockets, on every
// poller: connectTCP, ClientFactory's callbacks, the reasons a connect
// fails, cancelling, how every attempt ends whatever the timing, name
// resolution on the reactor's bounded thread pool (with a fake resolver:
// no DNS), and ReconnectingClientFactory's back-off on a fake clock.

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "framework/client_factory.h"
#include "framework/clock.h"
#include "framework/errors.h"
#include "framework/protocol.h"
#include "framework/reactor.h"
#include "framework/tcp_connector.h"
#include "framework/tcp_port.h"
#include "framework/thread_pool.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "protocols/echo.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using ::testing::ElementsAre;
using testing::RunUntil;

// Everything a client factory and its protocols went through, in order.
struct Log {
  std::vector<std::string> events;
  std::string received;
  absl::Status failed = absl::UnknownError("no failure");
  absl::Status lost = absl::UnknownError("not lost");
  int built = 0;
  int starts = 0;
  int stops = 0;
  Connector* connector = nullptr;
};

// Sends `hello` on connect and closes once it is echoed.
class Hello : public Protocol {
 public:
  explicit Hello(Log* log) : log_(log) {}
  void connectionMade() override {
    log_->events.push_back("made");
    transport()->write("hello");
  }
  void dataReceived(absl::string_view data) override {
    log_->received.append(data.data(), data.size());
    if (log_->received.size() >= 5) {
      log_->events.push_back("echoed");
      transport()->loseConnection();
    }
  }
  void connectionLost(const absl::Status&) override {
    log_->events.push_back("protocol lost");
  }

 private:
  Log* log_;
};

template <typename Base>
class Logging : public Base {
 public:
  explicit Logging(Log* log) : log_(log) {}
  std::unique_ptr<Protocol> buildProtocol(const Address& addr) override {
    ++log_->built;
    Base::buildProtocol(addr);  // lets ReconnectingClientFactory resetDelay()
    return std::make_unique<Hello>(log_);
  }
  void startFactory() override { ++log_->starts; }
  void stopFactory() override { ++log_->stops; }
  void startedConnecting(Connector* c) override {
    log_->connector = c;
    log_->events.push_back("started");
    Base::startedConnecting(c);
  }
  void clientConnectionFailed(Connector* c, const absl::Status& reason) override {
    log_->events.push_back("failed");
    log_->failed = reason;
    Base::clientConnectionFailed(c, reason);
  }
  void clientConnectionLost(Connector* c, const absl::Status& reason) override {
    log_->events.push_back("lost");
    log_->lost = reason;
    Base::clientConnectionLost(c, reason);
  }

 private:
  Log* log_;
};

using LoggingFactory = Logging<ClientFactory>;
using LoggingReconnecting = Logging<ReconnectingClientFactory>;

// A port where a connect is refused, for as long as this object lives: a
// socket bound to it without listen() answers a SYN with a reset, and
// holding the port keeps any other socket from listening there.
class RefusedPort {
 public:
  explicit RefusedPort(const char* host = "127.0.0.1") {
    Address any = *Address::Parse(host, 0);
    fd_ = ::socket(any.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (any.isIPv6()) setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (fd_ < 0 || ::bind(fd_, any.sockaddr_ptr(), any.length()) != 0) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = -1;
      return;
    }
    address_ = *Address::LocalOf(fd_);
  }
  ~RefusedPort() {
    if (fd_ >= 0) ::close(fd_);
  }
  RefusedPort(const RefusedPort&) = delete;
  RefusedPort& operator=(const RefusedPort&) = delete;
  bool ok() const { return fd_ >= 0; }
  int port() const { return address_.port(); }
  const Address& address() const { return address_; }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  Address address_;
};

// A listener that never completes a handshake: its accept queue (backlog
// 0 holds one) is filled by a connection nobody accepts, and Linux drops
// the SYNs of a listener whose queue is full (before any SYN cookie).
class Blackhole {
 public:
  Blackhole() {
    Address any = *Address::Parse("127.0.0.1", 0);
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::bind(listener_, any.sockaddr_ptr(), any.length()) != 0 ||
        ::listen(listener_, 0) != 0) {
      ADD_FAILURE() << "cannot listen: " << strerror(errno);
      return;
    }
    address_ = *Address::LocalOf(listener_);
    queued_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(queued_, address_.sockaddr_ptr(), address_.length()) != 0) {
      ADD_FAILURE() << "cannot fill the accept queue: " << strerror(errno);
    }
  }
  ~Blackhole() {
    ::close(queued_);
    ::close(listener_);
  }
  int port() const { return address_.port(); }

 private:
  int listener_ = -1, queued_ = -1;
  Address address_;
};

// A resolver for tests: answers from a table, never from DNS, and can hold
// every look-up at a gate until the test opens it. Thread-safe; its state
// is shared, so a look-up still running when a test ends touches nothing
// of the test's.
class FakeResolver {
 public:
  FakeResolver() : s_(std::make_shared<State>()) {}

  void Answer(const std::string& host, absl::StatusOr<std::vector<Address>> answer) {
    std::lock_guard<std::mutex> lock(s_->mu);
    s_->answers.insert_or_assign(host, std::move(answer));
  }
  void Close() {
    std::lock_guard<std::mutex> lock(s_->mu);
    s_->open = false;
  }
  void Open() {
    {
      std::lock_guard<std::mutex> lock(s_->mu);
      s_->open = true;
    }
    s_->cv.notify_all();
  }
  // Waits (at most 20 s) until `n` look-ups are held at the closed gate.
  bool WaitForWaiting(int n) {
    std::unique_lock<std::mutex> lock(s_->mu);
    return s_->cv.wait_for(lock, std::chrono::seconds(20),
                           [&] { return s_->in_flight == n; });
  }
  int calls() const {
    std::lock_guard<std::mutex> lock(s_->mu);
    return s_->calls;
  }
  int maxInFlight() const {
    std::lock_guard<std::mutex> lock(s_->mu);
    return s_->max_in_flight;
  }
  NameResolver resolver() const {
    return [s = s_](const std::string& host,
                    int port) -> absl::StatusOr<std::vector<Address>> {
      std::unique_lock<std::mutex> lock(s->mu);
      ++s->calls;
      s->max_in_flight = std::max(s->max_in_flight, ++s->in_flight);
      s->cv.notify_all();
      // Bounded: a test that forgets to open the gate fails, not hangs.
      s->cv.wait_for(lock, std::chrono::seconds(30), [&] { return s->open; });
      --s->in_flight;
      s->cv.notify_all();
      auto it = s->answers.find(host);
      if (it == s->answers.end()) {
        return absl::NotFoundError(absl::StrCat("cannot resolve '", host, "': unknown"));
      }
      return it->second;
    };
  }

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::map<std::string, absl::StatusOr<std::vector<Address>>> answers;
    bool open = true;
    int calls = 0;
    int in_flight = 0;
    int max_in_flight = 0;
  };
  std::shared_ptr<State> s_;
};

class ClientTest : public testing::PollerTest {
 protected:
  int ListenEcho() { return Listen(echo_.get()).port(); }
  // A reactor whose names come from `resolver`, never from DNS.
  std::unique_ptr<Reactor> ResolvingReactor(const FakeResolver& resolver,
                                            Clock* clock = nullptr,
                                            int threads = 4) {
    ReactorOptions options;
    options.poller = GetParam();
    options.clock = clock;
    options.resolver = resolver.resolver();
    options.thread_pool_size = threads;
    absl::StatusOr<std::unique_ptr<Reactor>> r = Reactor::Create(options);
    if (!r.ok()) {
      ADD_FAILURE() << r.status();
      abort();
    }
    return *std::move(r);
  }
  // An echo port of `reactor` on 127.0.0.1.
  int ListenEchoOn(Reactor& reactor) {
    absl::StatusOr<Port*> port = reactor.listenTCP(0, echo_.get(), 1024, "127.0.0.1");
    EXPECT_TRUE(port.ok()) << port.status();
    return port.ok() ? (*port)->getHost().port() : 0;
  }

  std::unique_ptr<Factory> echo_ = Factory::forProtocol<Echo>();
};

Address Loopback(const char* host, int port) { return *Address::Parse(host, port); }

bool HasIPv6Loopback() { return RefusedPort("::1").ok(); }

TEST_P(ClientTest, ConnectsTalksAndReportsTheLossAfterTheProtocol) {
  Log log;
  LoggingFactory factory(&log);
  auto reactor = NewReactor();
  const int port = ListenEcho();
  Connector* c = reactor->connectTCP("127.0.0.1", port, &factory);
  EXPECT_EQ(c->state(), Connector::State::kConnecting);
  EXPECT_EQ(c->getDestination(), absl::StrCat("127.0.0.1:", port));
  ASSERT_TRUE(RunUntil(*reactor, [&] { return !log.events.empty() && log.events.back() == "lost"; }));
  EXPECT_THAT(log.events, ElementsAre("started", "made", "echoed", "protocol lost", "lost"));
  EXPECT_EQ(log.received, "hello");
  EXPECT_TRUE(IsConnectionDone(log.lost)) << log.lost;
  EXPECT_EQ(log.built, 1);
  EXPECT_EQ(log.starts, 1);
  EXPECT_EQ(log.stops, 1);
}

TEST_P(ClientTest, TransportKnowsBothEndsWhileConnected) {
  Log log;
  LoggingFactory factory(&log);
  auto reactor = NewReactor();
  const int port = ListenEcho();
  Connector* c = reactor->connectTCP("127.0.0.1", port, &factory);
  EXPECT_EQ(c->transport(), nullptr);
  ASSERT_TRUE(RunUntil(*reactor, [&] { return c->state() == Connector::State::kConnected; }));
  ASSERT_NE(c->transport(), nullptr);
  EXPECT_EQ(c->transport()->getPeer().port(), port);
  EXPECT_EQ(c->transport()->getHost().host(), "127.0.0.1");
  ASSERT_TRUE(RunUntil(*reactor, [&] { return log.events.back() == "lost"; }));
}

// What a protocol sees of its connector from inside connectionMade().
class AsksItsConnector : public Protocol {
 public:
  AsksItsConnector(Log* log, bool disconnect) : log_(log), disconnect_(disconnect) {}
  void connectionMade() override {
    log_->events.push_back(log_->connector->transport() == transport() ? "made, mine"
                                                                         : "made, not mine");
    if (disconnect_) log_->connector->disconnect();
  }
  void connectionLost(const absl::Status& reason) override {
    log_->events.push_back("protocol lost");
    log_->lost = reason;
  }

 private:
  Log* log_;
  bool disconnect_;
};

TEST_P(ClientTest, InsideConnectionMadeTheConnectorHasTheTransportAndCanDisconnect) {
  for (bool disconnect : {false, true}) {
    SCOPED_TRACE(disconnect ? "disconnect" : "transport");
    Log log;
    ClientFactory factory([&] { return std::make_unique<AsksItsConnector>(&log, disconnect); });
    auto reactor = NewReactor();
    const int port = ListenEcho();
    log.connector = reactor->connectTCP("127.0.0.1", port, &factory);
    ASSERT_TRUE(RunUntil(*reactor, [&] { return !log.events.empty(); }));
    EXPECT_EQ(log.events[0], "made, mine");
    if (disconnect) {
      // Closed by disconnect() itself: cleanly, on the next turn.
      ASSERT_TRUE(RunUntil(*reactor, [&] { return log.events.size() == 2; }));
      EXPECT_THAT(log.events, ElementsAre("made, mine", "protocol lost"));
      EXPECT_TRUE(IsConnectionDone(log.lost)) << log.lost;
    } else {
      Spin(*reactor);
      EXPECT_THAT(log.events, ElementsAre("made, mine"));
      log.connector->disconnect();
      ASSERT_TRUE(RunUntil(*reactor, [&] { return log.events.size() == 2; }));
    }
  }
}

TEST_P(ClientTest, RefusedIsAConnectionRefusedFailure) {
  Log log;
  LoggingFactory factory(&log);
  auto reactor = NewReactor();
  RefusedPort refused;
  ASSERT_TRUE(refused.ok());
  const int port = refused.port();
  reactor->connectTCP("127.0.0.1", port, &factory);
  ASSERT_TRUE(RunUntil(*reactor, [&] { return log.events.size() == 2; }));
  EXPECT_THAT(log.events, ElementsAre("started", "failed"));
  EXPECT_TRUE(IsConnectionRefused(log.failed)) << log.failed;
  EXPECT_FALSE(IsNoRoute(log.failed));
  // Printed, it reads like any other status: no internal payload.
  EXPECT_EQ(log.failed.ToString(),
            absl::StrCat("UNAVAILABLE: connection refused by 127.0.0.1:", port,
                         ": Connection refused"));
  std::ostringstream printed;
  printed << log.failed;
  EXPECT_EQ(printed.str(), log.failed.ToString());
  EXPECT_EQ(log.built, 0);
  EXPECT_EQ(log.stops, 1);
}

TEST_P(ClientTest, NoAnswerTimesOutOnTheReactorsClock) {
  Blackhole blackhole;
  FakeClock clock;
  Log log;
  LoggingFactory factory(&log);
  auto reactor = NewReactor(&clock);
  reactor->connectTCP("127.0.0.1", blackhole.port(), &factory, absl::Seconds(5));
  Spin(*reactor, 50);
  EXPECT_THAT(log.events, ElementsAre("started"));
  clock.advance(absl::Seconds(5) - absl::Milliseconds(1));
  Spin(*reactor);
  EXPECT_THAT(log.events, ElementsAre("started"));
  clock.advance(absl::Milliseconds(1));
  ASSERT_TRUE(RunUntil(*reactor, [&] { return log.events.size() == 2; }));
  EXPECT_THAT(log.events, ElementsAre("started", "failed"));
  EXPECT_TRUE(IsConnectTimeout(log.failed)) << log.failed;
  EXPECT_EQ(log.built, 0);
}

TEST_P(ClientTest, StopConnectingBeforeTheHandshakeCancels) {
  Log log;
  LoggingFactory factory(&log);
  auto reactor = NewReactor();
  const int port = ListenEcho();
  Connector* c = reactor->connectTCP("127.0.0.1", port, &factory);
  EXPECT_TRUE(c->stopConnecting().ok());
  // Reported on the next turn, not inside stopConnecting().
  EXPECT_THAT(log.events, ElementsAre("started"));
  EXPECT_FALSE(c->stopConnecting().ok());  // already stopping
  ASSERT_TRUE(RunUntil(*reactor, [&] { return log.events.size() == 2; }));
  EXPECT_THAT(log.events, ElementsAre("started", "failed"));
  EXPECT_TRUE(IsConnectCancelled(log.failed)) << log.failed;
  Spin(*reactor);
  EXPECT_EQ(log.built, 0);
  EXPECT_EQ(log.stops, 1);
}

TEST_P(ClientTest, ImmediateConnectErrorsAreReportedOnTheNextTurn) {
  testing::BusyPort busy;  // its port cannot be bound again
  struct Case {
    const char* what;
    const char* host;
    int port;
    std::optional<Address> bind;
    absl::StatusCode code;
  };
  const Case cases[] = {
      {"invalid port", "127.0.0.1", 70000, std::nullopt, absl::StatusCode::kInvalidArgument},
      {"bind: in use", "127.0.0.1", busy.port(), Loopback("127.0.0.1", busy.port()),
       absl::StatusCode::kFailedPrecondition},  // EADDRINUSE
      {"bind: wrong family", "::1", 1, Loopback("127.0.0.1", 0),
       absl::StatusCode::kInvalidArgument},  // EINVAL
      // connect() itself fails at once: TCP to a multicast group is
      // ENETUNREACH before any packet leaves.
      {"connect: multicast", "224.0.0.1", 9, std::nullopt, absl::StatusCode::kUnavailable},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.what);
    Log log;
    LoggingFactory factory(&log);
    auto reactor = NewReactor();
    reactor->connectTCP(k.host, k.port, &factory, absl::Seconds(30), k.bind);
    EXPECT_THAT(log.events, ElementsAre("started"));  // not inside connectTCP
    reactor->iterate();
    EXPECT_THAT(log.events, ElementsAre("started", "failed"));
    EXPECT_EQ(log.failed.code(), k.code) << log.failed;
    EXPECT_EQ(log.stops, 1);
  }
}

TEST_P(ClientTest, LocalhostResolvesFromTheHostsFile) {
  // "localhost" is in /etc/hosts: getaddrinfo answers without DNS.
  Log log;
  LoggingFactory factory(&log);
  auto reactor = NewReactor();
  const int port = ListenEcho();
  // Whichever of 127.0.0.1 and ::1 "localhost" lists first must answer
  // (::1 only where this machine has it).
  if (testing::HasIPv6Loopback()) {
    // Taken by someone else: the connector falls back to 127.0.0.1.
    reactor->listenTCP(port, echo_.get(), 16, "::1").IgnoreError();
  }
  reactor->connectTCP("localhost", port, &factory, absl::Seconds(10));
  ASSERT_TRUE(RunUntil(*reactor, [&] {
    return !log.events.empty() && (log.events.back() == "lost" || log.events.back() == "failed");
  }));
  EXPECT_THAT(log.events, ElementsAre("started", "made", "echoed", "protocol lost", "lost"))
      << log.failed;
}

TEST_P(ClientTest, NamesAreResolvedOffTheLoopAndCancelledResolutionsIgnored) {
  Log log, cancelled_log;
  LoggingFactory factory(&log), cancelled(&cancelled_log);
  FakeResolver resolver;
  auto reactor = ResolvingReactor(resolver);
  const int port = ListenEchoOn(*reactor);
  resolver.Answer("echo.test", std::vector<Address>{Loopback("127.0.0.1", port)});
  resolver.Close();
  Connector* c = reactor->connectTCP("echo.test", port, &cancelled);
  reactor->connectTCP("echo.test", port, &factory);
  // Both look-ups are under way, off the loop, which still turns.
  ASSERT_TRUE(resolver.WaitForWaiting(2));
  Spin(*reactor);
  EXPECT_TRUE(c->stopConnecting().ok());
  ASSERT_TRUE(RunUntil(*reactor, [&] { return cancelled_log.events.size() == 2; }));
  resolver.Open();
  ASSERT_TRUE(RunUntil(*reactor, [&] {
    return !log.events.empty() && log.events.back() == "lost";
  }));
  EXPECT_THAT(log.events, ElementsAre("started", "made", "echoed", "protocol lost", "lost"));
  Spin(*reactor);
  EXPECT_THAT(cancelled_log.events, ElementsAre("started", "failed"));
  EXPECT_TRUE(IsConnectCancelled(cancelled_log.failed));
  EXPECT_EQ(cancelled_log.built, 0);
}

TEST_P(ClientTest, ALookUpCancelledWhileQueuedIsNeverMade) {
  Log first_log, cancelled_log, last_log;
  LoggingFactory first(&first_log), cancelled(&cancelled_log), last(&last_log);
  FakeResolver resolver;
  auto reactor = ResolvingReactor(resolver, nullptr, /*threads=*/1);
  const int port = ListenEchoOn(*reactor);
  resolver.Answer("echo.test", std::vector<Address>{Loopback("127.0.0.1", port)});
  resolver.Close();
  // One thread: the first look-up holds it, the other two wait their turn,
  // first in first out.
  reactor->connectTCP("echo.test", port, &first);
  Connector* c = reactor->connectTCP("echo.test", port, &cancelled);
  reactor->connectTCP("echo.test", port, &last);
  ASSERT_TRUE(resolver.WaitForWaiting(1));
  EXPECT_EQ(reactor->threadPool().queued(), 2u);
  EXPECT_TRUE(c->stopConnecting().ok());
  resolver.Open();
  // The last look-up was queued after the cancelled one: once it connected,
  // the cancelled one's turn has come and gone.
  ASSERT_TRUE(RunUntil(*reactor, [&] {
    return !last_log.events.empty() && last_log.events.back() == "lost";
  }));
  EXPECT_THAT(cancelled_log.events, ElementsAre("started", "failed"));
  EXPECT_EQ(resolver.calls(), 2);
}

TEST_P(ClientTest, AnUnknownNameIsADNSLookupError) {
  Log log;
  LoggingFactory factory(&log);
  FakeResolver resolver;
  resolver.Answer("flaky.test", absl::UnavailableError("Temporary failure in name resolution"));
  resolver.Answer("empty.test", std::vector<Address>{});
  auto reactor = ResolvingReactor(resolver);
  reactor->connectTCP("no-such-host.invalid", 80, &factory);
  ASSERT_TRUE(RunUntil(*reactor, [&] { return log.events.size() == 2; }));
  EXPECT_TRUE(IsDNSLookupError(log.failed)) << log.failed;
  EXPECT_THAT(std::string(log.failed.message()), ::testing::HasSubstr("no-such-host.invalid"));
  for (const char* host : {"flaky.test", "empty.test"}) {
    log = Log();
    reactor->connectTCP(host, 80, &factory);
    ASSERT_TRUE(RunUntil(*reactor, [&] { return log.events.size() == 2; }));
    EXPECT_TRUE(IsDNSLookupError(log.failed)) << log.failed;
    EXPECT_THAT(std::string(log.failed.message()),
                ::testing::StartsWith(absl::StrCat("cannot resolve '", host, "'")));
  }
}

TEST_P(ClientTest, EveryResolvedAddressIsTriedInTurn) {
  if (!HasIPv6Loopback()) GTEST_SKIP() << "no ::1";
  Log log;
  LoggingFactory factory(&log);
  FakeResolver resolver;
  auto reactor = ResolvingReactor(resolver);
  const int port = ListenEchoOn(*reactor);
  RefusedPort refused6("::1"), refused4;
  // IPv6 first, refused; then IPv4, which answers.
  resolver.Answer("two.test", std::vector<Address>{refused6.address(), Loopback("127.0.0.1", port)});
  reactor->connectTCP("two.test", port, &factory);
  ASSERT_TRUE(RunUntil(*reactor, [&] { return log.events.back() == "lost" || log.events.back() == "failed"; }));
  EXPECT_THAT(log.events, ElementsAre("started", "made", "echoed", "protocol lost", "lost"))
      << log.failed;
  // None answers: one failure, with the first address's reason.
  log = Log();
  resolver.Answer("none.test", std::vector<Address>{refused6.address(), refused4.address()});
  reactor->connectTCP("none.test", refused4.port(), &factory);
  ASSERT_TRUE(RunUntil(*reactor, [&] { return log.events.size() == 2; }));
  Spin(*reactor);
  EXPECT_THAT(log.events, ElementsAre("started", "failed"));
  EXPECT_TRUE(IsConnectionRefused(log.failed)) << log.failed;
  EXPECT_EQ(resolver.calls(), 2);
}

TEST_P(ClientTest, TheTimeoutCoversNameResolution) {
  FakeClock clock;
  Log log;
  LoggingFactory factory(&log);
  FakeResolver resolver;
  auto reactor = ResolvingReactor(resolver, &clock);
  const int port = ListenEchoOn(*reactor);
  resolver.Answer("slow.test", std::vector<Address>{Loopback("127.0.0.1", port)});
  resolver.Close();
  reactor->connectTCP("slow.test", port, &factory, absl::Seconds(5));
  ASSERT_TRUE(resolver.WaitForWaiting(1));
  clock.advance(absl::Seconds(5) - absl::Milliseconds(1));
  Spin(*reactor);
  EXPECT_THAT(log.events, ElementsAre("started"));
  clock.advance(absl::Milliseconds(1));
  ASSERT_TRUE(RunUntil(*reactor, [&] { return log.events.size() == 2; }));
  EXPECT_TRUE(IsConnectTimeout(log.failed)) << log.failed;
  // The answer that comes after is dropped: no connection.
  resolver.Open();
  ASSERT_TRUE(resolver.WaitForWaiting(0));
  Spin(*reactor, 50);
  EXPECT_THAT(log.events, ElementsAre("started", "failed"));
  EXPECT_EQ(log.built, 0);
  EXPECT_EQ(reactor->connectorCount(), 0u);
}

TEST_P(ClientTest, NamesAreResolvedOnABoundedPool) {
  Log log;
  LoggingFactory factory(&log);
  FakeResolver resolver;
  auto reactor = ResolvingReactor(resolver);
  const int port = ListenEchoOn(*reactor);
  resolver.Answer("many.test", std::vector<Address>{Loopback("127.0.0.1", port)});
  resolver.Close();
  constexpr int kConnections = 100;
  for (int i = 0; i < kConnections; ++i) reactor->connectTCP("many.test", port, &factory);
  // Four threads resolve; the other look-ups wait their turn.
  ASSERT_TRUE(resolver.WaitForWaiting(4));
  EXPECT_EQ(reactor->threadPool().threadCount(), 4);
  EXPECT_EQ(reactor->threadPool().queued(), static_cast<size_t>(kConnections - 4));
  resolver.Open();
  auto lost = [&] { return std::count(log.events.begin(), log.events.end(), "lost"); };
  ASSERT_TRUE(RunUntil(*reactor, [&] { return lost() == kConnections; }));
  EXPECT_EQ(resolver.calls(), kConnections);
  EXPECT_EQ(resolver.maxInFlight(), 4);
  EXPECT_EQ(reactor->threadPool().threadCount(), 4);
  EXPECT_EQ(std::count(log.events.begin(), log.events.end(), "failed"), 0);
}

TEST_P(ClientTest, AResolverThatCannotStartFailsTheAttempt) {
  Log log;
  LoggingFactory factory(&log);
  FakeResolver resolver;
  resolver.Answer("any.test", std::vector<Address>{Loopback("127.0.0.1", 1)});
  auto reactor = ResolvingReactor(resolver, nullptr, /*threads=*/0);
  reactor->connectTCP("any.test", 1, &factory);
  EXPECT_THAT(log.events, ElementsAre("started"));  // not inside connectTCP
  reactor->iterate();
  EXPECT_THAT(log.events, ElementsAre("started", "failed"));
  EXPECT_TRUE(absl::IsResourceExhausted(log.failed)) << log.failed;
  EXPECT_THAT(std::string(log.failed.message()), ::testing::StartsWith("cannot resolve 'any.test': "));
  EXPECT_EQ(resolver.calls(), 0);
  EXPECT_EQ(log.stops, 1);
}

// A gate that tasks wait at until it opens, with a count of who waits.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  int waiting = 0;
  int done = 0;
  void Pass() {
    std::unique_lock<std::mutex> lock(mu);
    ++waiting;
    cv.notify_all();
    cv.wait_for(lock, std::chrono::seconds(30), [&] { return open; });
    --waiting;
    ++done;
    cv.notify_all();
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu);
    open = true;
    cv.notify_all();
  }
  bool WaitFor(absl::FunctionRef<bool()> pred) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(20), [&] { return pred(); });
  }
};

TEST(ThreadPoolTest, StartsThreadsLazilyUpToItsBoundAndQueuesTheRest) {
  auto gate = std::make_shared<Gate>();
  ThreadPool pool(2);
  EXPECT_EQ(pool.threadCount(), 0);  // nothing started before it is needed
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(pool.callInThread([gate] { gate->Pass(); }).ok());
  }
  EXPECT_EQ(pool.threadCount(), 2);
  ASSERT_TRUE(gate->WaitFor([&] { return gate->waiting == 2; }));
  EXPECT_EQ(pool.queued(), 3u);
  gate->Open();
  ASSERT_TRUE(gate->WaitFor([&] { return gate->done == 5; }));
  EXPECT_EQ(pool.threadCount(), 2);
}

TEST(ThreadPoolTest, DestroyingItDropsQueuedTasksAndDoesNotWaitForRunningOnes) {
  auto gate = std::make_shared<Gate>();
  auto queued_capture = std::make_shared<int>(0);
  std::weak_ptr<int> queued_alive = queued_capture;
  bool queued_ran = false;
  {
    ThreadPool pool(1);
    ASSERT_TRUE(pool.callInThread([gate] { gate->Pass(); }).ok());
    ASSERT_TRUE(pool.callInThread([c = std::move(queued_capture), &queued_ran] {
                      queued_ran = true;
                    }).ok());
    ASSERT_TRUE(gate->WaitFor([&] { return gate->waiting == 1; }));
  }  // returns although a task is still running
  EXPECT_TRUE(queued_alive.expired()) << "the queued task was not dropped";
  gate->Open();
  ASSERT_TRUE(gate->WaitFor([&] { return gate->done == 1; }));
  EXPECT_FALSE(queued_ran);
}

TEST(ThreadPoolTest, APoolThatMayStartNoThreadRefuses) {
  ThreadPool pool(0);
  absl::Status s = pool.callInThread([] {});
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_EQ(pool.queued(), 0u);
}

// Makes thread creation fail (EAGAIN, as when a process is out of
// threads) for the calling thread only: a seccomp filter on clone and
// clone3. False if the kernel refuses the filter.
bool ForbidNewThreadsHere() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 2, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EAGAIN & SECCOMP_RET_DATA)),
  };
  sock_fprog prog = {static_cast<unsigned short>(sizeof(filter) / sizeof(filter[0])), filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  // No SECCOMP_FILTER_FLAG_TSYNC: the other threads keep their clone().
  return syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0;
}

TEST_P(ClientTest, AResolverPoolThatCannotStartAThreadFailsTheAttempt) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer's own thread bookkeeping";
#endif
  // On a thread of its own, which alone cannot start threads.
  bool filtered = false;
  Log log;
  absl::Status direct;
  std::thread t([&] {
    filtered = ForbidNewThreadsHere();
    if (!filtered) return;
    ThreadPool pool(4);
    direct = pool.callInThread([] {});
    LoggingFactory factory(&log);
    FakeResolver resolver;
    auto reactor = ResolvingReactor(resolver);
    reactor->connectTCP("any.test", 1, &factory);
    log.events.push_back("returned");
    reactor->iterate();
  });
  t.join();
  if (!filtered) GTEST_SKIP() << "no seccomp here";
  EXPECT_TRUE(absl::IsResourceExhausted(direct)) << direct;
  EXPECT_THAT(std::string(direct.message()), ::testing::StartsWith("cannot start a thread: "));
  EXPECT_THAT(log.events, ElementsAre("started", "returned", "failed"));
  EXPECT_TRUE(absl::IsResourceExhausted(log.failed)) << log.failed;
  EXPECT_THAT(std::string(log.failed.message()),
              ::testing::StartsWith("cannot resolve 'any.test': cannot start a thread: "));
}

TEST_P(ClientTest, StoppingTheReactorCancelsAttemptsInProgress) {
  Log log;
  LoggingFactory factory(&log);
  FakeResolver resolver;
  resolver.Close();
  auto reactor = ResolvingReactor(resolver);
  reactor->connectTCP("held.test", 80, &factory);
  reactor->callWhenRunning([&] { reactor->stop(); });
  reactor->run();
  EXPECT_THAT(log.events, ElementsAre("started", "failed"));
  EXPECT_TRUE(IsConnectCancelled(log.failed)) << log.failed;
  resolver.Open();
}

// Each way an attempt can end on a later loop turn, begun but not yet
// reported: how the factory hears of it when the reactor stops, or is
// destroyed, first.
struct Pending {
  const char* what;
  std::function<void(Reactor&, ClientFactory*)> begin;
  absl::StatusCode code;
};

std::vector<Pending> PendingFailures(const RefusedPort& refused, const testing::BusyPort& busy) {
  const int port = refused.port();
  return {
      {"stopConnecting()",
       [port](Reactor& r, ClientFactory* f) {
         EXPECT_TRUE(r.connectTCP("127.0.0.1", port, f)->stopConnecting().ok());
       },
       absl::StatusCode::kCancelled},
      {"invalid port",
       [](Reactor& r, ClientFactory* f) { r.connectTCP("127.0.0.1", -1, f); },
       absl::StatusCode::kInvalidArgument},
      {"bind error",
       [&busy](Reactor& r, ClientFactory* f) {
         r.connectTCP("127.0.0.1", busy.port(), f, absl::Seconds(30),
                      Loopback("127.0.0.1", busy.port()));
       },
       absl::StatusCode::kFailedPrecondition},  // EADDRINUSE
  };
}

TEST_P(ClientTest, AFailureWaitingForItsTurnIsDeliveredWhenTheReactorStops) {
  RefusedPort refused;
  testing::BusyPort busy;
  for (const Pending& p : PendingFailures(refused, busy)) {
    SCOPED_TRACE(p.what);
    Log log;
    LoggingFactory factory(&log);
    auto reactor = NewReactor();
    reactor->callWhenRunning([&] {
      p.begin(*reactor, &factory);
      reactor->stop();
    });
    reactor->run();
    EXPECT_THAT(log.events, ElementsAre("started", "failed"));
    EXPECT_EQ(log.failed.code(), p.code) << log.failed;
    EXPECT_EQ(log.starts, 1);
    EXPECT_EQ(log.stops, 1);
    EXPECT_EQ(reactor->connectorCount(), 0u);
  }
}

TEST_P(ClientTest, AFailureWaitingForItsTurnIsDeliveredWhenTheReactorIsDestroyed) {
  RefusedPort refused;
  testing::BusyPort busy;
  for (const Pending& p : PendingFailures(refused, busy)) {
    SCOPED_TRACE(p.what);
    Log log;
    LoggingFactory factory(&log);
    {
      auto reactor = NewReactor();
      p.begin(*reactor, &factory);
      EXPECT_THAT(log.events, ElementsAre("started"));
    }
    EXPECT_THAT(log.events, ElementsAre("started", "failed"));
    EXPECT_EQ(log.failed.code(), p.code) << log.failed;
    EXPECT_EQ(log.starts, 1);
    EXPECT_EQ(log.stops, 1);
  }
}

TEST_P(ClientTest, AnAttemptBegunWhileStoppingIsReportedBeforeRunReturns) {
  Log log, late_log;
  LoggingFactory late(&late_log);
  // Its failure (cancelled by stop()) begins another attempt.
  class Relaunching : public LoggingFactory {
   public:
    Relaunching(Log* log, Reactor** reactor, ClientFactory* next)
        : LoggingFactory(log), reactor_(reactor), next_(next) {}
    void clientConnectionFailed(Connector* c, const absl::Status& reason) override {
      LoggingFactory::clientConnectionFailed(c, reason);
      (*reactor_)->connectTCP("127.0.0.1", 1, next_);
    }

   private:
    Reactor** reactor_;
    ClientFactory* next_;
  };
  Blackhole blackhole;
  Reactor* r = nullptr;
  Relaunching factory(&log, &r, &late);
  auto reactor = NewReactor();
  r = reactor.get();
  reactor->connectTCP("127.0.0.1", blackhole.port(), &factory);
  reactor->callWhenRunning([&] { reactor->stop(); });
  reactor->run();
  EXPECT_THAT(log.events, ElementsAre("started", "failed"));
  // Refused at once (the reactor is stopping), and told before run() returned.
  EXPECT_THAT(late_log.events, ElementsAre("failed"));
  EXPECT_TRUE(absl::IsFailedPrecondition(late_log.failed)) << late_log.failed;
  EXPECT_EQ(reactor->connectorCount(), 0u);
}

TEST_P(ClientTest, StopTryingAndStopInOneCallbackThenAgainAfterTheReactorIsGone) {
  // The client tests' own pattern (issue 11): stopTrying(); stop(); in one
  // callback, the reactor destroyed, then stopTrying() again.
  RefusedPort refused;
  Log log;
  LoggingReconnecting factory(&log);
  {
    auto reactor = NewReactor();
    reactor->connectTCP("127.0.0.1", refused.port(), &factory);
    reactor->callWhenRunning([&] {
      factory.stopTrying();  // the attempt is cancelled on the next turn...
      reactor->stop();       // ...which does not come
    });
    reactor->run();
    EXPECT_THAT(log.events, ElementsAre("started", "failed"));
    EXPECT_TRUE(IsConnectCancelled(log.failed)) << log.failed;
  }
  factory.stopTrying();  // must not touch the destroyed connector
  EXPECT_EQ(log.starts, 1);
  EXPECT_EQ(log.stops, 1);
}

TEST(ConnectErrorTest, ReasonsSayWhich) {
  EXPECT_TRUE(IsConnectionRefused(ConnectError(ECONNREFUSED, "h:1")));
  EXPECT_TRUE(IsNoRoute(ConnectError(ENETUNREACH, "h:1")));
  EXPECT_TRUE(IsNoRoute(ConnectError(EHOSTUNREACH, "h:1")));
  EXPECT_FALSE(IsConnectionRefused(ConnectError(EHOSTUNREACH, "h:1")));
  EXPECT_FALSE(IsNoRoute(ConnectError(ECONNREFUSED, "h:1")));
  EXPECT_FALSE(IsConnectionRefused(ConnectError(ETIMEDOUT, "h:1")));
  EXPECT_FALSE(IsNoRoute(ConnectError(ETIMEDOUT, "h:1")));
  EXPECT_FALSE(IsConnectionRefused(ConnectionLost(ECONNREFUSED)));
  // The kind survives a copy, but not a status rebuilt with another code.
  absl::Status refused = ConnectError(ECONNREFUSED, "h:1");
  EXPECT_TRUE(IsConnectionRefused(absl::Status(refused)));
  EXPECT_FALSE(IsConnectionRefused(absl::InternalError(refused.message())));
  EXPECT_EQ(ConnectError(ENETUNREACH, "10.0.0.1:80").message(),
            "no route to 10.0.0.1:80: Network is unreachable");
  EXPECT_EQ(ConnectError(ETIMEDOUT, "h:1").message(),
            "cannot connect to h:1: Connection timed out");
  // What a user prints shows the code and the message, nothing internal.
  EXPECT_EQ(refused.ToString(), "UNAVAILABLE: connection refused by h:1: Connection refused");
  EXPECT_EQ(ConnectError(ENETUNREACH, "h:1").ToString(),
            "UNAVAILABLE: no route to h:1: Network is unreachable");
  EXPECT_TRUE(IsConnectTimeout(ConnectTimeoutError("h:1", absl::Seconds(3))));
  EXPECT_EQ(ConnectTimeoutError("h:1", absl::Seconds(3)).message(),
            "connect to h:1 timed out after 3s");
}

TEST_P(ClientTest, ReconnectingBacksOffExponentiallyThenGivesUp) {
  FakeClock clock;
  Log log;
  LoggingReconnecting factory(&log);
  factory.initialDelay = absl::Seconds(1);
  factory.factor = 2;
  factory.jitter = 0;
  factory.maxRetries = 3;
  auto reactor = NewReactor(&clock);
  RefusedPort refused;
  reactor->connectTCP("127.0.0.1", refused.port(), &factory);
  auto failures = [&] {
    return std::count(log.events.begin(), log.events.end(), "failed");
  };
  ASSERT_TRUE(RunUntil(*reactor, [&] { return failures() == 1; }));
  for (int retry = 1; retry <= 3; ++retry) {
    const absl::Duration wait = absl::Seconds(1 << retry);  // 2, 4, 8 s
    EXPECT_EQ(factory.delay(), wait) << "retry " << retry;
    EXPECT_EQ(factory.retries(), retry);
    EXPECT_EQ(reactor->connectorCount(), 1u);  // kept for the retry
    clock.advance(wait - absl::Milliseconds(1));
    Spin(*reactor);
    EXPECT_EQ(failures(), retry) << "retried early";
    clock.advance(absl::Milliseconds(1));
    ASSERT_TRUE(RunUntil(*reactor, [&] { return failures() == retry + 1; }));
    EXPECT_TRUE(IsConnectionRefused(log.failed));
  }
  // maxRetries used up: no further attempt, however long we wait.
  clock.advance(absl::Hours(2));
  Spin(*reactor);
  EXPECT_EQ(failures(), 4);
  EXPECT_EQ(std::count(log.events.begin(), log.events.end(), "started"), 4);
  EXPECT_EQ(reactor->connectorCount(), 0u);  // nothing left to do: freed
}

// Accepts one connection on `listener` and echoes `n` bytes, blocking (at
// most kTimeout), for a server that comes up on a port held until then.
void EchoOnce(int listener, size_t n) {
  int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(fd, 0) << strerror(errno);
  timeval tv = absl::ToTimeval(testing::kTimeout);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string got(n, '\0');
  size_t have = 0;
  while (have < n) {
    ssize_t r = ::recv(fd, &got[have], n - have, 0);
    ASSERT_GT(r, 0) << strerror(errno);
    have += static_cast<size_t>(r);
  }
  ASSERT_EQ(::send(fd, got.data(), n, MSG_NOSIGNAL), static_cast<ssize_t>(n));
  ::close(fd);
}

TEST_P(ClientTest, ReconnectingResetsAfterASuccessAndStopTryingStops) {
  FakeClock clock;
  Log log;
  LoggingReconnecting factory(&log);
  factory.initialDelay = absl::Seconds(1);
  factory.factor = 2;
  factory.jitter = 0;
  auto reactor = NewReactor(&clock);
  RefusedPort server;  // refuses until it listens
  const int port = server.port();
  reactor->connectTCP("127.0.0.1", port, &factory);
  ASSERT_TRUE(RunUntil(*reactor, [&] { return log.events.size() == 2; }));
  clock.advance(absl::Seconds(2));
  ASSERT_TRUE(RunUntil(*reactor, [&] { return log.events.size() == 4; }));
  EXPECT_EQ(factory.delay(), absl::Seconds(4));
  // The server comes up; the next retry connects and starts the back-off over.
  ASSERT_EQ(::listen(server.fd(), 4), 0);
  clock.advance(absl::Seconds(4));
  ASSERT_TRUE(RunUntil(*reactor, [&] { return log.events.back() == "made"; }));
  EchoOnce(server.fd(), 5);
  ASSERT_TRUE(RunUntil(*reactor, [&] { return log.events.back() == "lost"; }));
  EXPECT_EQ(log.built, 1);
  // The Hello protocol closed after its echo: a lost connection is retried
  // from the start of the back-off.
  EXPECT_EQ(factory.retries(), 1);
  EXPECT_EQ(factory.delay(), absl::Seconds(2));
  factory.stopTrying();
  EXPECT_FALSE(factory.continueTrying());
  const size_t events = log.events.size();
  clock.advance(absl::Hours(1));
  Spin(*reactor);
  EXPECT_EQ(log.events.size(), events) << "retried after stopTrying";
  EXPECT_EQ(reactor->connectorCount(), 0u);
}

TEST_P(ClientTest, ReconnectingWithYourOwnProtocol) {
  FakeClock clock;
  Log log;
  // No subclass: the factory builds Hello(&log) and resets the back-off on
  // each connection.
  std::unique_ptr<ReconnectingClientFactory> factory =
      ReconnectingClientFactory::forProtocol<Hello>(&log);
  factory->factor = 2;
  factory->jitter = 0;
  auto reactor = NewReactor(&clock);
  const int port = ListenEcho();
  reactor->connectTCP("127.0.0.1", port, factory.get());
  for (int connection = 1; connection <= 3; ++connection) {
    ASSERT_TRUE(RunUntil(*reactor, [&] {
      return std::count(log.events.begin(), log.events.end(), "protocol lost") == connection;
    }));
    Spin(*reactor);
    // Reset by the connection, then one retry scheduled after the loss.
    EXPECT_EQ(factory->retries(), 1);
    EXPECT_EQ(factory->delay(), absl::Seconds(2));
    log.received.clear();
    clock.advance(absl::Seconds(2));
  }
  EXPECT_EQ(std::count(log.events.begin(), log.events.end(), "made"), 3);
  // The same with a builder.
  Log built_log;
  ReconnectingClientFactory built([&] { return std::make_unique<Hello>(&built_log); });
  reactor->connectTCP("127.0.0.1", port, &built);
  ASSERT_TRUE(RunUntil(*reactor, [&] {
    return !built_log.events.empty() && built_log.events.back() == "protocol lost";
  }));
  EXPECT_THAT(built_log.events, ElementsAre("made", "echoed", "protocol lost"));
  EXPECT_EQ(built.retries(), 1);
  built.stopTrying();
  factory->stopTrying();
}

TEST_P(ClientTest, FinishedConnectorsAreFreed) {
  Log log;
  LoggingFactory factory(&log);
  auto reactor = NewReactor();
  const int port = ListenEcho();
  RefusedPort refused;
  constexpr int kEach = 50;
  for (int i = 0; i < kEach; ++i) {
    reactor->connectTCP("127.0.0.1", port, &factory);
    reactor->connectTCP("127.0.0.1", refused.port(), &factory);
    reactor->connectTCP("127.0.0.1", -1, &factory);
    reactor->connectTCP("127.0.0.1", port, &factory)->stopConnecting().IgnoreError();
  }
  EXPECT_EQ(reactor->connectorCount(), 4u * kEach);
  auto count = [&](const char* e) { return std::count(log.events.begin(), log.events.end(), e); };
  ASSERT_TRUE(RunUntil(*reactor, [&] { return count("lost") + count("failed") == 4 * kEach; }));
  EXPECT_EQ(count("lost"), kEach);
  // Freed at the end of the turn in which each finished.
  EXPECT_EQ(reactor->connectorCount(), 0u);
}

TEST_P(ClientTest, StoppingTheReactorEndsReconnectingForGood) {
  Log log;
  LoggingReconnecting factory(&log);
  factory.jitter = 0;
  FakeResolver resolver;
  {
    auto reactor = ResolvingReactor(resolver);
    const int port = ListenEchoOn(*reactor);
    // Hello closes after its echo; the factory would reconnect after ~2.7 s.
    reactor->connectTCP("127.0.0.1", port, &factory);
    ASSERT_TRUE(RunUntil(*reactor, [&] { return log.events.back() == "lost"; }));
    reactor->callWhenRunning([&] { reactor->stop(); });
    reactor->run();
    // The pending retry was cancelled, and the factory told.
    EXPECT_EQ(log.events.back(), "failed");
    EXPECT_TRUE(IsConnectCancelled(log.failed)) << log.failed;
    factory.stopTrying();  // knows no connector any more: nothing to touch
    // A second attempt, resolving when the reactor goes away.
    factory.resetDelay();
    log.events.clear();
    resolver.Close();
    reactor->connectTCP("held.test", 80, &factory);
    ASSERT_TRUE(resolver.WaitForWaiting(1));
  }
  resolver.Open();
  factory.stopTrying();
  EXPECT_THAT(log.events, ElementsAre("started", "failed"));
  EXPECT_TRUE(IsConnectCancelled(log.failed)) << log.failed;
  EXPECT_EQ(log.starts, log.stops);
}

TEST(ReconnectingJitterTest, EveryDelayIsWithinTheJitterOfTheBackOff) {
  FakeClock clock;
  Log log;
  LoggingReconnecting factory(&log);
  factory.initialDelay = absl::Seconds(1);
  factory.factor = 2;
  factory.jitter = 0.1;
  factory.maxDelay = absl::Seconds(100000);
  factory.seedJitter(42);
  auto reactor = testing::MakeReactor("epoll", &clock);
  RefusedPort refused;
  reactor->connectTCP("127.0.0.1", refused.port(), &factory);
  absl::Duration previous = factory.initialDelay;
  int jittered = 0, below = 0, above = 0;
  for (int retry = 1; retry <= 12; ++retry) {
    SCOPED_TRACE(absl::StrCat("retry ", retry));
    ASSERT_TRUE(RunUntil(*reactor, [&] { return factory.retries() == retry; }));
    const absl::Duration d = factory.delay();
    const absl::Duration exact = previous * 2;  // builds on the jittered one
    EXPECT_GE(d, exact * 0.9);
    EXPECT_LE(d, exact * 1.1);
    jittered += d != exact;
    below += d < exact;
    above += d > exact;
    // And the retry really waits that long.
    const int failures = std::count(log.events.begin(), log.events.end(), "failed");
    clock.advance(d - absl::Milliseconds(1));
    for (int i = 0; i < 20; ++i) reactor->iterate(absl::Milliseconds(1));
    EXPECT_EQ(std::count(log.events.begin(), log.events.end(), "failed"), failures);
    clock.advance(absl::Milliseconds(1));
    previous = d;
  }
  // Varied, both ways.
  EXPECT_EQ(jittered, 12);
  EXPECT_GT(below, 0);
  EXPECT_GT(above, 0);
  factory.stopTrying();
}

INSTANTIATE_TEST_SUITE_P(AllPollers, ClientTest, ::testing::ValuesIn(PollerNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace twist
