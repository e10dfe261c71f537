// Stream transports through the real reactor and real sockets: every case
// of StreamTransportTest runs on every poller over TCP on 127.0.0.1, TCP on
// ::1 and a Unix socket file (and once over a Unix abstract name); TcpTest
// holds what only TCP has (resets, TCP options, IPv4 and IPv6 addresses,
// dual-stack), on every poller. The Unix-only cases are in unix_test.cc.

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "framework/errors.h"
#include "framework/protocol.h"
#include "framework/reactor.h"
#include "framework/tcp_connection.h"
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
using testing::RunBeside;
using testing::RunUntil;

// What a RecordingProtocol saw, kept outside it so it outlives it.
struct Record {
  std::vector<std::string> events;
  std::string received;
  absl::Status reason = absl::UnknownError("connectionLost not called");
  bool destroyed = false;
  Transport* transport = nullptr;
};

class RecordingProtocol : public Protocol {
 public:
  explicit RecordingProtocol(Record* r) : r_(r) {}
  ~RecordingProtocol() override {
    r_->events.push_back("destroyed");
    r_->destroyed = true;
  }
  void connectionMade() override {
    r_->events.push_back("made");
    r_->transport = transport();
  }
  void dataReceived(absl::string_view data) override {
    if (r_->events.back() != "data") r_->events.push_back("data");
    r_->received.append(data.data(), data.size());
  }
  void connectionLost(const absl::Status& reason) override {
    r_->events.push_back("lost");
    r_->reason = reason;
  }

 private:
  Record* r_;
};

using StreamTransportTest = testing::TransportTest;
using TcpTest = testing::PollerTest;

TEST_P(StreamTransportTest, LifecycleIsMadeDataLostThenDestroyed) {
  Record r;
  Factory factory([&] { return std::make_unique<RecordingProtocol>(&r); });
  auto reactor_ = NewReactor();
  Address addr = Listen(&factory);
  {
    BlockingClient c = Connect(addr);
    ASSERT_TRUE(c.SendAll("hello").ok());
  }  // closed: FIN
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return r.destroyed; }));
  EXPECT_THAT(r.events, ElementsAre("made", "data", "lost", "destroyed"));
  EXPECT_EQ(r.received, "hello");
  EXPECT_TRUE(IsConnectionDone(r.reason)) << r.reason;
  EXPECT_EQ(reactor_->connectionCount(), 0u);
}

// TCP-only: a reset (SO_LINGER 0) is TCP's; a Unix peer only ever closes.
TEST_P(TcpTest, PeerResetIsConnectionLost) {
  Record r;
  Factory factory([&] { return std::make_unique<RecordingProtocol>(&r); });
  auto reactor_ = NewReactor();
  Address addr = Listen(&factory);
  BlockingClient c = Connect(addr);
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return r.transport != nullptr; }));
  c.Reset();
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return r.destroyed; }));
  EXPECT_TRUE(IsConnectionLost(r.reason)) << r.reason;
}

TEST_P(StreamTransportTest, HostAndPeerAddresses) {
  Record r;
  Factory factory([&] { return std::make_unique<RecordingProtocol>(&r); });
  auto reactor_ = NewReactor();
  Address addr = Listen(&factory);
  if (isTcp()) {
    EXPECT_NE(addr.port(), 0) << "port 0 must report the real port";
  }
  BlockingClient c = Connect(addr);
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return r.transport != nullptr; }));
  EXPECT_EQ(r.transport->getHost(), addr);
  Address client_side = *Address::LocalOf(c.fd());
  EXPECT_EQ(r.transport->getPeer(), client_side);
  EXPECT_EQ(r.transport->getHost().family(), testing::FamilyOf(transport()));
}

// TCP-only: TCP_NODELAY and keep-alive are TcpTransport's.
TEST_P(TcpTest, TcpOptionsCanBeSet) {
  Record r;
  Factory factory([&] { return std::make_unique<RecordingProtocol>(&r); });
  auto reactor_ = NewReactor();
  BlockingClient c = Connect(Listen(&factory));
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return r.transport != nullptr; }));
  auto* tcp = dynamic_cast<TcpTransport*>(r.transport);
  ASSERT_NE(tcp, nullptr);
  EXPECT_TRUE(tcp->setTcpNoDelay(true).ok());
  EXPECT_TRUE(tcp->setTcpKeepAlive(true).ok());
  const int fd = testing::ServerEndOf(c);
  int on = 0;
  socklen_t len = sizeof(on);
  ASSERT_EQ(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len), 0);
  EXPECT_NE(on, 0);
  ASSERT_EQ(getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, &len), 0);
  EXPECT_NE(on, 0);
}

constexpr absl::string_view kTail = "written after the close was asked";

// Writes `total` bytes in pieces at connectionMade (far more than the socket
// buffer holds), then closes with loseConnection or abortConnection, then
// writes kTail.
class Blaster : public Protocol {
 public:
  Blaster(const std::string* data, bool abort, Record* r)
      : data_(data), abort_(abort), r_(r) {}
  void connectionMade() override {
    absl::string_view rest(*data_);
    int i = 0;
    while (!rest.empty()) {
      size_t n = std::min<size_t>(rest.size(), 1000 + (i++ % 7) * 4096);
      if (i % 3 == 0 && n > 10) {
        absl::string_view pieces[] = {rest.substr(0, 10), rest.substr(10, n - 10)};
        transport()->writeSequence(pieces);
      } else {
        transport()->write(rest.substr(0, n));
      }
      rest.remove_prefix(n);
    }
    r_->events.push_back(absl::StrCat("buffered>0:", transport()->bufferedBytes() > 0));
    if (abort_) {
      transport()->abortConnection();
    } else {
      transport()->loseConnection();
    }
    // Twisted: still sent after loseConnection(), dropped after abort.
    transport()->write(kTail);
  }
  void connectionLost(const absl::Status& reason) override {
    r_->reason = reason;
    r_->destroyed = true;
  }

 private:
  const std::string* data_;
  bool abort_;
  Record* r_;
};

TEST_P(StreamTransportTest, PartialWritesFinishInOrderAndLoseConnectionFlushesFirst) {
  const std::string data = Pattern(8 << 20, 1);
  Record r;
  Factory factory([&] { return std::make_unique<Blaster>(&data, false, &r); });
  auto reactor_ = NewReactor();
  Address addr = Listen(&factory, kSmallBuffers);
  BlockingClient c = Connect(addr, kSmallBuffers);
  // Nothing is read until the server has written it all: 8 MB cannot fit in
  // the pinned kernel buffers, so most of it has to be queued and sent later.
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return !r.events.empty(); }));
  absl::StatusOr<std::string> got;
  ASSERT_TRUE(RunBeside(*reactor_, [&] { got = c.ReadToEof(); }));
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return r.destroyed; }));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), data.size() + kTail.size());
  EXPECT_TRUE(*got == absl::StrCat(data, kTail)) << "bytes reordered or corrupted";
  EXPECT_THAT(r.events, ElementsAre("buffered>0:1"))
      << "the kernel took everything at once; the partial-write path was not exercised";
  EXPECT_TRUE(IsConnectionDone(r.reason)) << r.reason;
}

TEST_P(StreamTransportTest, AbortConnectionDropsUnsentData) {
  const std::string data = Pattern(16 << 20, 2);
  Record r;
  Factory factory([&] { return std::make_unique<Blaster>(&data, true, &r); });
  auto reactor_ = NewReactor();
  Address addr = Listen(&factory, kSmallBuffers);
  BlockingClient c = Connect(addr, kSmallBuffers);
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return r.destroyed; }));
  EXPECT_TRUE(IsConnectionAborted(r.reason)) << r.reason;
  EXPECT_THAT(r.events, ElementsAre("buffered>0:1")) << "nothing was left to drop";
  absl::StatusOr<std::string> got = c.ReadUntilClosed();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_LT(got->size(), data.size());
  EXPECT_EQ(*got, data.substr(0, got->size())) << "nothing after the abort is sent";
}

TEST_P(StreamTransportTest, WritesToAGonePeerNeverRaiseSigpipe) {
  // SIGPIPE at its default action kills the process: this test dies if a
  // send lacks MSG_NOSIGNAL.
  struct sigaction old_action;
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  ASSERT_EQ(sigaction(SIGPIPE, &dfl, &old_action), 0);
  Record r;
  Factory factory([&] { return std::make_unique<RecordingProtocol>(&r); });
  auto reactor_ = NewReactor();
  Address addr = Listen(&factory);
  BlockingClient c = Connect(addr);
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return r.transport != nullptr; }));
  const int server_fd = testing::ServerEndOf(c);
  ASSERT_GE(server_fd, 0);
  c.Reset();  // a TCP reset; over Unix a plain close
  if (isTcp()) {
    // The reset has reached the server's socket (loopback delivers it within
    // close()); the loop has not looked at it yet. Its first error,
    // ECONNRESET, is consumed here, so the next send fails with EPIPE, the
    // one that raises SIGPIPE. (A Unix send to a closed peer fails with
    // EPIPE at once.)
    tcp_info info = {};
    socklen_t len = sizeof(info);
    ASSERT_EQ(getsockopt(server_fd, IPPROTO_TCP, TCP_INFO, &info, &len), 0);
    ASSERT_EQ(info.tcpi_state, TCP_CLOSE) << "the reset has not arrived";
    int error = 0;
    len = sizeof(error);
    ASSERT_EQ(getsockopt(server_fd, SOL_SOCKET, SO_ERROR, &error, &len), 0);
    ASSERT_EQ(error, ECONNRESET);
  }
  r.transport->write("to nobody");
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return r.destroyed; }));
  EXPECT_TRUE(IsConnectionLost(r.reason)) << r.reason;
  EXPECT_THAT(std::string(r.reason.message()), ::testing::HasSubstr("Broken pipe"));
  sigaction(SIGPIPE, &old_action, nullptr);
}

// Protocols that know each other through their factory: a line "close N"
// or "abort N" closes connection N from inside this one's callback.
struct Registry {
  std::vector<Protocol*> conns;
  std::vector<std::string> events;
};

class Closer : public Protocol {
 public:
  explicit Closer(Registry* reg) : reg_(reg) {}
  void connectionMade() override {
    id_ = static_cast<int>(reg_->conns.size());
    reg_->conns.push_back(this);
  }
  void dataReceived(absl::string_view data) override {
    EXPECT_FALSE(lost_) << "dataReceived after connectionLost";
    reg_->events.push_back(absl::StrCat(id_, ":data"));
    for (Protocol* other : reg_->conns) {
      if (other == nullptr || other == this) continue;
      if (data == "abort") other->transport()->abortConnection();
      if (data == "close") other->transport()->loseConnection();
    }
    transport()->write("ok");
  }
  void connectionLost(const absl::Status& reason) override {
    lost_ = true;
    reg_->conns[id_] = nullptr;
    reg_->events.push_back(absl::StrCat(id_, ":lost:", reason.ok() ? "done" : reason.ToString()));
  }

 private:
  Registry* reg_;
  int id_ = -1;
  bool lost_ = false;
};

TEST_P(StreamTransportTest, ClosingAnotherConnectionFromACallbackIsSafe) {
  Registry reg;
  Factory factory([&] { return std::make_unique<Closer>(&reg); });
  auto reactor_ = NewReactor();
  Address addr = Listen(&factory);
  BlockingClient a = Connect(addr);
  BlockingClient b = Connect(addr);
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return reg.conns.size() == 2; }));
  ASSERT_TRUE(a.SendAll("close").ok());
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return reg.conns[1] == nullptr; }));
  EXPECT_THAT(reg.events, ElementsAre("0:data", "1:lost:done"));
  EXPECT_EQ(*a.ReadExactly(2), "ok");
  EXPECT_EQ(*b.ReadToEof(), "");
  // The survivor still works.
  ASSERT_TRUE(a.SendAll("x").ok());
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return reg.events.size() == 3; }));
  EXPECT_EQ(reg.events[2], "0:data");
  EXPECT_EQ(*a.ReadExactly(2), "ok");
}

TEST_P(StreamTransportTest, ConnectionClosedByAnotherInTheSameTurnGetsNoMoreCallbacks) {
  Registry reg;
  Factory factory([&] { return std::make_unique<Closer>(&reg); });
  auto reactor_ = NewReactor();
  Address addr = Listen(&factory);
  BlockingClient a = Connect(addr);
  BlockingClient b = Connect(addr);
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return reg.conns.size() == 2; }));
  // Both are readable before the next poll; whichever runs first aborts the
  // other, whose pending readiness must then be ignored.
  ASSERT_TRUE(a.SendAll("abort").ok());
  ASSERT_TRUE(b.SendAll("abort").ok());
  for (const BlockingClient* client : {&a, &b}) {
    ASSERT_EQ(testing::PendingBytes(testing::ServerEndOf(*client)), 5)
        << "both connections must be readable in the same turn";
  }
  // One turn sees both: the first aborts the second, whose event is dropped.
  reactor_->iterate(testing::kTimeout);
  EXPECT_TRUE(reg.conns[0] == nullptr || reg.conns[1] == nullptr);
  for (int i = 0; i < 5; ++i) reactor_->iterate();
  ASSERT_EQ(reg.events.size(), 2u);
  EXPECT_THAT(reg.events[1], ::testing::HasSubstr(":lost:ABORTED"));
  EXPECT_EQ(reg.events[0][0] == '0' ? '1' : '0', reg.events[1][0]);
}

TEST_P(StreamTransportTest, PauseProducingHoldsDataUntilResumed) {
  Record r;
  Factory factory([&] { return std::make_unique<RecordingProtocol>(&r); });
  auto reactor_ = NewReactor();
  Address addr = Listen(&factory);
  BlockingClient c = Connect(addr);
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return r.transport != nullptr; }));
  r.transport->pauseProducing();
  ASSERT_TRUE(c.SendAll("held").ok());  // in our receive queue when this returns
  for (int i = 0; i < 5; ++i) reactor_->iterate(absl::Milliseconds(1));
  EXPECT_EQ(r.received, "");
  r.transport->resumeProducing();
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return r.received == "held"; }));
}

TEST_P(StreamTransportTest, FactoryCanRefuseAConnection) {
  int built = 0, started = 0, stopped = 0;
  class Counting : public Factory {
   public:
    Counting(int* b, int* s, int* t) : b_(b), s_(s), t_(t) {}
    std::unique_ptr<Protocol> buildProtocol(const Address&) override {
      ++*b_;
      return nullptr;
    }
    void startFactory() override { ++*s_; }
    void stopFactory() override { ++*t_; }
    int *b_, *s_, *t_;
  } factory(&built, &started, &stopped);
  auto reactor_ = NewReactor();
  Port* p1 = ListenPort(&factory);
  Port* p2 = ListenPort(&factory);
  EXPECT_EQ(started, 1);
  BlockingClient c = Connect(p1->getHost());
  absl::StatusOr<std::string> got;
  ASSERT_TRUE(RunBeside(*reactor_, [&] { got = c.ReadToEof(); }));
  EXPECT_TRUE(got.ok()) << "a refused connection must be closed: " << got.status();
  EXPECT_EQ(built, 1);
  p1->stopListening();
  EXPECT_EQ(stopped, 0);
  p2->stopListening();
  p2->stopListening();
  EXPECT_EQ(stopped, 1);
}

// TCP-only: ports, IPv4 addresses and names (unix_test has a path's errors).
TEST_P(TcpTest, ListenOnAPortInUseIsAClearError) {
  Record r;
  Factory factory([&] { return std::make_unique<RecordingProtocol>(&r); });
  auto reactor_ = NewReactor();
  Address addr = Listen(&factory);
  absl::StatusOr<Port*> again = reactor_->listenTCP(addr.port(), &factory, 50, "127.0.0.1");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().message(),
            absl::StrCat("cannot listen on 127.0.0.1:", addr.port(),
                         ": Address already in use"));
  EXPECT_FALSE(reactor_->listenTCP(65536, &factory).ok());
  // A name is resolved; .invalid never resolves (RFC 6761). Bounded, should
  // the machine's resolver be slow to say so.
  setenv("RES_OPTIONS", "timeout:1 attempts:1", 1);
  EXPECT_FALSE(reactor_->listenTCP(0, &factory, 50, "not-an-address.invalid").ok());
}

TEST_P(StreamTransportTest, EchoesEightMegabytesByteExact) {
  auto factory = Factory::forProtocol<Echo>();
  auto reactor_ = NewReactor();
  Address addr = Listen(factory.get());
  const std::string data = Pattern(8 << 20, 4);
  BlockingClient c = Connect(addr);
  absl::StatusOr<std::string> got;
  ASSERT_TRUE(RunBeside(*reactor_, [&] {
    std::thread writer([&] { EXPECT_TRUE(c.SendAll(data).ok()); });
    got = c.ReadExactly(data.size());
    writer.join();
  }));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == data);
}

TEST_P(StreamTransportTest, EchoesFiveHundredConcurrentClients) {
  constexpr int kClients = 500;
  // Both ends of 500 connections live in this process: over 1000
  // descriptors, near the usual soft limit of 1024.
  rlimit lim;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &lim), 0);
  if (lim.rlim_cur < 4096 && lim.rlim_max > lim.rlim_cur) {
    lim.rlim_cur = std::min<rlim_t>(lim.rlim_max, 4096);
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lim), 0);
  }
  if (lim.rlim_cur < 2 * kClients + 100) {
    GTEST_SKIP() << "needs " << 2 * kClients + 100 << " descriptors; the limit is "
                 << lim.rlim_cur;
  }
  auto factory = Factory::forProtocol<Echo>();
  auto reactor_ = NewReactor();
  Address addr = Listen(factory.get());
  std::atomic<bool> done{false};
  std::atomic<int> good{0};
  size_t most_open = 0;
  std::thread clients([&] {
    std::vector<BlockingClient> cs;
    for (int i = 0; i < kClients; ++i) {
      absl::StatusOr<BlockingClient> c = BlockingClient::Connect(addr);
      if (!c.ok()) break;
      cs.push_back(*std::move(c));
    }
    for (int i = 0; i < static_cast<int>(cs.size()); ++i) {
      cs[i].SendAll(absl::StrCat("client ", i, " says ", Pattern(64, i))).IgnoreError();
    }
    for (int i = 0; i < static_cast<int>(cs.size()); ++i) {
      std::string want = absl::StrCat("client ", i, " says ", Pattern(64, i));
      absl::StatusOr<std::string> got = cs[i].ReadExactly(want.size());
      if (got.ok() && *got == want) ++good;
    }
    done = true;
  });
  bool finished = RunUntil(*reactor_, [&] {
    most_open = std::max(most_open, reactor_->connectionCount());
    return done.load();
  });
  clients.join();
  ASSERT_TRUE(finished);
  EXPECT_EQ(good.load(), kClients);
  EXPECT_EQ(most_open, static_cast<size_t>(kClients));
}

// TCP-only: how IPv6 addresses print (the tcp6 cases above echo over ::1).
TEST_P(TcpTest, IPv6AddressesPrintBracketed) {
  Record r;
  Factory factory([&] { return std::make_unique<RecordingProtocol>(&r); });
  auto reactor_ = NewReactor();
  absl::StatusOr<Port*> port = reactor_->listenTCP(0, &factory, 50, "::1");
  if (!port.ok()) GTEST_SKIP() << "no IPv6 loopback (::1) here: " << port.status();
  const int p = (*port)->getHost().port();
  EXPECT_EQ((*port)->getHost().ToString(), absl::StrCat("[::1]:", p));
  BlockingClient c = Connect((*port)->getHost());
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return r.transport != nullptr; }));
  EXPECT_EQ(r.transport->getHost().ToString(), absl::StrCat("[::1]:", p));
  EXPECT_EQ(r.transport->getPeer().ToString(),
            absl::StrCat("[::1]:", Address::LocalOf(c.fd())->port()));
  // Error messages name the address the same way.
  absl::StatusOr<Port*> again = reactor_->listenTCP(p, &factory, 50, "::1");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().message(),
            absl::StrCat("cannot listen on [::1]:", p, ": Address already in use"));
}

// TCP-only below: dual-stack is IPv6's.

// Binds an IPv4 TCP socket to 127.0.0.1:`port`: it fails with EADDRINUSE
// exactly when a dual-stack port already serves IPv4 on that port.
int BindIPv4(int port, int type = SOCK_STREAM) {
  int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  Address a = *Address::Parse("127.0.0.1", port);
  int rc = ::bind(fd, a.sockaddr_ptr(), a.length());
  int e = rc == 0 ? 0 : errno;
  ::close(fd);
  return e;
}

TEST_P(TcpTest, DualStackPortAcceptsAnIPv4Client) {
  Record r;
  Factory factory([&] { return std::make_unique<RecordingProtocol>(&r); });
  auto reactor_ = NewReactor();
  absl::StatusOr<Port*> port = reactor_->listenTCP(0, &factory, 50, "::");
  if (!port.ok()) GTEST_SKIP() << "no IPv6 here (listening on '::' failed): " << port.status();
  const int p = (*port)->getHost().port();
  EXPECT_EQ((*port)->getHost().ToString(), absl::StrCat("[::]:", p));
  // The port holds IPv4's side too.
  EXPECT_EQ(BindIPv4(p), EADDRINUSE);
  BlockingClient c = Connect(*Address::Parse("127.0.0.1", p));
  ASSERT_TRUE(c.SendAll("four").ok());
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return r.received == "four"; }));
  // Reported as IPv4, not as [::ffff:127.0.0.1].
  EXPECT_EQ(r.transport->getPeer(), *Address::LocalOf(c.fd()));
  EXPECT_EQ(r.transport->getPeer().family(), AF_INET);
  EXPECT_EQ(r.transport->getHost().ToString(), absl::StrCat("127.0.0.1:", p));
}

TEST_P(TcpTest, DualStackOffLeavesIPv4ToAnotherPort) {
  auto factory = Factory::forProtocol<Echo>();
  auto reactor_ = NewReactor();
  // IPv4's side of the port number is free for an IPv4 socket. Another
  // process on the machine may hold that number for IPv4 by chance, so a
  // few ports are tried: a v6-only port that took IPv4 too fails every time.
  int errors[5];
  for (int& error : errors) {
    absl::StatusOr<Port*> port =
        reactor_->listenTCP(0, factory.get(), 50, "::", DualStack::kOff);
    if (!port.ok()) GTEST_SKIP() << "no IPv6 here (listening on '::' failed): " << port.status();
    error = BindIPv4((*port)->getHost().port());
    if (error == 0) return;
  }
  ADD_FAILURE() << "the IPv4 side of 5 v6-only ports was taken (errno " << errors[0] << ", "
                << errors[4] << ")";
}

TEST_P(StreamTransportTest, EchoAnswersAHalfClosedPeerInFullThenCloses) {
  auto factory = Factory::forProtocol<Echo>();
  auto reactor_ = NewReactor();
  Address addr = Listen(factory.get());
  const std::string data = Pattern(1 << 20, 5);
  BlockingClient c = Connect(addr);
  absl::StatusOr<std::string> got;
  ASSERT_TRUE(RunBeside(*reactor_, [&] {
    std::thread writer([&] {
      EXPECT_TRUE(c.SendAll(data).ok());
      c.ShutdownWrite();
    });
    got = c.ReadToEof();
    writer.join();
  }));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == data);
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return reactor_->connectionCount() == 0; }));
}

TEST_P(StreamTransportTest, StopClosesConnectionsAndRunReturns) {
  Record r;
  Factory factory([&] { return std::make_unique<RecordingProtocol>(&r); });
  auto reactor_ = NewReactor();
  Address addr = Listen(&factory);
  BlockingClient c = Connect(addr);
  reactor_->callLater(absl::ZeroDuration(), [&] {
    // Once connected, stop; run() must close the connection and return.
    if (r.transport != nullptr) reactor_->stop();
  });
  reactor_->callWhenRunning([&] {});
  std::function<void()> poll_stop;
  poll_stop = [&] {
    if (r.transport != nullptr) {
      reactor_->stop();
    } else {
      reactor_->callLater(absl::Milliseconds(1), poll_stop);
    }
  };
  reactor_->callLater(absl::Milliseconds(1), poll_stop);
  reactor_->callLater(testing::kTimeout, [&] { reactor_->stop(); });
  reactor_->run();
  EXPECT_TRUE(r.destroyed);
  EXPECT_TRUE(IsConnectionDone(r.reason)) << r.reason;
  EXPECT_EQ(*c.ReadToEof(), "");
}

// Closes, then writes more than the pinned kernel buffers hold: nothing was
// queued when loseConnection() was asked, yet all of it must arrive.
class CloseThenWrite : public Protocol {
 public:
  CloseThenWrite(const std::string* data, Record* r) : data_(data), r_(r) {}
  void connectionMade() override {
    transport()->loseConnection();
    EXPECT_TRUE(transport()->disconnecting());
    transport()->write(*data_);
    r_->events.push_back(absl::StrCat("buffered>0:", transport()->bufferedBytes() > 0));
  }
  void connectionLost(const absl::Status& reason) override {
    r_->reason = reason;
    r_->destroyed = true;
  }

 private:
  const std::string* data_;
  Record* r_;
};

TEST_P(StreamTransportTest, WritesAfterLoseConnectionAreSentBeforeTheClose) {
  const std::string data = Pattern(4 << 20, 9);
  Record r;
  Factory factory([&] { return std::make_unique<CloseThenWrite>(&data, &r); });
  auto reactor_ = NewReactor();
  BlockingClient c = Connect(Listen(&factory, kSmallBuffers), kSmallBuffers);
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return !r.events.empty(); }));
  EXPECT_THAT(r.events, ElementsAre("buffered>0:1")) << "the queued path was not exercised";
  absl::StatusOr<std::string> got;
  ASSERT_TRUE(RunBeside(*reactor_, [&] { got = c.ReadToEof(); }));
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return r.destroyed; }));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == data) << "got " << got->size() << " of " << data.size() << " bytes";
  EXPECT_TRUE(IsConnectionDone(r.reason)) << r.reason;
}

// Calls every loop-driving method from inside its dataReceived.
class Reenters : public Protocol {
 public:
  Reenters(Reactor* reactor, std::vector<std::string>* events)
      : reactor_(reactor), events_(events) {}
  void dataReceived(absl::string_view data) override {
    events_->push_back("data");
    transport()->loseConnection();
    reactor_->callWhenRunning([this] { events_->push_back("when-running"); });
    reactor_->runUntilCurrent();
    reactor_->iterate();
    reactor_->run();
    events_->push_back("after");
    reactor_->stop();
  }
  void connectionLost(const absl::Status&) override { events_->push_back("lost"); }

 private:
  Reactor* reactor_;
  std::vector<std::string>* events_;
};

TEST_P(StreamTransportTest, NothingReentersTheLoopFromACallback) {
  std::vector<std::string> events;
  std::unique_ptr<Factory> factory;
  auto reactor_ = NewReactor();
  factory = std::make_unique<Factory>(
      [&] { return std::make_unique<Reenters>(reactor_.get(), &events); });
  BlockingClient c = Connect(Listen(factory.get()));
  ASSERT_TRUE(c.SendAll("x").ok());
  DelayedCall bound = reactor_->callLater(testing::kTimeout, [&] { reactor_->stop(); });
  ::testing::internal::CaptureStderr();
  reactor_->run();
  const std::string err = ::testing::internal::GetCapturedStderr();
  bound.cancel().IgnoreError();
  // The close asked for in dataReceived waits until it returns.
  EXPECT_THAT(events, ElementsAre("data", "when-running", "after", "lost"));
  EXPECT_EQ(err,
            "twist: Reactor::runUntilCurrent() called from inside a reactor callback; "
            "ignored (the loop cannot be re-entered)\n")
      << "said once, for the first call";
  reactor_.reset();
}

TEST_P(StreamTransportTest, AFactoryDestroyedBeforeTheReactorIsNotCalled) {
  // The README's order: the reactor first, then the factory, so the factory
  // goes first when main() returns with the port still listening.
  int stopped = 0;
  class Counting : public Factory {
   public:
    explicit Counting(int* stopped) : stopped_(stopped) {}
    std::unique_ptr<Protocol> buildProtocol(const Address&) override {
      return std::make_unique<Echo>();
    }
    void stopFactory() override { ++*stopped_; }
    int* stopped_;
  };
  auto reactor_ = NewReactor();
  auto factory = std::make_unique<Counting>(&stopped);
  Port* port = ListenPort(factory.get());
  Address addr = port->getHost();
  BlockingClient served = Connect(addr);
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return reactor_->connectionCount() == 1; }));
  factory.reset();
  // A client arriving now is not built by the destroyed factory: the port
  // stops listening and says so.
  BlockingClient late = Connect(addr);
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return !port->listening(); }));
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            absl::StrCat("twist: the factory of the port on ", addr.ToString(),
                         " was destroyed; it stops listening\n"));
  EXPECT_EQ(reactor_->connectionCount(), 1u);
  reactor_.reset();  // under ASan, a call into the factory here would fail
  EXPECT_EQ(stopped, 0);
}

INSTANTIATE_TEST_SUITE_P(AllTransports, StreamTransportTest,
                         ::testing::ValuesIn(testing::PollersAndTransports()),
                         testing::PollerTransportName);

INSTANTIATE_TEST_SUITE_P(AllPollers, TcpTest,
                         ::testing::ValuesIn(PollerNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace twist
