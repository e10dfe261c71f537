// Straight-line coroutine protocols (Stream) over real loopback sockets on
// every poller: lines and exact reads, a peer that disconnects mid-await, a
// slow reader that the coroutine waits for (drain), and a reactor destroyed
// under a pending await (ASan checks that nothing leaks).

#include "framework/stream.h"

#include <future>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "framework/coro.h"
#include "framework/endpoints.h"
#include "framework/clock.h"
#include "framework/errors.h"
#include "framework/reactor.h"
#include "gtest/gtest.h"
#include "protocols/echo.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using testing::BlockingClient;
using testing::RunUntil;

class StreamTest : public testing::PollerTest {
 protected:
  // A reactor serving `handler` on 127.0.0.1 and a client connected to it;
  // destroyed client first, then the reactor, then the factory.
  struct Served {
    std::unique_ptr<Factory> factory;
    std::unique_ptr<Reactor> reactor;
    BlockingClient client;
  };
  Served Serve(StreamProtocol::Handler handler, int pinned_buffers = 0) {
    std::unique_ptr<Factory> factory = Factory::forProtocol<StreamProtocol>(std::move(handler));
    std::unique_ptr<Reactor> reactor = NewReactor();
    BlockingClient client = Connect(Listen(factory.get(), pinned_buffers), pinned_buffers);
    return Served{std::move(factory), std::move(reactor), std::move(client)};
  }
};

struct Outcome {
  std::vector<std::string> seen;
  absl::Status last;
  bool done = false;
};

Deferred<Unit> shout(std::shared_ptr<Stream> s, Outcome* out) {
  for (;;) {
    absl::StatusOr<std::string> line = co_await s->readLine("\r\n");
    if (!line.ok()) {
      out->last = line.status();
      break;
    }
    out->seen.push_back(*line);
    if (*line == "four") {
      absl::StatusOr<std::string> four = co_await s->readExactly(4);
      if (!four.ok()) co_return four.status();
      out->seen.push_back("exactly:" + *four);
      continue;
    }
    s->write(absl::AsciiStrToUpper(*line) + "\r\n");
  }
  out->done = true;
  co_return absl::OkStatus();
}

TEST_P(StreamTest, LinesAndExactReadsInStraightLineCode) {
  Outcome out;
  Served served = Serve([&](std::shared_ptr<Stream> s) { return shout(s, &out); });
  std::unique_ptr<Reactor>& reactor = served.reactor;
  BlockingClient& c = served.client;
  ASSERT_TRUE(c.SendAll("one\r\ntw").ok());
  ASSERT_TRUE(RunUntil(*reactor, [&] { return out.seen.size() == 1; }));
  ASSERT_TRUE(c.SendAll("o\r\nfour\r\nabcdthree\r\n").ok());
  ASSERT_TRUE(RunUntil(*reactor, [&] { return out.seen.size() == 5; }));
  EXPECT_EQ(out.seen, (std::vector<std::string>{"one", "two", "four", "exactly:abcd", "three"}));
  c.ShutdownWrite();
  ASSERT_TRUE(RunUntil(*reactor, [&] { return out.done && reactor->connectionCount() == 0; }));
  EXPECT_TRUE(IsEndOfStream(out.last)) << out.last;
  absl::StatusOr<std::string> back = c.ReadUntilClosed();
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, "ONE\r\nTWO\r\nTHREE\r\n");
}

TEST_P(StreamTest, PeerThatDisconnectsMidAwaitResumesItWithTheReason) {
  Outcome out;
  Served served = Serve([&](std::shared_ptr<Stream> s) { return shout(s, &out); });
  std::unique_ptr<Reactor>& reactor = served.reactor;
  BlockingClient& c = served.client;
  ASSERT_TRUE(c.SendAll("half a li").ok());
  ASSERT_TRUE(RunUntil(*reactor, [&] { return reactor->connectionCount() == 1; }));
  testing::PollerTest::Spin(*reactor);
  EXPECT_FALSE(out.done);
  c.Reset();
  ASSERT_TRUE(RunUntil(*reactor, [&] { return out.done; }));
  EXPECT_TRUE(IsConnectionLost(out.last)) << out.last;
}

TEST_P(StreamTest, TooLongLineFailsTheReadAndCloses) {
  absl::Status got;
  bool done = false;
  Served served = Serve([&](std::shared_ptr<Stream> s) -> Deferred<Unit> {
    absl::StatusOr<std::string> line = co_await s->readLine("\n", 8);
    got = line.status();
    done = true;
    co_return absl::OkStatus();
  });
  std::unique_ptr<Reactor>& reactor = served.reactor;
  BlockingClient& c = served.client;
  ASSERT_TRUE(c.SendAll("0123456789\n").ok());
  ASSERT_TRUE(RunUntil(*reactor, [&] { return done; }));
  EXPECT_TRUE(absl::IsResourceExhausted(got)) << got;
  EXPECT_TRUE(c.ReadUntilClosed().ok());
}

// Writes `total` bytes in 16 KiB pieces, waiting for the buffer to drain
// whenever the transport says it is above its high mark.
Deferred<Unit> flood(std::shared_ptr<Stream> s, size_t total, size_t* max_buffered,
                     int* waits, absl::Status* end) {
  const std::string piece = testing::Pattern(16 * 1024);
  for (size_t sent = 0; sent < total; sent += piece.size()) {
    s->write(piece);
    *max_buffered = std::max(*max_buffered, s->transport()->bufferedBytes());
    bool paused = !s->drain().await_ready();
    if (paused) ++*waits;
    absl::Status d = co_await s->drain();
    if (!d.ok()) {
      *end = d;
      co_return d;
    }
  }
  s->loseConnection();
  *end = absl::OkStatus();
  co_return absl::OkStatus();
}

TEST_P(StreamTest, SlowReaderHoldsTheWriterBackAtTheHighMark) {
  constexpr size_t kTotal = 4 << 20;
  size_t max_buffered = 0;
  int waits = 0;
  absl::Status end = absl::UnknownError("running");
  Served served = Serve(
      [&](std::shared_ptr<Stream> s) { return flood(s, kTotal, &max_buffered, &waits, &end); },
      testing::kSmallBuffers);
  std::unique_ptr<Reactor>& reactor = served.reactor;
  BlockingClient& c = served.client;
  // Nobody reads: the coroutine must stop at the high water mark.
  ASSERT_TRUE(RunUntil(*reactor, [&] { return waits > 0; }));
  testing::PollerTest::Spin(*reactor, 100);
  // Held back: 4 MiB cannot fit in the pinned kernel buffers and the
  // transport's queue, so the coroutine is still waiting.
  EXPECT_TRUE(absl::IsUnknown(end));
  // Now read everything; the reactor and the reads alternate.
  std::string got;
  while (got.size() < kTotal) {
    ASSERT_TRUE(RunUntil(*reactor, [&] { return testing::PendingBytes(c.fd()) > 0; }));
    absl::StatusOr<std::string> part = c.ReadExactly(testing::PendingBytes(c.fd()));
    ASSERT_TRUE(part.ok()) << part.status();
    got += *part;
  }
  ASSERT_TRUE(RunUntil(*reactor, [&] { return end.ok(); }));
  EXPECT_EQ(got.size(), kTotal);
  EXPECT_GT(waits, 1);
  // Never more than the high mark (64 KiB) plus the piece that crossed it.
  EXPECT_LE(max_buffered, 64u * 1024 + 16 * 1024);
}

TEST_P(StreamTest, ReactorDestroyedUnderAPendingAwaitResumesIt) {
  Outcome out;
  Served served = Serve([&](std::shared_ptr<Stream> s) { return shout(s, &out); });
  std::unique_ptr<Reactor>& reactor = served.reactor;  // served.client stays connected
  ASSERT_TRUE(RunUntil(*reactor, [&] { return reactor->connectionCount() == 1; }));
  reactor.reset();
  EXPECT_TRUE(out.done);
  EXPECT_TRUE(absl::IsAborted(out.last)) << out.last;
}

Deferred<Unit> views(std::shared_ptr<Stream> s, std::vector<std::string>* seen) {
  absl::StatusOr<std::string> line = co_await s->readLine();
  if (!line.ok()) co_return line.status();
  seen->push_back(*line);
  // What came with the line is buffered: the view points into the buffer.
  for (;;) {
    absl::StatusOr<absl::string_view> v = co_await s->readView();
    if (!v.ok()) {
      seen->push_back(IsEndOfStream(v.status()) ? "EOF" : v.status().ToString());
      co_return absl::OkStatus();
    }
    seen->push_back(std::string(*v));
    s->write(*v);
  }
}

TEST_P(StreamTest, ReadViewGivesBufferedAndFreshBytes) {
  std::vector<std::string> seen;
  Served served = Serve([&](std::shared_ptr<Stream> s) { return views(s, &seen); });
  std::unique_ptr<Reactor>& reactor = served.reactor;
  BlockingClient& c = served.client;
  ASSERT_TRUE(c.SendAll("line\nrest").ok());
  ASSERT_TRUE(RunUntil(*reactor, [&] { return seen.size() == 2; }));
  ASSERT_TRUE(c.SendAll("more").ok());
  ASSERT_TRUE(RunUntil(*reactor, [&] { return seen.size() == 3; }));
  c.ShutdownWrite();
  ASSERT_TRUE(RunUntil(*reactor, [&] { return seen.size() == 4; }));
  EXPECT_EQ(seen, (std::vector<std::string>{"line", "rest", "more", "EOF"}));
  EXPECT_EQ(*c.ReadUntilClosed(), "restmore");
}

Deferred<Unit> twoReads(std::shared_ptr<Stream> s, absl::Status* second) {
  Stream::Read first = s->read();
  absl::StatusOr<std::string> r = co_await s->read();  // while `first` is pending
  *second = r.status();
  co_return absl::OkStatus();
}

TEST_P(StreamTest, ASecondConcurrentReadIsRefused) {
  absl::Status second;
  Served served = Serve([&](std::shared_ptr<Stream> s) { return twoReads(s, &second); });
  std::unique_ptr<Reactor>& reactor = served.reactor;
  ASSERT_TRUE(RunUntil(*reactor, [&] { return !second.ok(); }));
  EXPECT_TRUE(absl::IsFailedPrecondition(second)) << second;
}

Deferred<Unit> waitForDrain(std::shared_ptr<Stream> s, absl::Status* out) {
  *out = co_await s->drain();
  co_return absl::OkStatus();
}

TEST_P(StreamTest, ASecondConcurrentDrainIsRefused) {
  absl::Status first = absl::UnknownError("waiting");
  absl::Status second = absl::UnknownError("waiting");
  Served served = Serve(
      [&](std::shared_ptr<Stream> s) -> Deferred<Unit> {
        // Above the high mark (nobody reads), then two coroutines wait.
        const std::string piece = testing::Pattern(16 * 1024);
        for (int i = 0; i < 256 && s->drain().await_ready(); ++i) s->write(piece);
        Deferred<Unit> a = waitForDrain(s, &first);
        Deferred<Unit> b = waitForDrain(s, &second);
        co_await std::move(a);
        co_return absl::OkStatus();
      },
      testing::kSmallBuffers);
  std::unique_ptr<Reactor>& reactor = served.reactor;
  ASSERT_TRUE(RunUntil(*reactor, [&] { return !absl::IsUnknown(second); }));
  EXPECT_TRUE(absl::IsFailedPrecondition(second)) << second;
  EXPECT_TRUE(absl::IsUnknown(first)) << first;  // still waiting
  served.client.Reset();
  ASSERT_TRUE(RunUntil(*reactor, [&] { return !absl::IsUnknown(first); }));
  EXPECT_TRUE(IsConnectionLost(first)) << first;
}

// Answers each line after a pause on the reactor's clock, so that the peer's
// EOF arrives while lines are still waiting to be read.
Deferred<Unit> slowEcho(std::shared_ptr<Stream> s, ReactorTime* time) {
  for (;;) {
    absl::StatusOr<std::string> line = co_await s->readLine();
    if (!line.ok()) co_return absl::OkStatus();
    absl::StatusOr<Unit> slept = co_await sleep(time, absl::Milliseconds(10));
    if (!slept.ok()) co_return slept.status();
    s->write(*line + "\n");
  }
}

TEST_P(StreamTest, WhatArrivedBeforeThePeersEofIsStillAnswered) {
  FakeClock clock;
  std::unique_ptr<Reactor> reactor;
  auto factory = Factory::forProtocol<StreamProtocol>(StreamProtocol::Handler(
      [&](std::shared_ptr<Stream> s) { return slowEcho(s, reactor.get()); }));
  reactor = NewReactor(&clock);
  BlockingClient c = Connect(Listen(factory.get()));
  ASSERT_TRUE(c.SendAll("a\nb\nc\n").ok());
  c.ShutdownWrite();  // at once: b and c are still to be read when EOF comes
  ASSERT_TRUE(RunUntil(*reactor, [&] { return reactor->connectionCount() == 1; }));
  ASSERT_TRUE(RunUntil(*reactor, [&] {
    clock.advance(absl::Milliseconds(5));
    return reactor->connectionCount() == 0;
  }));
  absl::StatusOr<std::string> back = c.ReadUntilClosed();
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, "a\nb\nc\n");
}

// --- connectStream: the client side as straight-line code ----------------------

// Connects, says `lines`, reads each echo back, then lets the stream go.
Deferred<Unit> client(ClientEndpoint* endpoint, std::vector<std::string> lines, Outcome* out) {
  absl::StatusOr<std::shared_ptr<Stream>> s = co_await connectStream(*endpoint);
  if (!s.ok()) {
    out->last = s.status();
    out->done = true;
    co_return absl::OkStatus();
  }
  for (const std::string& line : lines) {
    (*s)->write(line + "\n");
    absl::StatusOr<std::string> echoed = co_await (*s)->readLine();
    if (!echoed.ok()) {
      out->last = echoed.status();
      break;
    }
    out->seen.push_back(*echoed);
  }
  out->done = true;
  co_return absl::OkStatus();  // the last copy of *s goes: the connection closes
}

TEST_P(StreamTest, ConnectStreamTalksAndClosesWhenTheStreamIsLetGo) {
  auto echo = Factory::forProtocol<Echo>();
  std::unique_ptr<Reactor> reactor = NewReactor();
  Address server = Listen(echo.get());
  auto endpoint = clientFromString(reactor.get(), absl::StrCat("tcp:127.0.0.1:", server.port()));
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  Outcome out;
  Deferred<Unit> done = client(endpoint->get(), {"one", "two"}, &out);
  ASSERT_TRUE(RunUntil(*reactor, [&] { return out.done; }));
  EXPECT_TRUE(out.last.ok()) << out.last;
  EXPECT_EQ(out.seen, (std::vector<std::string>{"one", "two"}));
  // Both ends go: the client's because the stream was let go.
  ASSERT_TRUE(RunUntil(*reactor, [&] { return reactor->connectionCount() == 0; }));
  ASSERT_NE(done.result(), nullptr);
  EXPECT_TRUE(done.result()->ok());
}

TEST_P(StreamTest, ConnectStreamGivesWhyItFailed) {
  testing::SocketDir dir;
  std::unique_ptr<Reactor> reactor = NewReactor();
  auto endpoint = clientFromString(reactor.get(), "unix:" + dir.path("nobody.sock"));
  ASSERT_TRUE(endpoint.ok());
  Outcome out;
  Deferred<Unit> done = client(endpoint->get(), {"one"}, &out);
  ASSERT_TRUE(RunUntil(*reactor, [&] { return out.done; }));
  EXPECT_TRUE(IsConnectionRefused(out.last)) << out.last;
  EXPECT_TRUE(out.seen.empty());
}

TEST_P(StreamTest, CancellingTheCoroutineStopsTheConnectAttempt) {
  // A name whose look-up is held until the test lets it go.
  auto gate = std::make_shared<std::promise<void>>();
  std::shared_future<void> open = gate->get_future().share();
  ReactorOptions options;
  options.poller = GetParam();
  options.resolver = [open](const std::string&, int) -> absl::StatusOr<std::vector<Address>> {
    open.wait();
    return std::vector<Address>{*Address::Parse("127.0.0.1", 1)};
  };
  absl::StatusOr<std::unique_ptr<Reactor>> reactor = Reactor::Create(options);
  ASSERT_TRUE(reactor.ok()) << reactor.status();
  auto endpoint = clientFromString(reactor->get(), "tcp:held.test:80");
  ASSERT_TRUE(endpoint.ok());
  Outcome out;
  Deferred<Unit> done = client(endpoint->get(), {"one"}, &out);
  testing::PollerTest::Spin(**reactor);
  EXPECT_FALSE(out.done);
  done.cancel();  // cancels what it awaits: the connect
  EXPECT_TRUE(out.done);
  EXPECT_TRUE(IsConnectCancelled(out.last)) << out.last;
  gate->set_value();
  testing::PollerTest::Spin(**reactor);
  EXPECT_EQ((*reactor)->connectionCount(), 0u);
  EXPECT_EQ((*reactor)->connectorCount(), 0u);
}

INSTANTIATE_TEST_SUITE_P(AllPollers, StreamTest, ::testing::ValuesIn(PollerNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace twist
