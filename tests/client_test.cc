// The client side through the real reactor and loopback sockets, on every
// poller: connectTCP, ClientFactory's callbacks, the reasons a connect
// fails, cancelling, and ReconnectingClientFactory's back-off on a fake clock.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "framework/client_factory.h"
#include "framework/clock.h"
#include "framework/errors.h"
#include "framework/protocol.h"
#include "framework/reactor.h"
#include "framework/tcp_connector.h"
#include "framework/tcp_port.h"
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

// A port on 127.0.0.1 where nothing listens (bound, then closed).
int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

class ClientTest : public testing::PollerTest {
 protected:
  int ListenEcho() { return Listen(echo_.get()).port(); }

  std::unique_ptr<Factory> echo_ = Factory::forProtocol<Echo>();
};

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
  Connector* c = reactor->connectTCP("::1", port, &factory);
  // Nothing listens on ::1 at that port (the echo is on 127.0.0.1): refused.
  ASSERT_TRUE(RunUntil(*reactor, [&] { return !log.events.empty() && log.events.back() != "started"; }));
  EXPECT_TRUE(IsConnectionRefused(log.failed)) << log.failed;
  log = Log();
  c = reactor->connectTCP("127.0.0.1", port, &factory);
  ASSERT_TRUE(RunUntil(*reactor, [&] { return c->state() == Connector::State::kConnected; }));
  ASSERT_NE(c->transport(), nullptr);
  EXPECT_EQ(c->transport()->getPeer().port(), port);
  EXPECT_EQ(c->transport()->getHost().host(), "127.0.0.1");
  ASSERT_TRUE(RunUntil(*reactor, [&] { return log.events.back() == "lost"; }));
}

TEST_P(ClientTest, RefusedIsAConnectionRefusedFailure) {
  Log log;
  LoggingFactory factory(&log);
  auto reactor = NewReactor();
  const int port = ClosedPort();
  reactor->connectTCP("127.0.0.1", port, &factory);
  ASSERT_TRUE(RunUntil(*reactor, [&] { return log.events.size() == 2; }));
  EXPECT_THAT(log.events, ElementsAre("started", "failed"));
  EXPECT_TRUE(IsConnectionRefused(log.failed)) << log.failed;
  EXPECT_FALSE(IsNoRoute(log.failed));
  EXPECT_THAT(std::string(log.failed.message()),
              ::testing::HasSubstr(absl::StrCat("127.0.0.1:", port)));
  EXPECT_EQ(log.built, 0);
  EXPECT_EQ(log.stops, 1);
}

TEST_P(ClientTest, NoAnswerTimesOutOnTheReactorsClock) {
  // A listener with a full accept queue drops SYNs: the handshake never
  // completes, so only our timeout can end the attempt.
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(listener, 0), 0);
  socklen_t len = sizeof(a);
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  // This one completes and fills the queue (backlog 0 holds one).
  int queued = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(::connect(queued, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);

  FakeClock clock;
  Log log;
  LoggingFactory factory(&log);
  auto reactor = NewReactor(&clock);
  reactor->connectTCP("127.0.0.1", port, &factory, absl::Seconds(5));
  Spin(*reactor, 50);
  EXPECT_THAT(log.events, ElementsAre("started"));
  clock.advance(absl::Seconds(5));
  ASSERT_TRUE(RunUntil(*reactor, [&] { return log.events.size() == 2; }));
  EXPECT_THAT(log.events, ElementsAre("started", "failed"));
  EXPECT_TRUE(IsConnectTimeout(log.failed)) << log.failed;
  EXPECT_EQ(log.built, 0);
  ::close(queued);
  ::close(listener);
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

TEST_P(ClientTest, NamesAreResolvedOffTheLoopAndCancelledResolutionsIgnored) {
  Log log, cancelled_log;
  LoggingFactory factory(&log), cancelled(&cancelled_log);
  auto reactor = NewReactor();
  const int port = ListenEcho();
  // Whatever "localhost" resolves to first must answer: listen on ::1 too.
  reactor->listenTCP(port, echo_.get(), 16, "::1").IgnoreError();
  Connector* c = reactor->connectTCP("localhost", port, &cancelled);
  EXPECT_TRUE(c->stopConnecting().ok());
  reactor->connectTCP("localhost", port, &factory);
  ASSERT_TRUE(RunUntil(*reactor, [&] {
    return !log.events.empty() && log.events.back() == "lost";
  }));
  EXPECT_THAT(log.events, ElementsAre("started", "made", "echoed", "protocol lost", "lost"));
  EXPECT_THAT(cancelled_log.events, ElementsAre("started", "failed"));
  EXPECT_TRUE(IsConnectCancelled(cancelled_log.failed));
  EXPECT_EQ(cancelled_log.built, 0);
}

TEST_P(ClientTest, AnUnknownNameIsADNSLookupError) {
  Log log;
  LoggingFactory factory(&log);
  auto reactor = NewReactor();
  // RFC 6761: ".invalid" never resolves.
  reactor->connectTCP("no-such-host.invalid", 80, &factory);
  ASSERT_TRUE(RunUntil(*reactor, [&] { return log.events.size() == 2; }));
  EXPECT_TRUE(IsDNSLookupError(log.failed)) << log.failed;
  EXPECT_THAT(std::string(log.failed.message()), ::testing::HasSubstr("no-such-host.invalid"));
}

TEST_P(ClientTest, StoppingTheReactorCancelsAttemptsInProgress) {
  Log log;
  LoggingFactory factory(&log);
  auto reactor = NewReactor();
  reactor->connectTCP("no-such-host.invalid", 80, &factory);
  reactor->callWhenRunning([&] { reactor->stop(); });
  reactor->run();
  EXPECT_THAT(log.events, ElementsAre("started", "failed"));
  EXPECT_TRUE(IsConnectCancelled(log.failed)) << log.failed;
}

TEST(ConnectErrorTest, ReasonsSayWhich) {
  EXPECT_TRUE(IsConnectionRefused(ConnectError(ECONNREFUSED, "h:1")));
  EXPECT_TRUE(IsNoRoute(ConnectError(ENETUNREACH, "h:1")));
  EXPECT_TRUE(IsNoRoute(ConnectError(EHOSTUNREACH, "h:1")));
  EXPECT_FALSE(IsConnectionRefused(ConnectError(EHOSTUNREACH, "h:1")));
  EXPECT_FALSE(IsNoRoute(ConnectError(ECONNREFUSED, "h:1")));
  EXPECT_FALSE(IsConnectionRefused(ConnectionLost(ECONNREFUSED)));
  EXPECT_EQ(ConnectError(ENETUNREACH, "10.0.0.1:80").message(),
            "no route to 10.0.0.1:80: Network is unreachable");
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
  reactor->connectTCP("127.0.0.1", ClosedPort(), &factory);
  auto failures = [&] {
    return std::count(log.events.begin(), log.events.end(), "failed");
  };
  ASSERT_TRUE(RunUntil(*reactor, [&] { return failures() == 1; }));
  for (int retry = 1; retry <= 3; ++retry) {
    const absl::Duration wait = absl::Seconds(1 << retry);  // 2, 4, 8 s
    EXPECT_EQ(factory.delay(), wait) << "retry " << retry;
    EXPECT_EQ(factory.retries(), retry);
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
}

TEST_P(ClientTest, ReconnectingResetsAfterASuccessAndStopTryingStops) {
  FakeClock clock;
  Log log;
  LoggingReconnecting factory(&log);
  factory.initialDelay = absl::Seconds(1);
  factory.factor = 2;
  factory.jitter = 0;
  auto reactor = NewReactor(&clock);
  const int port = ClosedPort();
  reactor->connectTCP("127.0.0.1", port, &factory);
  ASSERT_TRUE(RunUntil(*reactor, [&] { return log.events.size() == 2; }));
  clock.advance(absl::Seconds(2));
  ASSERT_TRUE(RunUntil(*reactor, [&] { return log.events.size() == 4; }));
  EXPECT_EQ(factory.delay(), absl::Seconds(4));
  // The server comes up; the next retry connects and starts the back-off over.
  absl::StatusOr<Port*> server = reactor->listenTCP(port, echo_.get(), 16, "127.0.0.1");
  ASSERT_TRUE(server.ok()) << server.status();
  clock.advance(absl::Seconds(4));
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
}

TEST_P(ClientTest, StoppingTheReactorEndsReconnectingForGood) {
  Log log;
  LoggingReconnecting factory(&log);
  factory.jitter = 0;
  {
    auto reactor = NewReactor();
    const int port = ListenEcho();
    // Hello closes after its echo; the factory would reconnect after ~2.7 s.
    reactor->connectTCP("127.0.0.1", port, &factory);
    ASSERT_TRUE(RunUntil(*reactor, [&] { return log.events.back() == "lost"; }));
    reactor->callWhenRunning([&] { reactor->stop(); });
    reactor->run();
    // The pending retry was cancelled, and the factory told.
    EXPECT_EQ(log.events.back(), "failed");
    EXPECT_TRUE(IsConnectCancelled(log.failed)) << log.failed;
    factory.stopTrying();  // knows no connector any more: nothing to touch
    // A second attempt, in progress when the reactor goes away.
    factory.resetDelay();
    log.events.clear();
    reactor->connectTCP("no-such-host.invalid", 80, &factory);
  }
  factory.stopTrying();
  EXPECT_EQ(log.events.back(), "failed");
  EXPECT_TRUE(IsConnectCancelled(log.failed)) << log.failed;
  EXPECT_EQ(log.starts, log.stops);
}

TEST(ReconnectingJitterTest, JitterVariesTheDelayAroundTheBackOff) {
  FakeClock clock;
  Log log;
  LoggingReconnecting factory(&log);
  factory.initialDelay = absl::Seconds(1);
  factory.factor = 2;
  factory.jitter = 0.1;
  factory.maxDelay = absl::Seconds(1000);
  factory.seedJitter(42);
  auto reactor = testing::MakeReactor("epoll", &clock);
  reactor->connectTCP("127.0.0.1", ClosedPort(), &factory);
  absl::Duration exact = absl::Seconds(1);
  int differs = 0;
  for (int retry = 1; retry <= 6; ++retry) {
    ASSERT_TRUE(RunUntil(*reactor, [&] { return factory.retries() == retry; }));
    exact = factory.delay();  // the next one builds on the jittered one
    EXPECT_GT(exact, absl::ZeroDuration());
    clock.advance(exact);
  }
  // Six jittered delays: not all of them the exact powers of two.
  absl::Duration d = absl::Seconds(1);
  for (int i = 0; i < 6; ++i) d *= 2;
  differs = factory.delay() != d;
  EXPECT_TRUE(differs);
  factory.stopTrying();
}

INSTANTIATE_TEST_SUITE_P(AllPollers, ClientTest, ::testing::ValuesIn(PollerNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace twist
