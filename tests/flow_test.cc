// Flow control and hostile peers, in process, on every poller: push and pull
// producers, half-close, a reset in the middle of a large write, and no
// descriptor leaked over 20000 connections.

#include <sys/socket.h>

#include <algorithm>
#include <future>
#include <memory>
#include <thread>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "framework/errors.h"
#include "framework/protocol.h"
#include "framework/reactor.h"
#include "framework/tcp_port.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "protocols/echo.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using ::testing::ElementsAre;
using testing::BlockingClient;
using testing::kSmallBuffers;
using testing::Pattern;
using testing::RunUntil;

constexpr size_t kChunk = 16 * 1024;

// Writes `total` bytes of Pattern in kChunk pieces to its consumer: as a push
// producer, as long as it is not paused; as a pull producer, one chunk each
// time it is asked. Records what it was told.
class PatternProducer : public Producer {
 public:
  PatternProducer(Transport* consumer, size_t total)
      : consumer_(consumer), data_(Pattern(total, 7)) {}

  void pauseProducing() override {
    events_.push_back("pause");
    // Never above the high mark by more than the chunk that crossed it.
    max_buffered_at_pause_ =
        std::max(max_buffered_at_pause_, consumer_->bufferedBytes());
    paused_ = true;
  }
  void resumeProducing() override {
    events_.push_back("resume");
    // Resumed only once the queue has drained to the low mark.
    if (resumes_ > 0) {
      max_buffered_at_resume_ = std::max(max_buffered_at_resume_, consumer_->bufferedBytes());
    }
    ++resumes_;
    paused_ = false;
    if (pull_) {
      writeChunk();
    } else {
      while (!paused_ && !done()) writeChunk();
    }
  }
  void stopProducing() override {
    events_.push_back("stop");
    stopped_ = true;
  }

  void writeChunk() {
    if (done()) return;
    size_t n = std::min(kChunk, data_.size() - sent_);
    consumer_->write(absl::string_view(data_).substr(sent_, n));
    sent_ += n;
    if (done()) {
      consumer_->unregisterProducer();
      consumer_->loseConnection();
    }
  }
  bool done() const { return sent_ == data_.size(); }

  bool pull_ = false;
  Transport* consumer_;
  std::string data_;
  size_t sent_ = 0;
  int resumes_ = 0;
  bool paused_ = false;
  bool stopped_ = false;
  size_t max_buffered_at_pause_ = 0;
  size_t max_buffered_at_resume_ = 0;
  std::vector<std::string> events_;
};

// Serves PatternProducer output on each connection; owns the producer so it
// outlives the transport's last call into it.
struct ProducerServer {
  bool streaming = true;
  size_t total = 0;
  std::unique_ptr<PatternProducer> producer;
  absl::Status reason = absl::UnknownError("not lost");
  bool lost = false;
};

class ProducingProtocol : public Protocol {
 public:
  explicit ProducingProtocol(ProducerServer* s) : s_(s) {}
  void connectionMade() override {
    transport()->setWriteBufferWaterMarks(32 * 1024, 64 * 1024);
    s_->producer = std::make_unique<PatternProducer>(transport(), s_->total);
    s_->producer->pull_ = !s_->streaming;
    ASSERT_TRUE(transport()->registerProducer(s_->producer.get(), s_->streaming).ok());
    if (s_->streaming) s_->producer->resumeProducing();
  }
  void connectionLost(const absl::Status& reason) override {
    s_->reason = reason;
    s_->lost = true;
  }

 private:
  ProducerServer* s_;
};

using FlowTest = testing::PollerTest;

TEST_P(FlowTest, PushProducerPausesAboveHighMarkAndResumesBelowLow) {
  ProducerServer s;
  s.total = 8 << 20;
  Factory factory([&] { return std::make_unique<ProducingProtocol>(&s); });
  auto reactor_ = NewReactor();
  BlockingClient c = Connect(Listen(&factory, kSmallBuffers), kSmallBuffers);
  // The client reads nothing: the (pinned) kernel buffers fill, then ours
  // passes the high mark and the producer is paused.
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return s.producer && s.producer->paused_; }));
  const size_t sent_at_pause = s.producer->sent_;
  EXPECT_LT(sent_at_pause, s.total);
  EXPECT_GT(s.producer->max_buffered_at_pause_, 64u * 1024);
  EXPECT_LE(s.producer->max_buffered_at_pause_, 64u * 1024 + kChunk);
  // While paused it is asked for nothing until the kernel has taken enough
  // of the queue to bring it down to the low mark, however long the loop
  // turns (the kernel may still move some data into the reader's window).
  for (int i = 0; i < 20; ++i) reactor_->iterate(absl::Milliseconds(1));
  EXPECT_LE(s.producer->max_buffered_at_resume_, 32u * 1024);
  if (s.producer->paused_) {
    EXPECT_GT(s.producer->consumer_->bufferedBytes(), 32u * 1024);
  }
  EXPECT_LT(s.producer->sent_, s.total) << "a reader that reads nothing took everything";
  // Reading drains the buffer below the low mark: resumed, and so on until
  // every byte arrives in order.
  absl::StatusOr<std::string> got;
  std::thread reader([&] { got = c.ReadToEof(); });
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return s.lost; }));
  reader.join();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == Pattern(s.total, 7)) << "stream differs";
  EXPECT_TRUE(IsConnectionDone(s.reason)) << s.reason;
  // Strictly alternating, starting with the first resume that started it.
  const auto& ev = s.producer->events_;
  ASSERT_GE(ev.size(), 3u);
  for (size_t i = 0; i < ev.size(); ++i) {
    EXPECT_EQ(ev[i], i % 2 == 0 ? "resume" : "pause") << "event " << i;
  }
}

TEST_P(FlowTest, PullProducerIsAskedEachTimeTheBufferDrains) {
  ProducerServer s;
  s.streaming = false;
  s.total = 4 << 20;
  Factory factory([&] { return std::make_unique<ProducingProtocol>(&s); });
  auto reactor_ = NewReactor();
  BlockingClient c = Connect(Listen(&factory, kSmallBuffers), kSmallBuffers);
  absl::StatusOr<std::string> got;
  std::thread reader([&] { got = c.ReadToEof(); });
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return s.lost; }));
  reader.join();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == Pattern(s.total, 7)) << "stream differs";
  // One resume per chunk, never a pause.
  EXPECT_EQ(s.producer->resumes_, static_cast<int>(s.total / kChunk));
  EXPECT_THAT(s.producer->events_, ::testing::Not(::testing::Contains("pause")));
}

TEST_P(FlowTest, ProducerIsStoppedWhenThePeerResetsMidWrite) {
  ProducerServer s;
  s.total = 64 << 20;
  Factory factory([&] { return std::make_unique<ProducingProtocol>(&s); });
  auto reactor_ = NewReactor();
  Address addr = Listen(&factory, kSmallBuffers);
  {
    BlockingClient c = Connect(addr, kSmallBuffers);
    ASSERT_TRUE(RunUntil(*reactor_, [&] { return s.producer && s.producer->paused_; }));
    ASSERT_TRUE(c.ReadExactly(1000).ok());
    c.Reset();
  }
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return s.lost; }));
  EXPECT_TRUE(IsConnectionLost(s.reason)) << s.reason;
  EXPECT_EQ(s.producer->events_.back(), "stop");
  EXPECT_LT(s.producer->sent_, s.total);
  EXPECT_EQ(reactor_->connectionCount(), 0u);

  // The listener is unharmed: the next client is served in full.
  s = ProducerServer();
  s.total = 1 << 20;
  BlockingClient c2 = Connect(addr);
  absl::StatusOr<std::string> got;
  std::thread reader([&] { got = c2.ReadToEof(); });
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return s.lost; }));
  reader.join();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->size(), s.total);
}

// Writes a reply, then half-closes; keeps reading what the peer still sends.
class HalfCloser : public Protocol, public HalfCloseableProtocol {
 public:
  explicit HalfCloser(std::string* received, bool* lost)
      : received_(received), lost_(lost) {}
  void connectionMade() override {
    transport()->write(Pattern(1 << 20, 3));
    transport()->loseWriteConnection();
    transport()->write("ignored after loseWriteConnection");
  }
  void dataReceived(absl::string_view data) override {
    received_->append(data.data(), data.size());
  }
  void readConnectionLost() override { transport()->loseConnection(); }
  void connectionLost(const absl::Status& reason) override {
    EXPECT_TRUE(IsConnectionDone(reason)) << reason;
    *lost_ = true;
  }

 private:
  std::string* received_;
  bool* lost_;
};

TEST_P(FlowTest, LoseWriteConnectionFlushesThenSendsEofAndKeepsReading) {
  std::string received;
  bool lost = false;
  Factory factory([&] { return std::make_unique<HalfCloser>(&received, &lost); });
  auto reactor_ = NewReactor();
  BlockingClient c = Connect(Listen(&factory, kSmallBuffers), kSmallBuffers);
  auto reading = std::async(std::launch::async, [&] { return c.ReadToEof(); });
  // EOF arrives after the full reply while our connection is still open...
  ASSERT_TRUE(RunUntil(*reactor_, [&] {
    return reading.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  }));
  absl::StatusOr<std::string> got = reading.get();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == Pattern(1 << 20, 3));
  EXPECT_FALSE(lost);
  // ...and the server still hears us.
  ASSERT_TRUE(c.SendAll("still talking").ok());
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return received == "still talking"; }));
  c.ShutdownWrite();
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return lost; }));
}

// A pull producer with nothing to give: asked once, then left alone until it
// writes again (a level-triggered poller must not ask it on every turn).
class IdlePull : public Producer {
 public:
  void resumeProducing() override { ++resumes; }
  int resumes = 0;
};

class RegistersIdlePull : public Protocol {
 public:
  explicit RegistersIdlePull(IdlePull* p) : p_(p) {}
  void connectionMade() override {
    ASSERT_TRUE(transport()->registerProducer(p_, /*streaming=*/false).ok());
  }
  void connectionLost(const absl::Status&) override {}

 private:
  IdlePull* p_;
};

TEST_P(FlowTest, APullProducerThatWritesNothingIsNotAskedOnEveryTurn) {
  IdlePull producer;
  Factory factory([&] { return std::make_unique<RegistersIdlePull>(&producer); });
  auto reactor_ = NewReactor();
  BlockingClient c = Connect(Listen(&factory));
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return producer.resumes == 1; }));
  for (int i = 0; i < 50; ++i) reactor_->iterate(absl::Milliseconds(1));
  EXPECT_EQ(producer.resumes, 1);
}

// Two accepted connections joined into a proxy, as Twisted's portforward
// does: each forwards to the other and is the other's producer, and when
// one side goes, the other is closed after flushing.
struct ProxyPair {
  Transport* side[2] = {nullptr, nullptr};
  int lost = 0;
  size_t other_queued_at_first_loss = 0;  // what the other side still had to send
};

class ProxySide : public Protocol {
 public:
  ProxySide(ProxyPair* pair, int index) : pair_(pair), index_(index) {}
  void connectionMade() override {
    pair_->side[index_] = transport();
    Transport* other = pair_->side[1 - index_];
    if (other == nullptr) return;
    ASSERT_TRUE(other->registerProducer(transport(), true).ok());
    ASSERT_TRUE(transport()->registerProducer(other, true).ok());
  }
  void dataReceived(absl::string_view data) override {
    if (Transport* other = pair_->side[1 - index_]) other->write(data);
  }
  void connectionLost(const absl::Status&) override {
    pair_->side[index_] = nullptr;
    if (++pair_->lost == 1 && pair_->side[1 - index_] != nullptr) {
      pair_->other_queued_at_first_loss = pair_->side[1 - index_]->bufferedBytes();
    }
    if (Transport* other = pair_->side[1 - index_]) other->loseConnection();
  }

 private:
  ProxyPair* pair_;
  int index_;
};

TEST_P(FlowTest, AProxySideClosingWhileTheOtherStillFlushesIsSafe) {
  ProxyPair pair;
  int next = 0;
  Factory factory([&] { return std::make_unique<ProxySide>(&pair, next++); });
  auto reactor_ = NewReactor();
  // Pinned buffers: with autotuning the kernel would absorb the 4 MiB below
  // and nothing would back up into b's side.
  Address addr = Listen(&factory, kSmallBuffers);
  BlockingClient a = Connect(addr, kSmallBuffers);
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return pair.side[0] != nullptr; }));
  BlockingClient b = Connect(addr, kSmallBuffers);
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return pair.side[1] != nullptr; }));
  // a sends more than b (not reading) can take: the server's side for b
  // fills. Its high mark is raised to 1 MiB, so that what it queues is far
  // more than the kernel can still take once b's buffers fill (their room
  // grows a little after the first EAGAIN, as the send queue moves to b's
  // receive queue): when a's side goes, b's side surely has data left.
  pair.side[1]->setWriteBufferWaterMarks(64 * 1024, 1 << 20);
  const std::string data = Pattern(4 << 20, 11);
  auto sending = std::async(std::launch::async, [&] { return a.SendAll(data); });
  ASSERT_TRUE(RunUntil(*reactor_, [&] {
    return pair.side[1] != nullptr && pair.side[1]->bufferedBytes() > 512 * 1024;
  }));
  // The server drops a's side (as an idle timeout would) while b's side
  // still has data queued from it; b's side then flushes and closes.
  pair.side[0]->loseConnection();
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return pair.lost >= 1; }));
  EXPECT_EQ(pair.side[0], nullptr) << "a's side went first";
  EXPECT_GT(pair.other_queued_at_first_loss, 256u * 1024) << "b's side had little left to flush";
  auto reading = std::async(std::launch::async, [&] { return b.ReadToEof(); });
  ASSERT_TRUE(RunUntil(*reactor_, [&] {
    return pair.lost == 2 &&
           reading.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  }));
  absl::StatusOr<std::string> got = reading.get();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_GT(got->size(), 512u * 1024);
  EXPECT_TRUE(*got == data.substr(0, got->size())) << "forwarded bytes differ";
  sending.wait();  // done, or failed: a's side was closed under it
  EXPECT_EQ(reactor_->connectionCount(), 0u);
}

// Echoes one message; closes first on even connections, so that both the
// server's close and the client's close (and resets) are exercised.
class OneShot : public Protocol {
 public:
  OneShot(int* echoed, int* lost) : echoed_(echoed), lost_(lost) {}
  void dataReceived(absl::string_view data) override {
    transport()->write(data);
    ++*echoed_;
    if (data == "0") transport()->loseConnection();
  }
  void connectionLost(const absl::Status&) override { ++*lost_; }

 private:
  int* echoed_;
  int* lost_;
};

TEST_P(FlowTest, TwentyThousandConnectionsLeaveNoDescriptorBehind) {
  int echoed = 0, lost = 0;
  Factory factory([&] { return std::make_unique<OneShot>(&echoed, &lost); });
  auto reactor_ = NewReactor();
  Address addr = Listen(&factory);
  const int before = testing::OpenDescriptors();
  constexpr int kTotal = 20000, kBatch = 200;
  for (int start = 0; start < kTotal; start += kBatch) {
    std::vector<BlockingClient> batch;
    for (int i = 0; i < kBatch; ++i) {
      batch.push_back(Connect(addr));
      ASSERT_TRUE(batch.back().SendAll(i % 2 == 0 ? "0" : "1").ok());
    }
    ASSERT_TRUE(RunUntil(*reactor_, [&] { return echoed == start + kBatch; }))
        << "echoed " << echoed;
    for (int i = 0; i < kBatch; ++i) {
      ASSERT_EQ(*batch[i].ReadExactly(1), i % 2 == 0 ? "0" : "1");
      if (i % 4 == 1) batch[i].Reset();  // the rest close with FIN
    }
    batch.clear();
    ASSERT_TRUE(RunUntil(*reactor_, [&] { return lost == start + kBatch; }))
        << "lost " << lost << " of " << start + kBatch;
  }
  EXPECT_EQ(reactor_->connectionCount(), 0u);
  reactor_->iterate();  // destroys the last retired connections
  EXPECT_EQ(testing::OpenDescriptors(), before);
}

// Waits after the peer's half-close, writing nothing: the connection stays
// open until the protocol or the peer ends it.
class Waiter : public Protocol, public HalfCloseableProtocol {
 public:
  Waiter(bool* half_closed, absl::Status* lost) : half_closed_(half_closed), lost_(lost) {}
  void readConnectionLost() override { *half_closed_ = true; }
  void connectionLost(const absl::Status& reason) override { *lost_ = reason; }

 private:
  bool* half_closed_;
  absl::Status* lost_;
};

TEST_P(FlowTest, AHalfClosedConnectionStillHearsAReset) {
  if (GetParam() == "select") {
    GTEST_SKIP() << "select cannot watch for a hang-up alone (docs/design.md)";
  }
  bool half_closed = false;
  absl::Status lost = absl::UnknownError("not lost");
  Factory factory([&] { return std::make_unique<Waiter>(&half_closed, &lost); });
  auto reactor_ = NewReactor();
  BlockingClient c = Connect(Listen(&factory));
  c.ShutdownWrite();
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return half_closed; }));
  Spin(*reactor_);
  ASSERT_EQ(reactor_->connectionCount(), 1u) << "a half-closed connection stays open";
  c.Reset();
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return reactor_->connectionCount() == 0; }))
      << "the reset went unnoticed";
  EXPECT_TRUE(IsConnectionLost(lost)) << lost;
}

// A protocol that produces for another connection (not its own transport),
// as a relay does.
class RelayProducer : public Protocol, public Producer {
 public:
  explicit RelayProducer(Transport** target) : target_(target) {}
  void connectionMade() override {
    if (*target_ != nullptr) {
      EXPECT_TRUE((*target_)->registerProducer(this, true).ok());
    } else {
      *target_ = transport();
    }
  }
  void pauseProducing() override { ++pauses; }
  void resumeProducing() override { ++resumes; }
  int pauses = 0, resumes = 0;

 private:
  Transport** target_;
};

TEST_P(FlowTest, AProducerDestroyedBeforeItsConsumerIsForgotten) {
  Transport* target = nullptr;
  Factory factory([&] { return std::make_unique<RelayProducer>(&target); });
  auto reactor_ = NewReactor();
  Address addr = Listen(&factory, kSmallBuffers);
  BlockingClient consumer = Connect(addr, kSmallBuffers);
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return target != nullptr; }));
  {
    BlockingClient producer = Connect(addr);
    ASSERT_TRUE(RunUntil(*reactor_, [&] { return reactor_->connectionCount() == 2; }));
    producer.Reset();
  }
  // The producing connection closes and its protocol is destroyed at the
  // end of that turn; the consumer must not keep a pointer to it.
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return reactor_->connectionCount() == 1; }));
  reactor_->iterate();
  // Filling the consumer past its high mark would pause the producer: under
  // ASan, a call into the destroyed one fails here.
  const std::string chunk(256 * 1024, 'z');
  for (int i = 0; i < 4; ++i) target->write(chunk);
  EXPECT_GT(target->bufferedBytes(), 64u * 1024) << "the high mark was not crossed";
  Spin(*reactor_);
  // And the slot is free: a new producer can register.
  Producer* fresh = nullptr;
  class Fresh : public Producer {
    void resumeProducing() override {}
  } f;
  fresh = &f;
  EXPECT_TRUE(target->registerProducer(fresh, true).ok());
  target->unregisterProducer();
}

INSTANTIATE_TEST_SUITE_P(AllPollers, FlowTest, ::testing::ValuesIn(PollerNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace twist
