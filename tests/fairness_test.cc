// Fairness, as docs/design.md promises it: one read() per readiness event of
// a connection (a connection with plenty of input cannot starve another), and
// at most 64 accepts per readiness event of a listening port (a flood of
// connects cannot starve established connections). Each test turns the loop
// exactly once and counts what happened in that turn, on every poller.

#include <sys/ioctl.h>
#include <sys/socket.h>

#include <memory>
#include <string>
#include <vector>

#include "framework/protocol.h"
#include "framework/reactor.h"
#include "framework/tcp_connection.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using testing::BlockingClient;
using testing::RunUntil;

// What one connection saw; kept outside the protocol so that it outlives it.
struct Reads {
  int calls = 0;  // dataReceived calls
  size_t bytes = 0;
  int fd = -1;  // the server side's socket
};

class CountingProtocol : public Protocol {
 public:
  explicit CountingProtocol(std::vector<Reads>* all) : all_(all) {}
  void connectionMade() override {
    index_ = all_->size();
    all_->push_back({});
    const int fd = static_cast<TcpConnection*>(transport())->fd();
    (*all_)[index_].fd = fd;
    // Room for far more input than one read takes, whatever the kernel's
    // default receive buffer (autotuning is off once it is set).
    const int rcvbuf = 1024 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  }
  void dataReceived(absl::string_view data) override {
    ++(*all_)[index_].calls;
    (*all_)[index_].bytes += data.size();
  }

 private:
  std::vector<Reads>* all_;
  size_t index_ = 0;
};

// Bytes waiting in a socket's receive queue.
int Unread(int fd) {
  int n = -1;
  if (::ioctl(fd, FIONREAD, &n) != 0) return -1;
  return n;
}

class FairnessTest : public testing::PollerTest {};

TEST_P(FairnessTest, OneReadPerReadinessEventSoABusyConnectionCannotStarveAnother) {
  std::vector<Reads> reads;
  Factory factory([&] { return std::make_unique<CountingProtocol>(&reads); });
  auto reactor = NewReactor();
  Address addr = Listen(&factory);
  BlockingClient busy = Connect(addr);
  BlockingClient quiet = Connect(addr);
  ASSERT_TRUE(RunUntil(*reactor, [&] { return reads.size() == 2; }));

  // The busy client sends as much as the kernel takes at once (at most 4 MiB,
  // and the server's side holds up to 1 MiB): far more than one read of
  // kReadBufferSize bytes.
  const std::string chunk = testing::Pattern(64 * 1024);
  size_t sent = 0;
  while (sent < 4 * 1024 * 1024) {
    ssize_t n = ::send(busy.fd(), chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  ASSERT_TRUE(quiet.SendAll("hello").ok());
  // The case under test really occurred: the busy connection has more input
  // waiting than one read takes, and the quiet one has input too. (On
  // loopback, send() hands the bytes to the peer's queue before it returns.)
  ASSERT_GT(Unread(reads[0].fd), static_cast<int>(kReadBufferSize))
      << "sent " << sent;
  ASSERT_EQ(Unread(reads[1].fd), 5);

  reactor->iterate();
  EXPECT_EQ(reads[0].calls, 1) << "a readiness event must get exactly one read";
  EXPECT_EQ(reads[0].bytes, kReadBufferSize);
  EXPECT_EQ(reads[1].calls, 1) << "the quiet connection was served in the same turn";
  EXPECT_EQ(reads[1].bytes, 5u);

  // Level-triggered: the rest of the busy connection's input is read on the
  // following turns, one read each.
  reactor->iterate();
  EXPECT_EQ(reads[0].calls, 2);
  EXPECT_EQ(reads[1].calls, 1);
  ASSERT_TRUE(RunUntil(*reactor, [&] { return reads[0].bytes == sent; }));
}

TEST_P(FairnessTest, AtMostSixtyFourAcceptsPerReadinessEventOfAListeningPort) {
  std::vector<Reads> reads;
  Factory factory([&] { return std::make_unique<CountingProtocol>(&reads); });
  auto reactor = NewReactor();
  Address addr = Listen(&factory);  // backlog 1024
  // A blocking connect returns once the handshake is done, that is once the
  // connection waits in the port's accept queue.
  constexpr int kClients = 100;
  std::vector<BlockingClient> clients;
  for (int i = 0; i < kClients; ++i) clients.push_back(Connect(addr));

  reactor->iterate();
  EXPECT_EQ(reactor->connectionCount(), 64u);
  reactor->iterate();
  EXPECT_EQ(reactor->connectionCount(), static_cast<size_t>(kClients));
}

INSTANTIATE_TEST_SUITE_P(AllPollers, FairnessTest,
                         ::testing::ValuesIn(PollerNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace twist
