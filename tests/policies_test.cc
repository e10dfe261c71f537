// Policies through the real reactor and loopback sockets: the idle timeout
// and the accept rate limit on a fake clock, the connection limit.

#include <fcntl.h>
#include <sys/socket.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "framework/clock.h"
#include "framework/errors.h"
#include "framework/protocol.h"
#include "framework/reactor.h"
#include "framework/string_transport.h"
#include "framework/task_clock.h"
#include "framework/tcp_port.h"
#include "gtest/gtest.h"
#include "protocols/basic.h"
#include "protocols/echo.h"
#include "protocols/policies.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using testing::BlockingClient;
using testing::RunUntil;

// Echo that hangs up after `period` without input.
class IdleEcho : public Protocol, public TimeoutMixin {
 public:
  IdleEcho(Reactor* r, absl::Duration period, int* timeouts, int* reads = nullptr)
      : TimeoutMixin(r), period_(period), timeouts_(timeouts), reads_(reads) {}
  void connectionMade() override { setTimeout(period_); }
  void dataReceived(absl::string_view data) override {
    if (reads_ != nullptr) ++*reads_;
    resetTimeout();
    transport()->write(data);
  }
  void timeoutConnection() override {
    ++*timeouts_;
    TimeoutMixin::timeoutConnection();
  }
  void connectionLost(const absl::Status&) override { lost_ = true; }
  bool lost_ = false;

 private:
  absl::Duration period_;
  int* timeouts_;
  int* reads_;
};

using PoliciesTest = testing::PollerTest;

TEST_P(PoliciesTest, IdleTimeoutClosesOnlyAfterAQuietPeriod) {
  FakeClock clock;
  int timeouts = 0, reads = 0;
  std::unique_ptr<Factory> factory;
  auto reactor_ = NewReactor(&clock);
  Reactor* r = reactor_.get();
  factory = std::make_unique<Factory>([&] {
    return std::make_unique<IdleEcho>(r, absl::Seconds(10), &timeouts, &reads);
  });
  BlockingClient c = Connect(Listen(factory.get()));
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return reactor_->connectionCount() == 1; }));

  clock.advance(absl::Seconds(9));
  Spin(*reactor_);
  EXPECT_EQ(timeouts, 0);
  // Activity restarts the ten seconds.
  ASSERT_TRUE(c.SendAll("x").ok());
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return reads == 1; }));
  EXPECT_EQ(*c.ReadExactly(1), "x");
  clock.advance(absl::Seconds(9));
  Spin(*reactor_);
  EXPECT_EQ(timeouts, 0);
  EXPECT_EQ(reactor_->connectionCount(), 1u);
  // Quiet for the whole period: closed cleanly.
  clock.advance(absl::Seconds(1));
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return reactor_->connectionCount() == 0; }));
  EXPECT_EQ(timeouts, 1);
  absl::StatusOr<std::string> rest = c.ReadToEof();
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(*rest, "");
}

TEST(TimeoutMixinTest, SetTimeoutReturnsThePreviousPeriodAndCancelStopsIt) {
  FakeClock clock;
  auto reactor = testing::MakeReactor("epoll", &clock);
  int timeouts = 0;
  IdleEcho p(reactor.get(), absl::Seconds(1), &timeouts);
  EXPECT_EQ(p.setTimeout(absl::Seconds(5)), absl::InfiniteDuration());
  EXPECT_EQ(p.setTimeout(absl::Seconds(3)), absl::Seconds(5));
  clock.advance(absl::Seconds(2));
  reactor->runUntilCurrent();
  EXPECT_EQ(timeouts, 0);
  p.cancelTimeout();
  clock.advance(absl::Seconds(5));
  reactor->runUntilCurrent();
  EXPECT_EQ(timeouts, 0);
  p.setTimeout(absl::Seconds(1));
  clock.advance(absl::Seconds(1));
  reactor->runUntilCurrent();
  EXPECT_EQ(timeouts, 1);  // no transport: the default close is skipped
}

TEST_P(PoliciesTest, ConnectionLimitClosesTheConnectionOverItAtOnce) {
  std::unique_ptr<Factory> echo = Factory::forProtocol<Echo>();
  LimitTotalConnectionsFactory limited(echo.get(), 2);
  auto reactor_ = NewReactor();
  Address addr = Listen(&limited);
  BlockingClient a = Connect(addr), b = Connect(addr);
  ASSERT_TRUE(a.SendAll("a").ok());
  ASSERT_TRUE(b.SendAll("b").ok());
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return limited.connectionCount() == 2; }));
  BlockingClient third = Connect(addr);
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return limited.refusedCount() == 1; }));
  absl::StatusOr<std::string> rest = third.ReadUntilClosed();
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(*rest, "");
  // The two within the limit are served as usual.
  Spin(*reactor_);
  EXPECT_EQ(*a.ReadExactly(1), "a");
  EXPECT_EQ(*b.ReadExactly(1), "b");
  // A slot is free again as soon as one of them leaves.
  { BlockingClient leaving = std::move(a); }
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return limited.connectionCount() == 1; }));
  BlockingClient d = Connect(addr);
  ASSERT_TRUE(d.SendAll("d").ok());
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return limited.connectionCount() == 2; }));
  Spin(*reactor_);
  EXPECT_EQ(*d.ReadExactly(1), "d");
  EXPECT_EQ(limited.refusedCount(), 1);
}

TEST_P(PoliciesTest, AcceptRateLimitSpreadsAcceptsOverTime) {
  FakeClock clock;
  std::unique_ptr<Factory> echo = Factory::forProtocol<Echo>();
  auto reactor_ = NewReactor(&clock);
  Port* port = ListenPort(echo.get());
  port->setAcceptRateLimit(/*per_second=*/2, /*burst=*/3);
  std::vector<BlockingClient> clients;
  for (int i = 0; i < 8; ++i) clients.push_back(Connect(port->getHost()));
  // The burst is taken at once; the rest wait in the backlog...
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return reactor_->connectionCount() == 3; }));
  Spin(*reactor_);
  EXPECT_EQ(reactor_->connectionCount(), 3u);
  // ...and come in at two a second of the reactor's time.
  clock.advance(absl::Milliseconds(500));
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return reactor_->connectionCount() == 4; }));
  Spin(*reactor_);
  EXPECT_EQ(reactor_->connectionCount(), 4u);
  clock.advance(absl::Seconds(1));
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return reactor_->connectionCount() == 6; }));
  Spin(*reactor_);
  EXPECT_EQ(reactor_->connectionCount(), 6u);
  // Lifting the limit takes the rest at once.
  port->setAcceptRateLimit(0);
  clock.advance(absl::Seconds(1));  // lets the pending back-off expire
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return reactor_->connectionCount() == 8; }));
}

// Pauses its transport after each line and resumes it on the next turn, as
// a protocol waiting on something else would.
class SlowLines : public LineReceiver {
 public:
  SlowLines(Reactor* r, std::vector<std::string>* lines) : reactor_(r), lines_(lines) {}
  void lineReceived(absl::string_view line) override {
    lines_->emplace_back(line);
    transport()->pauseProducing();
    Transport* t = transport();
    reactor_->callLater(absl::ZeroDuration(), [t] { t->resumeProducing(); });
  }
  void connectionLost(const absl::Status&) override { lost_ = true; }
  bool lost_ = false;

 private:
  Reactor* reactor_;
  std::vector<std::string>* lines_;
};

TEST_P(PoliciesTest, WrappingFactoriesLetHeldLinesThroughOnResume) {
  std::vector<std::string> lines;
  std::unique_ptr<Factory> inner;
  auto reactor_ = NewReactor();
  Reactor* r = reactor_.get();
  inner = std::make_unique<Factory>([&] { return std::make_unique<SlowLines>(r, &lines); });
  TimeoutFactory timed(r, inner.get(), absl::Seconds(60));
  LimitTotalConnectionsFactory limited(&timed, 10);
  BlockingClient c = Connect(Listen(&limited));
  ASSERT_TRUE(c.SendAll("a\r\nb\r\nc\r\n").ok());  // one read, three lines
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return lines.size() == 3; }))
      << lines.size() << " lines: held lines were not delivered on resume";
  reactor_.reset();  // before the factories it uses
}

TEST_P(PoliciesTest, TimeoutFactoryClosesAQuietClientThenAbortsAStalledFlush) {
  FakeClock clock;
  std::unique_ptr<Factory> echo = Factory::forProtocol<Echo>();
  auto reactor_ = NewReactor(&clock);
  TimeoutFactory timed(reactor_.get(), echo.get(), absl::Seconds(10));
  Address addr = Listen(&timed, testing::kSmallBuffers);
  BlockingClient quiet = Connect(addr);
  // A client that sends without reading: the echo backs up, the server stops
  // reading it, and the flush of its echo can never finish.
  BlockingClient hog = Connect(addr, testing::kSmallBuffers);
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return reactor_->connectionCount() == 2; }));
  int fd = hog.fd();
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  const std::string chunk(64 * 1024, 'h');
  int idle_turns = 0;
  for (int i = 0; i < 100000 && idle_turns < 50; ++i) {
    ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    idle_turns = n > 0 ? 0 : idle_turns + 1;
    Spin(*reactor_, 1);
  }
  ASSERT_EQ(idle_turns, 50) << "the server never stopped taking data";
  clock.advance(absl::Seconds(10));
  // The quiet one is closed cleanly at once; the hog is asked to close but
  // cannot flush.
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return reactor_->connectionCount() == 1; }));
  absl::StatusOr<std::string> rest = quiet.ReadToEof();
  ASSERT_TRUE(rest.ok()) << rest.status();  // EOF, not a reset
  EXPECT_EQ(*rest, "");
  EXPECT_EQ(timed.timedOutCount(), 2);
  Spin(*reactor_);
  EXPECT_EQ(reactor_->connectionCount(), 1u);
  clock.advance(absl::Seconds(10));
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return reactor_->connectionCount() == 0; }));
}

// Writes a line every time the test asks, reads nothing: a chat user who
// only reads the conversation, seen from the server.
class Talker : public Protocol {
 public:
  explicit Talker(Transport** t) : t_(t) {}
  void connectionMade() override { *t_ = transport(); }
  void connectionLost(const absl::Status&) override { *t_ = nullptr; }

 private:
  Transport** t_;
};

TEST_P(PoliciesTest, TimeoutFactoryCountsWritesAsActivity) {
  FakeClock clock;
  Transport* talker = nullptr;
  Factory inner([&] { return std::make_unique<Talker>(&talker); });
  auto reactor_ = NewReactor(&clock);
  TimeoutFactory timed(reactor_.get(), &inner, absl::Seconds(10));
  BlockingClient c = Connect(Listen(&timed));
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return talker != nullptr; }));
  // The client never sends; the server writes to it every 6 s for a minute.
  for (int i = 0; i < 10; ++i) {
    clock.advance(absl::Seconds(6));
    talker->write("line\r\n");
    Spin(*reactor_, 2);
    ASSERT_NE(talker, nullptr) << "closed after " << 6 * (i + 1) << " s of writes";
  }
  EXPECT_EQ(timed.timedOutCount(), 0);
  // Once the server stops writing too, the idle period ends it.
  clock.advance(absl::Seconds(10));
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return talker == nullptr; }));
  EXPECT_EQ(timed.timedOutCount(), 1);
}

// A wrapper that sees every write of the protocol it wraps.
class WriteLogger : public ProtocolWrapper {
 public:
  WriteLogger(std::unique_ptr<Protocol> p, std::string* log)
      : ProtocolWrapper(std::move(p)), log_(log) {}
  void write(absl::string_view data) override {
    absl::StrAppend(log_, "[", data, "]");
    ProtocolWrapper::write(data);
  }

 private:
  std::string* log_;
};

TEST_P(PoliciesTest, AWrapperIsTheWrappedProtocolsTransport) {
  std::string log;
  std::unique_ptr<Factory> echo = Factory::forProtocol<Echo>();
  Factory logging([&] {
    return std::make_unique<WriteLogger>(ProtocolWrapper::buildWrapped(echo.get(), Address()),
                                         &log);
  });
  auto reactor_ = NewReactor();
  BlockingClient c = Connect(Listen(&logging));
  ASSERT_TRUE(c.SendAll("hello").ok());
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return log == "[hello]"; })) << log;
  EXPECT_EQ(*c.ReadExactly(5), "hello");
}

// Counts the ports using it, through the reference-counted doStart/doStop.
class StartCountingFactory : public Factory {
 public:
  StartCountingFactory() : Factory([] { return std::make_unique<Echo>(); }) {}
  void startFactory() override { ++started; }
  void stopFactory() override { ++stopped; }
  int started = 0;
  int stopped = 0;
};

TEST(WrappingFactoryTest, ByItselfPassesEverythingThroughAndStartsTheWrappedFactory) {
  StartCountingFactory echo;
  WrappingFactory wrapping(&echo);
  EXPECT_EQ(wrapping.wrappedFactory(), &echo);
  wrapping.doStart();
  EXPECT_EQ(echo.started, 1);
  std::unique_ptr<Protocol> p = wrapping.buildProtocol(Address());
  auto* wrapper = dynamic_cast<ProtocolWrapper*>(p.get());
  ASSERT_NE(wrapper, nullptr);
  EXPECT_EQ(wrapper->wrappedProtocol()->factory(), &echo) << "the wrapped protocol keeps its factory";
  StringTransport t;
  t.connect(p.get());
  EXPECT_EQ(wrapper->wrappedProtocol()->transport(), wrapper);
  t.receive("hello");
  EXPECT_EQ(t.take(), "hello");
  t.disconnect();
  wrapping.doStop();
  EXPECT_EQ(echo.stopped, 1);
}

TEST(TaskClockTest, AdvanceRunsWhatBecameDueInOrderIncludingCallsItSchedules) {
  task::Clock clock;
  std::vector<std::string> log;
  clock.callLater(absl::Seconds(2), [&] { log.push_back("2s"); });
  clock.callLater(absl::Seconds(1), [&] {
    log.push_back("1s");
    clock.callLater(absl::ZeroDuration(), [&] { log.push_back("1s+0"); });
  });
  clock.advance(absl::Milliseconds(999));
  EXPECT_TRUE(log.empty());
  clock.advance(absl::Milliseconds(1));
  EXPECT_EQ(log, (std::vector<std::string>{"1s", "1s+0"}));
  EXPECT_EQ(clock.seconds(), absl::UnixEpoch() + absl::Seconds(1));
  clock.pump({absl::Milliseconds(500), absl::Milliseconds(500)});
  EXPECT_EQ(log.back(), "2s");
  EXPECT_EQ(clock.pendingCalls(), 0u);
}

TEST(TaskClockTest, DrivesTimeoutFactoryWithoutAReactor) {
  task::Clock clock;
  std::unique_ptr<Factory> echo = Factory::forProtocol<Echo>();
  TimeoutFactory timed(&clock, echo.get(), absl::Seconds(10));
  std::unique_ptr<Protocol> p = timed.buildProtocol(Address());
  StringTransport t;
  t.connect(p.get());
  clock.advance(absl::Seconds(9));
  t.receive("x");  // activity: the countdown starts again
  EXPECT_EQ(t.take(), "x");
  clock.advance(absl::Seconds(9));
  EXPECT_FALSE(t.disconnecting());
  clock.advance(absl::Seconds(1));
  EXPECT_TRUE(t.disconnecting());
  EXPECT_EQ(timed.timedOutCount(), 1);
  t.disconnect();
}

// Once the idle period has closed the connection, the flush has one more
// period: writes the protocol still makes (a room broadcasting to a user it
// has not dropped yet) do not postpone the abort.
TEST(TaskClockTest, WritesWhileTheTimedOutFlushStallsDoNotPostponeTheAbort) {
  task::Clock clock;
  Transport* talker = nullptr;
  Factory inner([&] { return std::make_unique<Talker>(&talker); });
  TimeoutFactory timed(&clock, &inner, absl::Seconds(10));
  std::unique_ptr<Protocol> p = timed.buildProtocol(Address());
  StringTransport t;  // never flushes: the peer does not read
  t.connect(p.get());
  clock.advance(absl::Seconds(10));
  EXPECT_TRUE(t.disconnecting());
  EXPECT_FALSE(t.aborted());
  for (int i = 0; i < 3; ++i) {
    clock.advance(absl::Seconds(3));
    talker->write("line\r\n");
  }
  clock.advance(absl::Seconds(1));
  EXPECT_TRUE(t.aborted()) << "the abort waited for the writes to stop";
  EXPECT_EQ(timed.timedOutCount(), 1);
  t.disconnect();
}

INSTANTIATE_TEST_SUITE_P(AllPollers, PoliciesTest,
                         ::testing::ValuesIn(PollerNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace twist
