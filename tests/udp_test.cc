// UDP ports (listenUDP, DatagramProtocol) through the real reactor and real
// loopback sockets, on every poller; and the udp_echo_server program with
// Python's socket module as its client.

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "framework/datagram_protocol.h"
#include "framework/errors.h"
#include "framework/reactor.h"
#include "framework/udp_port.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using ::testing::ElementsAre;
using testing::kTimeout;
using testing::RunUntil;
using testing::Subprocess;

// A plain blocking UDP socket for the peer side, every receive bounded.
class UdpSocket {
 public:
  // Bound to `host`, any port. Fails the test if it cannot be.
  explicit UdpSocket(const std::string& host = "127.0.0.1") {
    Address a = *Address::Parse(host, 0);
    fd_ = ::socket(a.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd_, 0) << strerror(errno);
    EXPECT_EQ(::bind(fd_, a.sockaddr_ptr(), a.length()), 0) << strerror(errno);
    timeval tv = {static_cast<time_t>(absl::ToInt64Seconds(kTimeout)), 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~UdpSocket() { close(); }
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  Address address() const { return *Address::LocalOf(fd_); }
  int port() const { return address().port(); }
  void SendTo(absl::string_view data, const Address& to) {
    ASSERT_EQ(::sendto(fd_, data.data(), data.size(), 0, to.sockaddr_ptr(), to.length()),
              static_cast<ssize_t>(data.size()))
        << strerror(errno);
  }
  // The next datagram and its sender; fails after kTimeout.
  absl::StatusOr<std::pair<std::string, Address>> Receive() {
    std::string buf(70000, '\0');
    sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    ssize_t n = ::recvfrom(fd_, &buf[0], buf.size(), 0, reinterpret_cast<sockaddr*>(&ss), &len);
    if (n < 0) return absl::ErrnoToStatus(errno, "recvfrom");
    buf.resize(n);
    return std::make_pair(buf, Address::FromSockaddr(reinterpret_cast<sockaddr*>(&ss), len));
  }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

bool HaveIPv6Loopback() {
  int fd = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  Address a = *Address::Parse("::1", 0);
  bool ok = ::bind(fd, a.sockaddr_ptr(), a.length()) == 0;
  ::close(fd);
  return ok;
}

// What a RecordingProtocol saw, kept outside it so it outlives it.
struct Record {
  std::vector<std::string> events;  // start, data:<payload>, truncated:<size>, refused, stop
  std::vector<Address> senders;
  std::vector<std::string> truncated_heads;
  int refused = 0;
  bool nested = false;  // a callback ran inside another one
  DatagramTransport* transport_at_start = nullptr;
};

class RecordingProtocol : public DatagramProtocol {
 public:
  explicit RecordingProtocol(Record* r, bool echo = false) : r_(r), echo_(echo) {}
  void startProtocol() override {
    Enter();
    r_->events.push_back("start");
    r_->transport_at_start = transport();
    Leave();
  }
  void stopProtocol() override {
    Enter();
    r_->events.push_back("stop");
    Leave();
  }
  void datagramReceived(absl::string_view data, const Address& addr) override {
    Enter();
    r_->events.push_back(absl::StrCat("data:", data));
    r_->senders.push_back(addr);
    if (echo_) {
      EXPECT_TRUE(transport()->write(data, addr).ok());
    }
    if (on_data) on_data();
    Leave();
  }
  void datagramTruncated(absl::string_view head, size_t full_size,
                         const Address& addr) override {
    Enter();
    r_->events.push_back(absl::StrCat("truncated:", full_size));
    r_->truncated_heads.emplace_back(head);
    r_->senders.push_back(addr);
    Leave();
  }
  void connectionRefused() override {
    Enter();
    r_->events.push_back("refused");
    ++r_->refused;
    Leave();
  }
  std::function<void()> on_data;

 private:
  void Enter() {
    if (inside_) r_->nested = true;
    inside_ = true;
  }
  void Leave() { inside_ = false; }
  Record* r_;
  bool echo_;
  bool inside_ = false;
};

using UdpTest = testing::PollerTest;

TEST_P(UdpTest, EchoesEachDatagramToItsSender) {
  Record r;
  RecordingProtocol proto(&r, /*echo=*/true);
  auto reactor = NewReactor();
  absl::StatusOr<UdpPort*> port = reactor->listenUDP(0, &proto, "127.0.0.1");
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_THAT(r.events, ElementsAre("start"));
  EXPECT_EQ(r.transport_at_start, *port);
  Address server = (*port)->getHost();
  EXPECT_EQ(server.host(), "127.0.0.1");
  EXPECT_NE(server.port(), 0);
  EXPECT_GE((*port)->fileno(), 0);

  UdpSocket a, b;
  a.SendTo("from a", server);
  b.SendTo("from b", server);
  ASSERT_TRUE(RunUntil(*reactor, [&] { return r.senders.size() == 2; }));
  EXPECT_THAT(r.events, ElementsAre("start", "data:from a", "data:from b"));
  EXPECT_EQ(r.senders[0], a.address());
  EXPECT_EQ(r.senders[1], b.address());
  auto got_a = a.Receive();
  ASSERT_TRUE(got_a.ok()) << got_a.status();
  EXPECT_EQ(got_a->first, "from a");
  EXPECT_EQ(got_a->second, server);
  auto got_b = b.Receive();
  ASSERT_TRUE(got_b.ok()) << got_b.status();
  EXPECT_EQ(got_b->first, "from b");
  EXPECT_FALSE(r.nested);
}

TEST_P(UdpTest, KeepsDatagramBoundaries) {
  Record r;
  RecordingProtocol proto(&r);
  auto reactor = NewReactor();
  UdpPort* port = *reactor->listenUDP(0, &proto, "127.0.0.1", 1000);
  UdpSocket c;
  const std::string big(1000, 'b');  // exactly maxPacketSize: whole
  c.SendTo("one", port->getHost());
  c.SendTo("", port->getHost());  // an empty datagram is a datagram
  c.SendTo(big, port->getHost());
  c.SendTo("two", port->getHost());
  ASSERT_TRUE(RunUntil(*reactor, [&] { return r.events.size() == 5; }));
  EXPECT_THAT(r.events, ElementsAre("start", "data:one", "data:", absl::StrCat("data:", big),
                                    "data:two"));
  EXPECT_EQ(port->truncatedDatagrams(), 0u);
}

TEST_P(UdpTest, LongDatagramIsReportedTruncatedNotDelivered) {
  Record r;
  RecordingProtocol proto(&r);
  auto reactor = NewReactor();
  UdpPort* port = *reactor->listenUDP(0, &proto, "127.0.0.1", 100);
  UdpSocket c;
  const std::string fits = testing::Pattern(100, 1);
  const std::string one_over = testing::Pattern(101, 2);
  const std::string far_over = testing::Pattern(5000, 3);
  c.SendTo(fits, port->getHost());
  c.SendTo(one_over, port->getHost());
  c.SendTo(far_over, port->getHost());
  c.SendTo("end", port->getHost());
  ASSERT_TRUE(RunUntil(*reactor, [&] { return r.events.size() == 5; }));
  EXPECT_THAT(r.events, ElementsAre("start", absl::StrCat("data:", fits), "truncated:101",
                                    "truncated:5000", "data:end"));
  ASSERT_EQ(r.truncated_heads.size(), 2u);
  EXPECT_EQ(r.truncated_heads[0], one_over.substr(0, 100));
  EXPECT_EQ(r.truncated_heads[1], far_over.substr(0, 100));
  EXPECT_EQ(r.senders[1], c.address());
  EXPECT_EQ(port->truncatedDatagrams(), 2u);
}

TEST_P(UdpTest, IPv6LoopbackPrintsBracketedAddresses) {
  if (!HaveIPv6Loopback()) GTEST_SKIP() << "no IPv6 loopback (::1) on this machine";
  Record r;
  RecordingProtocol proto(&r, /*echo=*/true);
  auto reactor = NewReactor();
  absl::StatusOr<UdpPort*> port = reactor->listenUDP(0, &proto, "::1");
  ASSERT_TRUE(port.ok()) << port.status();
  Address server = (*port)->getHost();
  EXPECT_TRUE(server.isIPv6());
  EXPECT_EQ(server.ToString(), absl::StrCat("[::1]:", server.port()));
  UdpSocket c("::1");
  c.SendTo("six", server);
  ASSERT_TRUE(RunUntil(*reactor, [&] { return r.senders.size() == 1; }));
  EXPECT_EQ(r.senders[0].ToString(), absl::StrCat("[::1]:", c.port()));
  auto got = c.Receive();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->first, "six");
  // An IPv6-only port cannot send to IPv4.
  absl::Status s = (*port)->write("x", *Address::Parse("127.0.0.1", 9));
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  // Error messages name the address the same way.
  Record r2;
  RecordingProtocol proto2(&r2);
  absl::StatusOr<UdpPort*> again = reactor->listenUDP(server.port(), &proto2, "::1");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().message(), absl::StrCat("cannot listen on udp:[::1]:", server.port(),
                                                   ": Address already in use"));
}

// Binds an IPv4 UDP socket to 127.0.0.1:`port`: it fails with EADDRINUSE
// exactly when a dual-stack port already serves IPv4 on that port.
int BindIPv4(int port) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  Address a = *Address::Parse("127.0.0.1", port);
  int rc = ::bind(fd, a.sockaddr_ptr(), a.length());
  int e = rc == 0 ? 0 : errno;
  ::close(fd);
  return e;
}

TEST_P(UdpTest, DualStackPortServesIPv4Peers) {
  if (!HaveIPv6Loopback()) GTEST_SKIP() << "no IPv6 loopback (::1) on this machine";
  Record r;
  RecordingProtocol proto(&r, /*echo=*/true);
  auto reactor = NewReactor();
  absl::StatusOr<UdpPort*> port = reactor->listenUDP(0, &proto, "::");
  ASSERT_TRUE(port.ok()) << port.status();
  UdpSocket v4("127.0.0.1");
  v4.SendTo("four", *Address::Parse("127.0.0.1", (*port)->getHost().port()));
  ASSERT_TRUE(RunUntil(*reactor, [&] { return r.senders.size() == 1; }));
  // Reported as IPv4, not ::ffff:127.0.0.1, and answered as such.
  EXPECT_EQ(r.senders[0].ToString(), absl::StrCat("127.0.0.1:", v4.port()));
  auto got = v4.Receive();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->first, "four");
  // IPv6 peers as before.
  UdpSocket v6("::1");
  v6.SendTo("six", *Address::Parse("::1", (*port)->getHost().port()));
  ASSERT_TRUE(RunUntil(*reactor, [&] { return r.senders.size() == 2; }));
  EXPECT_EQ(r.senders[1].ToString(), absl::StrCat("[::1]:", v6.port()));
  got = v6.Receive();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->first, "six");
  // The port holds IPv4's side of its number.
  EXPECT_EQ(BindIPv4((*port)->getHost().port()), EADDRINUSE);
}

TEST_P(UdpTest, DualStackPortConnectsToAnIPv4Peer) {
  if (!HaveIPv6Loopback()) GTEST_SKIP() << "no IPv6 loopback (::1) on this machine";
  Record r;
  RecordingProtocol proto(&r);
  auto reactor = NewReactor();
  absl::StatusOr<UdpPort*> port = reactor->listenUDP(0, &proto, "::");
  ASSERT_TRUE(port.ok()) << port.status();
  UdpSocket v4("127.0.0.1");
  ASSERT_TRUE((*port)->connect("127.0.0.1", v4.port()).ok());
  ASSERT_TRUE((*port)->write("to four").ok());
  auto got = v4.Receive();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->first, "to four");
  v4.SendTo("back", got->second);
  ASSERT_TRUE(RunUntil(*reactor, [&] { return r.senders.size() == 1; }));
  EXPECT_EQ(r.senders[0], v4.address());
  EXPECT_EQ((*port)->connectedAddress()->ToString(), v4.address().ToString());
}

TEST_P(UdpTest, DualStackOffServesIPv6Only) {
  if (!HaveIPv6Loopback()) GTEST_SKIP() << "no IPv6 loopback (::1) on this machine";
  Record r;
  RecordingProtocol proto(&r);
  auto reactor = NewReactor();
  absl::StatusOr<UdpPort*> port = reactor->listenUDP(0, &proto, "::", 8192, DualStack::kOff);
  ASSERT_TRUE(port.ok()) << port.status();
  // IPv4's side of the port number is free for an IPv4 socket...
  EXPECT_EQ(BindIPv4((*port)->getHost().port()), 0);
  // ...and the port does not send to IPv4.
  absl::Status s = (*port)->write("x", *Address::Parse("127.0.0.1", 9));
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
}

TEST_P(UdpTest, ConnectedPortTalksOnlyToItsPeer) {
  Record r;
  RecordingProtocol proto(&r);
  auto reactor = NewReactor();
  UdpPort* port = *reactor->listenUDP(0, &proto, "127.0.0.1");
  UdpSocket peer, stranger;
  ASSERT_TRUE(port->connect("127.0.0.1", peer.port()).ok());
  EXPECT_EQ(port->connectedAddress(), peer.address());
  // write() without an address goes to the peer.
  ASSERT_TRUE(port->write("to peer").ok());
  auto got = peer.Receive();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->first, "to peer");
  EXPECT_EQ(got->second, port->getHost());
  EXPECT_TRUE(port->write("to peer, named", peer.address()).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(port->write("x", stranger.address())));
  // The kernel drops what others send: the stranger's datagram, sent
  // first, never arrives.
  stranger.SendTo("from stranger", port->getHost());
  peer.SendTo("from peer", port->getHost());
  ASSERT_TRUE(RunUntil(*reactor, [&] { return r.senders.size() == 1; }));
  testing::PollerTest::Spin(*reactor);
  EXPECT_THAT(r.events, ElementsAre("start", "data:from peer"));
  // Once only; a name is not an address.
  EXPECT_TRUE(absl::IsFailedPrecondition(port->connect("127.0.0.1", stranger.port())));
  Record r2;
  RecordingProtocol proto2(&r2);
  UdpPort* port2 = *reactor->listenUDP(0, &proto2, "127.0.0.1");
  EXPECT_TRUE(absl::IsInvalidArgument(port2->connect("localhost", peer.port())));
  EXPECT_TRUE(absl::IsInvalidArgument(port2->connect("127.0.0.1", 0)));
  EXPECT_TRUE(absl::IsFailedPrecondition(port2->write("nowhere")));
}

TEST_P(UdpTest, ClosedPeerPortIsReportedAsConnectionRefused) {
  // The peer's port comes from a socket closed just before; another process
  // could bind it meanwhile (then no ICMP comes), so up to three are tried,
  // each from a fresh UDP port (connect() is once only).
  Record records[3];
  std::unique_ptr<RecordingProtocol> protos[3];
  auto reactor = NewReactor();
  UdpPort* port = nullptr;
  int attempt = 0;
  for (; attempt < 3; ++attempt) {
    protos[attempt] = std::make_unique<RecordingProtocol>(&records[attempt]);
    port = *reactor->listenUDP(0, protos[attempt].get(), "127.0.0.1");
    int closed_port;
    {
      UdpSocket s;
      closed_port = s.port();
    }
    ASSERT_TRUE(port->connect("127.0.0.1", closed_port).ok());
    ASSERT_TRUE(port->write("anyone?").ok());
    if (RunUntil(*reactor, [&] { return records[attempt].refused > 0; }, absl::Seconds(5))) {
      break;
    }
  }
  ASSERT_LT(attempt, 3) << "no connectionRefused()";
  const Record& r = records[attempt];
  testing::PollerTest::Spin(*reactor);
  EXPECT_EQ(r.refused, 1);
  EXPECT_THAT(r.events, ElementsAre("start", "refused"));
  EXPECT_TRUE(port->listening());  // a refusal does not stop the port
  EXPECT_FALSE(r.nested);
}

TEST_P(UdpTest, RefusalFoundByWriteIsAnErrorAndReportedOnceLater) {
  Record r;
  RecordingProtocol proto(&r);
  auto reactor = NewReactor();
  UdpPort* port = *reactor->listenUDP(0, &proto, "127.0.0.1");
  int closed_port;
  {
    UdpSocket s;
    closed_port = s.port();
  }
  ASSERT_TRUE(port->connect("127.0.0.1", closed_port).ok());
  ASSERT_TRUE(port->write("anyone?").ok());
  // Without turning the loop, wait for the ICMP error to be pending.
  pollfd pfd = {port->fileno(), 0, 0};
  ASSERT_EQ(::poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(kTimeout))), 1)
      << "no ICMP port unreachable: was port " << closed_port << " taken meanwhile?";
  ASSERT_TRUE(pfd.revents & POLLERR);
  absl::Status s = port->write("again");
  EXPECT_TRUE(IsConnectionRefused(s)) << s;
  EXPECT_EQ(r.refused, 0);  // not from inside write()
  testing::PollerTest::Spin(*reactor);
  EXPECT_EQ(r.refused, 1);
  EXPECT_THAT(r.events, ElementsAre("start", "refused"));
}

TEST_P(UdpTest, StopListeningClosesTheSocketAndStopsTheProtocolOnce) {
  Record r;
  RecordingProtocol proto(&r);
  auto reactor = NewReactor();
  UdpPort* port = *reactor->listenUDP(0, &proto, "127.0.0.1");
  const Address host = port->getHost();
  port->stopListening();
  EXPECT_THAT(r.events, ElementsAre("start", "stop"));
  EXPECT_EQ(proto.transport(), nullptr);
  EXPECT_FALSE(port->listening());
  EXPECT_EQ(port->fileno(), -1);
  EXPECT_TRUE(absl::IsFailedPrecondition(port->write("x", host)));
  port->stopListening();
  // The address is free again: the socket really is closed.
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  EXPECT_EQ(::bind(fd, host.sockaddr_ptr(), host.length()), 0) << strerror(errno);
  ::close(fd);
  // The protocol can listen again.
  absl::StatusOr<UdpPort*> again = reactor->listenUDP(0, &proto, "127.0.0.1");
  ASSERT_TRUE(again.ok()) << again.status();
  reactor.reset();  // the reactor stops what still listens
  EXPECT_THAT(r.events, ElementsAre("start", "stop", "start", "stop"));
}

TEST_P(UdpTest, RunStopsUdpPortsWhenItShutsDown) {
  Record r;
  RecordingProtocol proto(&r);
  auto reactor = NewReactor();
  UdpPort* port = *reactor->listenUDP(0, &proto, "127.0.0.1");
  reactor->callLater(absl::ZeroDuration(), [&] { reactor->stop(); });
  reactor->run();
  EXPECT_THAT(r.events, ElementsAre("start", "stop"));
  EXPECT_FALSE(port->listening());
}

TEST_P(UdpTest, StopListeningFromACallbackStopsAfterItReturns) {
  Record r;
  RecordingProtocol proto(&r);
  auto reactor = NewReactor();
  UdpPort* port = *reactor->listenUDP(0, &proto, "127.0.0.1");
  proto.on_data = [&] {
    proto.transport()->stopListening();
    r.events.push_back("asked");
  };
  UdpSocket c;
  c.SendTo("1", port->getHost());
  c.SendTo("2", port->getHost());
  c.SendTo("3", port->getHost());
  ASSERT_TRUE(RunUntil(*reactor, [&] { return r.events.back() == "stop"; }));
  testing::PollerTest::Spin(*reactor);
  // The rest of the batch is not delivered once the port stopped.
  EXPECT_THAT(r.events, ElementsAre("start", "data:1", "asked", "stop"));
  EXPECT_FALSE(r.nested);
}

TEST_P(UdpTest, ReadsABoundedNumberOfDatagramsPerEvent) {
  Record r;
  RecordingProtocol proto(&r);
  auto reactor = NewReactor();
  UdpPort* port = *reactor->listenUDP(0, &proto, "127.0.0.1");
  UdpSocket c;
  constexpr int kSent = 100;
  for (int i = 0; i < kSent; ++i) c.SendTo("d", port->getHost());
  size_t most_in_one_turn = 0;
  size_t seen = 0;
  ASSERT_TRUE(RunUntil(*reactor, [&] {
    most_in_one_turn = std::max(most_in_one_turn, r.senders.size() - seen);
    seen = r.senders.size();
    return seen == kSent;
  }));
  EXPECT_EQ(most_in_one_turn, static_cast<size_t>(UdpPort::kMaxDatagramsPerEvent));
}

TEST_P(UdpTest, FullSendBufferDropsAndCountsTheDatagram) {
  // Loopback UDP never blocks a sender (the datagram is handed to the
  // receiver at once, or dropped there), so a connected Unix datagram
  // socket whose peer's queue is full stands in for the UDP socket: its
  // send() fails with EAGAIN the way a full UDP send buffer does.
  Record r;
  RecordingProtocol proto(&r);
  auto reactor = NewReactor();
  UdpPort* port = *reactor->listenUDP(0, &proto, "127.0.0.1");
  UdpSocket peer;
  ASSERT_TRUE(port->connect("127.0.0.1", peer.port()).ok());
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair), 0);
  reactor->poller().remove(port->fileno());
  ASSERT_EQ(dup3(pair[0], port->fileno(), O_CLOEXEC), port->fileno());
  ::close(pair[0]);
  int sent = 0;
  absl::Status s;
  while (sent < 100000 && (s = port->write("fill")).ok()) ++sent;
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s << " after " << sent;
  EXPECT_EQ(port->droppedWrites(), 1u);
  EXPECT_TRUE(absl::IsResourceExhausted(port->write("more")));
  EXPECT_EQ(port->droppedWrites(), 2u);
  ::close(pair[1]);
}

TEST_P(UdpTest, TooLongDatagramIsAnError) {
  Record r;
  RecordingProtocol proto(&r);
  auto reactor = NewReactor();
  UdpPort* port = *reactor->listenUDP(0, &proto, "127.0.0.1");
  UdpSocket peer;
  absl::Status s = port->write(std::string(70000, 'x'), peer.address());
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("too long"));
  EXPECT_EQ(port->droppedWrites(), 0u);
}

TEST_P(UdpTest, DestroyedProtocolIsNotCalled) {
  auto record = std::make_unique<Record>();
  auto proto = std::make_unique<RecordingProtocol>(record.get());
  auto reactor = NewReactor();
  UdpPort* port = *reactor->listenUDP(0, proto.get(), "127.0.0.1");
  proto.reset();
  record.reset();  // a call into the protocol would now touch freed memory
  UdpSocket c;
  c.SendTo("late", port->getHost());
  ASSERT_TRUE(RunUntil(*reactor, [&] { return !port->listening(); }));
}

TEST_P(UdpTest, BadArgumentsAreErrors) {
  Record r;
  RecordingProtocol proto(&r);
  auto reactor = NewReactor();
  auto expect = [&](absl::StatusOr<UdpPort*> p, absl::StatusCode code,
                    const std::string& message) {
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.status().code(), code) << p.status();
    EXPECT_EQ(p.status().message(), message);
  };
  expect(reactor->listenUDP(70000, &proto), absl::StatusCode::kInvalidArgument,
         "invalid port 70000: must be 0..65535");
  expect(reactor->listenUDP(0, &proto, "127.0.0.1", 0), absl::StatusCode::kInvalidArgument,
         "invalid maxPacketSize 0: must be 1..65535");
  expect(reactor->listenUDP(0, &proto, "localhost"), absl::StatusCode::kInvalidArgument,
         "invalid address 'localhost': not a numeric IPv4 or IPv6 address");
  UdpSocket busy;
  expect(reactor->listenUDP(busy.port(), &proto, "127.0.0.1"),
         absl::StatusCode::kFailedPrecondition,  // what absl makes of EADDRINUSE
         absl::StrCat("cannot listen on udp:127.0.0.1:", busy.port(),
                      ": Address already in use"));
  EXPECT_TRUE(r.events.empty());
  UdpPort* port = *reactor->listenUDP(0, &proto, "127.0.0.1");
  expect(reactor->listenUDP(0, &proto, "127.0.0.1"), absl::StatusCode::kFailedPrecondition,
         absl::StrCat("the protocol already listens on udp:", port->getHost().ToString()));
  EXPECT_TRUE(absl::IsInvalidArgument(port->write("x", Address())));
  EXPECT_TRUE(absl::IsFailedPrecondition(port->write("x")));  // not connected
}

TEST_P(UdpTest, PythonPeerThatClosesIsReportedAsConnectionRefused) {
  absl::StatusOr<Subprocess> py = Subprocess::Start(
      "/usr/bin/python3",
      {testing::RunfilePath("tests/udp_echo_client.py"), "127.0.0.1", "0", "peer"});
  ASSERT_TRUE(py.ok()) << py.status();
  absl::StatusOr<std::string> line = py->ReadStdoutLine(kTimeout);
  ASSERT_TRUE(line.ok()) << line.status() << " " << py->err();
  int peer_port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(*line, &peer_port)) << *line;
  Record r;
  RecordingProtocol proto(&r);
  auto reactor = NewReactor();
  UdpPort* port = *reactor->listenUDP(0, &proto, "127.0.0.1");
  ASSERT_TRUE(port->connect("127.0.0.1", peer_port).ok());
  ASSERT_TRUE(port->write("hello python").ok());
  ASSERT_TRUE(RunUntil(*reactor, [&] { return !r.senders.empty(); }));
  EXPECT_EQ(r.senders[0].port(), peer_port);
  // The peer has closed its socket once it has exited.
  absl::StatusOr<int> status = py->Wait(kTimeout);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << py->err();
  absl::Status s = port->write("still there?");
  EXPECT_TRUE(s.ok() || IsConnectionRefused(s)) << s;
  ASSERT_TRUE(RunUntil(*reactor, [&] { return r.refused > 0; }));
  EXPECT_THAT(r.events, ElementsAre("start", "data:hello python", "refused"));
}

INSTANTIATE_TEST_SUITE_P(AllPollers, UdpTest, ::testing::ValuesIn(PollerNames()),
                         [](const auto& info) { return info.param; });

// ---- examples/udp_echo_server, with Python's socket module as the client.

struct UdpServer {
  Subprocess process;
  std::string host;
  int port = 0;
};

absl::StatusOr<UdpServer> StartUdpServer(std::vector<std::string> args,
                                         const std::string& host = "127.0.0.1") {
  args.push_back("--port=0");
  args.push_back(absl::StrCat("--host=", host));
  absl::StatusOr<Subprocess> p =
      Subprocess::Start(testing::RunfilePath("examples/udp_echo_server"), args);
  if (!p.ok()) return p.status();
  absl::StatusOr<std::string> line = p->ReadStdoutLine(kTimeout);
  if (!line.ok()) return absl::Status(line.status().code(), p->err());
  const std::string prefix = absl::StrCat(
      "listening on udp:", absl::StrContains(host, ':') ? absl::StrCat("[", host, "]") : host,
      ":");
  absl::string_view rest = *line;
  UdpServer s{*std::move(p), host, 0};
  if (!absl::ConsumePrefix(&rest, prefix) || !absl::SimpleAtoi(rest, &s.port)) {
    return absl::InternalError(absl::StrCat("first line: ", *line));
  }
  return s;
}

// Runs the Python client; its output must be "ok".
void RunPythonClient(const UdpServer& server, std::vector<std::string> args) {
  std::vector<std::string> argv = {testing::RunfilePath("tests/udp_echo_client.py"),
                                   server.host, absl::StrCat(server.port)};
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<Subprocess> py = Subprocess::Start("/usr/bin/python3", argv);
  ASSERT_TRUE(py.ok()) << py.status();
  absl::StatusOr<int> status = py->Wait(kTimeout * 2);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << "python client: " << py->out() << py->err();
  EXPECT_EQ(py->out(), "ok\n") << py->err();
}

// SIGTERM: exit 0 with nothing more on stdout.
void ExpectCleanExit(UdpServer& server, int sig = SIGTERM) {
  server.process.Signal(sig);
  absl::StatusOr<int> status = server.process.Wait(kTimeout);
  ASSERT_TRUE(status.ok()) << status.status();
  ASSERT_TRUE(WIFEXITED(*status)) << "killed by signal " << WTERMSIG(*status);
  EXPECT_EQ(WEXITSTATUS(*status), 0);
  EXPECT_EQ(server.process.out(), "");
}

TEST(UdpEchoServer, EchoesToPythonOnEveryReactorAndExitsOnSignal) {
  for (const char* reactor : {"epoll", "poll", "select"}) {
    SCOPED_TRACE(reactor);
    absl::StatusOr<UdpServer> server = StartUdpServer({absl::StrCat("--reactor=", reactor)});
    ASSERT_TRUE(server.ok()) << server.status();
    RunPythonClient(*server, {"echo"});
    ExpectCleanExit(*server, std::string(reactor) == "poll" ? SIGINT : SIGTERM);
    EXPECT_EQ(server->process.err(), "");
  }
}

TEST(UdpEchoServer, LongDatagramIsNotEchoedAndIsReported) {
  absl::StatusOr<UdpServer> server = StartUdpServer({"--max_packet=64"});
  ASSERT_TRUE(server.ok()) << server.status();
  RunPythonClient(*server, {"truncate", "64"});
  ExpectCleanExit(*server);
  EXPECT_THAT(server->process.err(),
              ::testing::MatchesRegex("twist: dropped a 65-byte datagram from 127\\.0\\.0\\.1:[0-9]+: "
                                      "longer than the port's maxPacketSize 64 \\(further ones "
                                      "are only counted\\)\n"));
}

TEST(UdpEchoServer, ServesIPv6) {
  if (!HaveIPv6Loopback()) GTEST_SKIP() << "no IPv6 loopback (::1) on this machine";
  absl::StatusOr<UdpServer> server = StartUdpServer({}, "::1");
  ASSERT_TRUE(server.ok()) << server.status();
  RunPythonClient(*server, {"echo"});
  ExpectCleanExit(*server);
}

TEST(UdpEchoServer, DualStackServesIPv4AndIPv6Clients) {
  if (!HaveIPv6Loopback()) GTEST_SKIP() << "no IPv6 loopback (::1) on this machine";
  absl::StatusOr<UdpServer> server = StartUdpServer({}, "::");
  ASSERT_TRUE(server.ok()) << server.status();
  server->host = "127.0.0.1";
  RunPythonClient(*server, {"echo"});
  server->host = "::1";
  RunPythonClient(*server, {"echo"});
  ExpectCleanExit(*server);
  EXPECT_EQ(server->process.err(), "");
}

// One line on stderr, nothing on stdout, exit 2.
void ExpectBadFlag(const std::vector<std::string>& args, const std::string& expected) {
  absl::StatusOr<Subprocess> p =
      Subprocess::Start(testing::RunfilePath("examples/udp_echo_server"), args);
  ASSERT_TRUE(p.ok()) << p.status();
  absl::StatusOr<int> status = p->Wait(kTimeout);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2) << *status;
  EXPECT_EQ(p->out(), "");
  EXPECT_EQ(p->err(), expected + "\n");
}

TEST(UdpEchoServer, BadFlagsAreOneLineAndExit2) {
  ExpectBadFlag({"--port=70000"}, "udp_echo_server: invalid --port 70000: must be 0..65535");
  ExpectBadFlag({"--max_packet=0"},
                "udp_echo_server: invalid --max_packet 0: must be 1..65535");
  ExpectBadFlag({"--reactor=kqueue"},
                "udp_echo_server: --reactor: unknown reactor 'kqueue': expected one of "
                "epoll, poll, select");
  ExpectBadFlag({"--host=localhost", "--port=0"},
                "udp_echo_server: --host: invalid address 'localhost': not a numeric IPv4 "
                "or IPv6 address");
}

TEST(UdpEchoServer, PortInUseIsOneLine) {
  UdpSocket busy;
  absl::StatusOr<Subprocess> p = Subprocess::Start(
      testing::RunfilePath("examples/udp_echo_server"), {absl::StrCat("--port=", busy.port())});
  ASSERT_TRUE(p.ok()) << p.status();
  absl::StatusOr<int> status = p->Wait(kTimeout);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1) << *status;
  EXPECT_EQ(p->err(), absl::StrCat("udp_echo_server: cannot listen on udp:127.0.0.1:",
                                   busy.port(), ": Address already in use\n"));
}

}  // namespace
}  // namespace twist
