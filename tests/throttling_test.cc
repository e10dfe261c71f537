// ThrottlingFactory on a fake clock (task::Clock) and StringTransport: the
// read and write limits hold a rate within 10% over many seconds whatever
// the sender's speed, pauses asked for by others survive the throttle, and
// the connection limit refuses connections over it. The test plays the
// kernel: it delivers input only while the transport reads, and asks a
// producer for more only as a transport would.

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "framework/clock.h"
#include "framework/protocol.h"
#include "framework/reactor.h"
#include "framework/string_transport.h"
#include "framework/task_clock.h"
#include "gtest/gtest.h"
#include "protocols/basic.h"
#include "protocols/policies.h"
#include "protocols/throttling.h"
#include "tests/test_util.h"

namespace twist {
namespace {

constexpr int64_t kLimit = 10000;  // bytes per second
constexpr absl::Duration kTick = absl::Milliseconds(10);
constexpr int kSeconds = 30;
constexpr int kTicksPerSecond = 100;

// Counts what it receives.
class Sink : public Protocol {
 public:
  explicit Sink(int64_t* received, int64_t* largest = nullptr)
      : received_(received), largest_(largest) {}
  void dataReceived(absl::string_view data) override {
    *received_ += static_cast<int64_t>(data.size());
    if (largest_ != nullptr) *largest_ = std::max(*largest_, static_cast<int64_t>(data.size()));
  }

 private:
  int64_t* received_;
  int64_t* largest_;
};

// A push producer for its own connection: writes a chunk whenever the test
// ticks it and it is not paused.
class Pusher : public Protocol, public Producer {
 public:
  explicit Pusher(size_t chunk) : chunk_(chunk, 'w') {}
  void connectionMade() override {
    ASSERT_TRUE(transport()->registerProducer(this, /*streaming=*/true).ok());
  }
  void pauseProducing() override { paused_ = true; }
  void resumeProducing() override { paused_ = false; }
  void stopProducing() override { stopped_ = true; }
  void tick() {
    if (!paused_) transport()->write(chunk_);
  }
  bool paused() const { return paused_; }
  bool stopped() const { return stopped_; }

 private:
  std::string chunk_;
  bool paused_ = false;
  bool stopped_ = false;
};

// A pull producer: writes one chunk each time it is asked.
class Puller : public Protocol, public Producer {
 public:
  explicit Puller(size_t chunk) : chunk_(chunk, 'p') {}
  void connectionMade() override {
    ASSERT_TRUE(transport()->registerProducer(this, /*streaming=*/false).ok());
  }
  void resumeProducing() override { transport()->writeSequence({chunk_}); }

 private:
  std::string chunk_;
};

// A connection of `factory`, on a StringTransport.
struct Conn {
  explicit Conn(Factory& factory) : protocol(factory.buildProtocol(Address())) {
    if (protocol != nullptr) transport.connect(protocol.get());
  }
  ~Conn() { transport.disconnect(); }
  // The protocol the throttle wraps.
  template <typename P>
  P* inner() {
    return dynamic_cast<P*>(static_cast<ProtocolWrapper*>(protocol.get())->wrappedProtocol());
  }
  std::unique_ptr<Protocol> protocol;
  StringTransport transport;
};

// Within 10% of `expected`.
void ExpectNear(int64_t actual, double expected, absl::string_view what) {
  EXPECT_GE(actual, 0.9 * expected) << what;
  EXPECT_LE(actual, 1.1 * expected) << what;
}

// The sender's speed as a multiple of the limit.
class ThrottlingRateTest : public ::testing::TestWithParam<double> {};

TEST_P(ThrottlingRateTest, ReadLimitHoldsTheRate) {
  const double speed = GetParam() * kLimit;
  task::Clock clock;
  int64_t received = 0;
  Factory inner([&] { return std::make_unique<Sink>(&received); });
  ThrottlingFactory throttled(&clock, &inner, 10, /*read_limit=*/kLimit);
  Conn c(throttled);
  const std::string chunk(static_cast<size_t>(speed / kTicksPerSecond), 'r');
  int pauses = 0, resumes = 0;
  bool was_paused = false;
  for (int i = 0; i < kSeconds * kTicksPerSecond; ++i) {
    if (!c.transport.readingPaused()) c.transport.receive(chunk);  // the kernel
    clock.advance(kTick);
    bool paused = c.transport.readingPaused();
    if (paused && !was_paused) ++pauses;
    if (!paused && was_paused) ++resumes;
    was_paused = paused;
  }
  const double expected = std::min(speed, static_cast<double>(kLimit)) * kSeconds;
  ExpectNear(received, expected, absl::StrCat("sender at ", speed, " bytes/s"));
  if (speed > kLimit) {
    EXPECT_GE(pauses, 2);
    EXPECT_GE(resumes, 1);
  } else {
    EXPECT_EQ(pauses, 0) << "throttled a sender under the limit";
  }
}

TEST_P(ThrottlingRateTest, WriteLimitHoldsAPushProducersRate) {
  const double speed = GetParam() * kLimit;
  task::Clock clock;
  Factory inner([&] { return std::make_unique<Pusher>(static_cast<size_t>(speed / kTicksPerSecond)); });
  ThrottlingFactory throttled(&clock, &inner, 10, ThrottlingFactory::kNoLimit,
                              /*write_limit=*/kLimit);
  Conn c(throttled);
  Pusher* pusher = c.inner<Pusher>();
  ASSERT_NE(pusher, nullptr);
  int paused_ticks = 0;
  for (int i = 0; i < kSeconds * kTicksPerSecond; ++i) {
    pusher->tick();
    clock.advance(kTick);
    paused_ticks += pusher->paused();
  }
  const double expected = std::min(speed, static_cast<double>(kLimit)) * kSeconds;
  ExpectNear(c.transport.value().size(), expected, absl::StrCat("producer at ", speed));
  if (speed <= kLimit) {
    EXPECT_EQ(paused_ticks, 0);
  }
}

TEST_P(ThrottlingRateTest, WriteLimitHoldsAPullProducersRate) {
  const double speed = GetParam() * kLimit;
  task::Clock clock;
  Factory inner([&] { return std::make_unique<Puller>(static_cast<size_t>(speed / kTicksPerSecond)); });
  ThrottlingFactory throttled(&clock, &inner, 10, ThrottlingFactory::kNoLimit,
                              /*write_limit=*/kLimit);
  Conn c(throttled);
  ASSERT_NE(c.transport.producer(), nullptr);
  for (int i = 0; i < kSeconds * kTicksPerSecond; ++i) {
    c.transport.producer()->resumeProducing();  // drained: the transport asks
    clock.advance(kTick);
  }
  const double expected = std::min(speed, static_cast<double>(kLimit)) * kSeconds;
  ExpectNear(c.transport.value().size(), expected, absl::StrCat("producer at ", speed));
}

// Half the limit, just over it, 3 times, 20 times.
INSTANTIATE_TEST_SUITE_P(SenderSpeeds, ThrottlingRateTest,
                         ::testing::Values(0.5, 1.5, 3.0, 20.0));

TEST(ThrottlingTest, TheLimitsAreForAllConnectionsTogether) {
  task::Clock clock;
  int64_t received = 0;
  Factory inner([&] { return std::make_unique<Sink>(&received); });
  ThrottlingFactory throttled(&clock, &inner, 10, /*read_limit=*/kLimit);
  Conn a(throttled), b(throttled);
  const std::string chunk(2 * kLimit / kTicksPerSecond, 'r');  // each twice the limit
  bool both_paused = false;
  for (int i = 0; i < kSeconds * kTicksPerSecond; ++i) {
    if (!a.transport.readingPaused()) a.transport.receive(chunk);
    if (!b.transport.readingPaused()) b.transport.receive(chunk);
    clock.advance(kTick);
    EXPECT_EQ(a.transport.readingPaused(), b.transport.readingPaused());
    both_paused |= a.transport.readingPaused();
  }
  EXPECT_TRUE(both_paused);
  ExpectNear(received, kLimit * kSeconds, "two senders");
}

// Pauses reading itself when the test says so.
class Pausing : public Protocol {
 public:
  void pause() { transport()->pauseProducing(); }
  void resume() { transport()->resumeProducing(); }
};

TEST(ThrottlingTest, UnthrottlingKeepsTheProtocolsOwnPause) {
  task::Clock clock;
  Factory inner([] { return std::make_unique<Pausing>(); });
  ThrottlingFactory throttled(&clock, &inner, 10, /*read_limit=*/kLimit);
  Conn c(throttled);
  Pausing* p = c.inner<Pausing>();
  c.transport.receive(std::string(3 * kLimit, 'r'));  // 2 s over
  EXPECT_TRUE(throttled.readsThrottled()) << "not paused once the allowance was spent";
  EXPECT_TRUE(c.transport.readingPaused());
  p->pause();
  clock.advance(absl::Seconds(4));
  EXPECT_FALSE(throttled.readsThrottled());
  EXPECT_TRUE(c.transport.readingPaused()) << "the throttle's end resumed a paused protocol";
  p->resume();
  EXPECT_FALSE(c.transport.readingPaused());

  // The other way round: the protocol resumes while throttled.
  c.transport.receive(std::string(3 * kLimit, 'r'));
  p->pause();
  p->resume();
  EXPECT_TRUE(c.transport.readingPaused()) << "the protocol lifted the throttle";
  clock.advance(absl::Seconds(4));
  EXPECT_FALSE(c.transport.readingPaused());
}

class Lines : public LineReceiver {
 public:
  explicit Lines(int* lines) : lines_(lines) {}
  void lineReceived(absl::string_view) override { ++*lines_; }

 private:
  int* lines_;
};

TEST(ThrottlingTest, LinesHeldBackByTheThrottleAreDeliveredWhenItEnds) {
  task::Clock clock;
  int lines = 0;
  Factory inner([&] { return std::make_unique<Lines>(&lines); });
  ThrottlingFactory throttled(&clock, &inner, 10, /*read_limit=*/kLimit);
  Conn c(throttled);
  std::string input;
  while (input.size() < 3 * kLimit) input += std::string(99, 'l') + "\r\n";
  const int sent = static_cast<int>(input.size() / 101);
  c.transport.receive(input);  // one read, 3 s worth
  // A paused transport holds back lines already read (docs/design.md).
  EXPECT_TRUE(c.transport.readingPaused());
  EXPECT_EQ(lines, 0);
  clock.advance(absl::Seconds(4));
  EXPECT_EQ(lines, sent) << "held lines were not delivered when the throttle ended";
}

TEST(ThrottlingTest, UnthrottlingKeepsTheTransportsPauseOfTheProducer) {
  task::Clock clock;
  Factory inner([] { return std::make_unique<Pusher>(1000); });
  ThrottlingFactory throttled(&clock, &inner, 10, ThrottlingFactory::kNoLimit,
                              /*write_limit=*/kLimit);
  Conn c(throttled);
  Pusher* pusher = c.inner<Pusher>();
  Producer* gate = c.transport.producer();  // what the transport sees
  ASSERT_NE(gate, nullptr);
  for (int i = 0; i < 30; ++i) pusher->tick();  // 3 s worth
  EXPECT_TRUE(pusher->paused());
  gate->pauseProducing();  // the transport's buffer is full too
  clock.advance(absl::Seconds(4));
  EXPECT_FALSE(throttled.writesThrottled());
  EXPECT_TRUE(pusher->paused()) << "the throttle's end resumed it over a full buffer";
  gate->resumeProducing();
  EXPECT_FALSE(pusher->paused());

  // The transport drains while throttled: the producer waits for the throttle.
  for (int i = 0; i < 30; ++i) pusher->tick();
  ASSERT_TRUE(pusher->paused());
  gate->pauseProducing();
  gate->resumeProducing();
  EXPECT_TRUE(pusher->paused()) << "the transport lifted the throttle";
  clock.advance(absl::Seconds(4));
  EXPECT_FALSE(pusher->paused());

  c.transport.disconnect();
  EXPECT_TRUE(pusher->stopped()) << "the producer was not told its consumer is gone";
}

TEST(ThrottlingTest, AProducerDestroyedFirstIsUnregistered) {
  task::Clock clock;
  Factory inner([] { return std::make_unique<Protocol>(); });
  ThrottlingFactory throttled(&clock, &inner, 10, ThrottlingFactory::kNoLimit, kLimit);
  Conn c(throttled);
  {
    Pusher other(10);  // produces for a connection that is not its own
    ASSERT_TRUE(c.protocol->transport() != nullptr);
    Transport* wrapper = c.inner<Protocol>()->transport();
    ASSERT_TRUE(wrapper->registerProducer(&other, true).ok());
    EXPECT_NE(c.transport.producer(), nullptr);
    EXPECT_FALSE(wrapper->registerProducer(&other, true).ok()) << "two producers";
  }
  EXPECT_EQ(c.transport.producer(), nullptr);
  c.transport.write("");  // nothing dangles
}

TEST(ThrottlingTest, WritesWithoutAProducerAreCountedNotStopped) {
  task::Clock clock;
  Factory inner([] { return std::make_unique<Protocol>(); });
  ThrottlingFactory throttled(&clock, &inner, 10, ThrottlingFactory::kNoLimit, kLimit);
  Conn c(throttled);
  Transport* wrapper = c.inner<Protocol>()->transport();
  wrapper->write(std::string(5 * kLimit, 'x'));
  EXPECT_TRUE(throttled.writesThrottled());
  wrapper->write("more");  // as in Twisted: only a producer can be stopped
  EXPECT_EQ(c.transport.value().size(), 5 * kLimit + 4);
}

TEST(ThrottlingTest, MaxConnectionCountRefusesTheConnectionsOverIt) {
  task::Clock clock;
  Factory inner([] { return std::make_unique<Protocol>(); });
  ThrottlingFactory throttled(&clock, &inner, /*max_connection_count=*/2);
  auto a = std::make_unique<Conn>(throttled);
  Conn b(throttled);
  ASSERT_NE(a->protocol, nullptr);
  ASSERT_NE(b.protocol, nullptr);
  EXPECT_EQ(throttled.connectionCount(), 2);
  EXPECT_EQ(throttled.buildProtocol(Address()), nullptr);
  EXPECT_EQ(throttled.refusedCount(), 1);
  a.reset();  // its connection is lost: a slot is free again
  EXPECT_EQ(throttled.connectionCount(), 1);
  Conn d(throttled);
  EXPECT_NE(d.protocol, nullptr);
  EXPECT_EQ(throttled.buildProtocol(Address()), nullptr);
  EXPECT_EQ(throttled.refusedCount(), 2);
  // A protocol built and dropped unconnected frees its slot too.
  ThrottlingFactory one(&clock, &inner, 1);
  one.buildProtocol(Address()).reset();
  EXPECT_EQ(one.connectionCount(), 0);
  EXPECT_NE(one.buildProtocol(Address()), nullptr);
}

TEST(ThrottlingTest, NoTimersWhileIdleAndReconnectingDoesNotClearTheExcess) {
  task::Clock clock;
  int64_t received = 0;
  Factory inner([&] { return std::make_unique<Sink>(&received); });
  ThrottlingFactory throttled(&clock, &inner, 10, /*read_limit=*/kLimit);
  EXPECT_EQ(clock.pendingCalls(), 0u);
  {
    Conn c(throttled);
    EXPECT_EQ(clock.pendingCalls(), 1u);  // the check every second
    c.transport.receive(std::string(5 * kLimit, 'r'));  // 5 s worth at once
    clock.advance(absl::Milliseconds(500));
  }
  EXPECT_EQ(clock.pendingCalls(), 0u) << "timers left with no connection";
  Conn again(throttled);
  EXPECT_TRUE(again.transport.readingPaused()) << "a new connection reset the excess";
  clock.advance(absl::Seconds(4));
  EXPECT_TRUE(again.transport.readingPaused());
  clock.advance(absl::Seconds(1));
  EXPECT_FALSE(again.transport.readingPaused());
}

// The same over a real connection: the throttle pauses the TcpConnection,
// so what the peer sends meanwhile stays in the kernel until it ends.
using ThrottlingLoopbackTest = testing::PollerTest;

TEST_P(ThrottlingLoopbackTest, ThrottledReadingLeavesDataInTheKernel) {
  constexpr int64_t kRate = 4096;
  FakeClock clock;
  int64_t received = 0, largest = 0;
  Factory inner([&] { return std::make_unique<Sink>(&received, &largest); });
  std::unique_ptr<ThrottlingFactory> throttled;
  auto reactor = NewReactor(&clock);
  throttled = std::make_unique<ThrottlingFactory>(reactor.get(), &inner, 10, kRate);
  // Pinned buffers hold all the test sends, whatever the machine.
  testing::BlockingClient c =
      Connect(Listen(throttled.get(), testing::kSmallBuffers), testing::kSmallBuffers);
  ASSERT_TRUE(c.SendAll(std::string(2 * kRate, 'a')).ok());  // 2 s worth
  // However the kernel splits it, reading stops once a second's worth is in.
  ASSERT_TRUE(testing::RunUntil(*reactor, [&] { return throttled->readsThrottled(); }));
  const int64_t first = received;
  EXPECT_GT(first, kRate);
  ASSERT_TRUE(c.SendAll(std::string(3 * kRate, 'b')).ok());
  const int64_t total = 5 * kRate;
  Spin(*reactor, 50);
  EXPECT_EQ(received, first) << "read while throttled";
  clock.advance(absl::Seconds(1));  // the excess is paid for after 1 s
  Spin(*reactor, 50);
  EXPECT_EQ(received, first) << "read before the excess was paid for";
  // Then the rest arrives at the limit, a second's worth per second.
  int seconds = 1;
  while (received < total && seconds < 20) {
    clock.advance(absl::Seconds(1));
    ++seconds;
    Spin(*reactor, 50);
    // Held to the limit, give or take one read: a read takes what the
    // kernel has, and is paid for afterwards.
    EXPECT_LE(received, kRate * seconds + largest) << "after " << seconds << " s";
  }
  EXPECT_EQ(received, total) << "reading did not resume";
  reactor.reset();  // before the factories it calls into
}

INSTANTIATE_TEST_SUITE_P(AllPollers, ThrottlingLoopbackTest,
                         ::testing::ValuesIn(PollerNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace twist
