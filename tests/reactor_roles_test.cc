// The reactor's roles (framework/reactor_tcp.h, reactor_unix.h,
// reactor_udp.h, reactor_threads.h): a helper that needs one role runs on a
// stand-in for it, the roles' defaults are the same whatever the static
// type of the call, and a real Reactor does its work through each role.

#include <unistd.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "framework/client_factory.h"
#include "framework/datagram_protocol.h"
#include "framework/defer_to_thread.h"
#include "framework/reactor.h"
#include "framework/reactor_tcp.h"
#include "framework/reactor_threads.h"
#include "framework/reactor_udp.h"
#include "framework/reactor_unix.h"
#include "framework/tcp_port.h"
#include "framework/udp_port.h"
#include "gtest/gtest.h"
#include "protocols/echo.h"
#include "tests/memory_reactor.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using testing::BlockingClient;
using testing::MemoryReactor;

// ReactorThreads without threads: the test decides when the work runs and
// when its `done` reaches "the reactor's thread".
class FakeThreads : public ReactorThreads {
 public:
  void callFromThread(absl::AnyInvocable<void()> fn) override {
    from_thread.push_back(std::move(fn));
  }
  absl::StatusOr<uint64_t> callInThread(absl::AnyInvocable<void()> work,
                                        absl::AnyInvocable<void(absl::Status)> done) override {
    if (refuse) return absl::ResourceExhaustedError("FakeThreads: pool full");
    works.push_back(std::move(work));
    dones.push_back(std::move(done));
    return works.size();
  }
  void cancelThreadCall(uint64_t id) override { cancelled.push_back(id); }
  std::weak_ptr<const void> liveness() const override { return alive; }

  void suggestThreadPoolSize(int size) override { suggested = size; }

  bool refuse = false;
  int suggested = 0;
  std::vector<uint64_t> cancelled;
  std::shared_ptr<const int> alive = std::make_shared<const int>(0);
  std::vector<absl::AnyInvocable<void()>> from_thread;
  std::vector<absl::AnyInvocable<void()>> works;
  std::vector<absl::AnyInvocable<void(absl::Status)>> dones;
};

TEST(ReactorRolesTest, DeferToThreadRunsOnAStandInForTheThreadsRole) {
  FakeThreads threads;
  int ran = 0;
  Deferred<int> d = deferToThread(&threads, [&] {
    ++ran;
    return 6 * 7;
  });
  int got = 0;
  d.addCallback([&](int x) {
    got = x;
    return x;
  });
  // Handed to the role, nothing run yet: not inline, not fired.
  ASSERT_EQ(threads.works.size(), 1u);
  ASSERT_EQ(threads.dones.size(), 1u);
  EXPECT_EQ(ran, 0);
  threads.works[0]();  // "the pool thread"
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(got, 0) << "fired before `done` reached the reactor's thread";
  threads.dones[0](absl::OkStatus());  // "the reactor's thread"
  EXPECT_EQ(got, 42);
  EXPECT_TRUE(threads.from_thread.empty());  // callInThread's `done` is the way back
}

TEST(ReactorRolesTest, DeferToThreadFailsWhenTheThreadsRoleRefuses) {
  FakeThreads threads;
  threads.refuse = true;
  bool ran = false;
  Deferred<int> d = deferToThread(&threads, [&] {
    ran = true;
    return 1;
  });
  absl::Status failure;
  d.addErrback([&](absl::Status s) -> absl::StatusOr<int> {
    failure = s;
    return 0;
  });
  EXPECT_FALSE(ran);
  EXPECT_TRUE(absl::IsResourceExhausted(failure)) << failure;
}

// Cancelling deferToThread's Deferred cancels the call through the role,
// while the reactor lives; after it, the canceller calls nothing.
TEST(ReactorRolesTest, CancellingDeferToThreadCancelsTheCallWhileTheRoleLives) {
  FakeThreads threads;
  Deferred<int> a = deferToThread(&threads, [] { return 1; });
  Deferred<int> b = deferToThread(&threads, [] { return 2; });
  a.cancel();
  ASSERT_TRUE(a.called());
  EXPECT_TRUE(absl::IsCancelled(a.result()->status()));
  EXPECT_EQ(threads.cancelled, std::vector<uint64_t>{1});
  threads.alive.reset();  // "the reactor is gone"
  b.cancel();
  EXPECT_EQ(threads.cancelled, std::vector<uint64_t>{1}) << "called a dead reactor";
  a.addErrback([](absl::Status) { return absl::StatusOr<int>(0); });
  b.addErrback([](absl::Status) { return absl::StatusOr<int>(0); });
}

// The defaults live in the roles' non-virtual calls: the same through the
// role and through the implementing class (with defaults on the virtuals,
// each static type could bring its own).
TEST(ReactorRolesTest, DefaultsAreTheSameThroughTheRoleAndTheImplementation) {
  MemoryReactor memory;
  Factory factory;
  ClientFactory client_factory;
  DatagramProtocol datagrams;
  ReactorTCP& tcp = memory;
  ReactorUNIX& unix_role = memory;
  ReactorUDP& udp = memory;

  EXPECT_TRUE(absl::IsUnavailable(tcp.listenTCP(8000, &factory).status()));
  EXPECT_TRUE(absl::IsUnavailable(memory.listenTCP(8001, &factory).status()));
  EXPECT_EQ(tcp.connectTCP("example.com", 79, &client_factory), nullptr);
  memory.connectTCP("example.org", 80, &client_factory);
  unix_role.listenUNIX("/tmp/x.sock", &factory).IgnoreError();
  memory.listenUNIX("@y", &factory).IgnoreError();
  unix_role.connectUNIX("/tmp/x.sock", &client_factory);
  memory.connectUNIX("@y", &client_factory);
  udp.listenUDP(9000, &datagrams).IgnoreError();
  memory.listenUDP(9001, &datagrams).IgnoreError();

  ASSERT_EQ(memory.tcpServers.size(), 2u);
  for (const MemoryReactor::TcpServer& s : memory.tcpServers) {
    EXPECT_EQ(s.factory, &factory);
    EXPECT_EQ(s.backlog, 50);
    EXPECT_EQ(s.interface, "");
    EXPECT_EQ(s.dual_stack, DualStack::kOn);
  }
  EXPECT_EQ(memory.tcpServers[0].port, 8000);
  EXPECT_EQ(memory.tcpServers[1].port, 8001);
  ASSERT_EQ(memory.tcpClients.size(), 2u);
  for (const MemoryReactor::TcpClient& c : memory.tcpClients) {
    EXPECT_EQ(c.factory, &client_factory);
    EXPECT_EQ(c.timeout, absl::Seconds(30));
    EXPECT_FALSE(c.bind_address.has_value());
  }
  EXPECT_EQ(memory.tcpClients[0].host, "example.com");
  EXPECT_EQ(memory.tcpClients[1].port, 80);
  ASSERT_EQ(memory.unixServers.size(), 2u);
  for (const MemoryReactor::UnixServer& s : memory.unixServers) {
    EXPECT_EQ(s.backlog, 50);
    EXPECT_EQ(s.mode, 0666);
    EXPECT_FALSE(s.want_pid);
  }
  ASSERT_EQ(memory.unixClients.size(), 2u);
  for (const MemoryReactor::UnixClient& c : memory.unixClients) {
    EXPECT_EQ(c.timeout, absl::Seconds(30));
  }
  ASSERT_EQ(memory.udpServers.size(), 2u);
  for (const MemoryReactor::UdpServer& s : memory.udpServers) {
    EXPECT_EQ(s.protocol, &datagrams);
    EXPECT_EQ(s.interface, "");
    EXPECT_EQ(s.max_packet_size, 8192u);
    EXPECT_EQ(s.dual_stack, DualStack::kOn);
  }
}

// Code that holds only a role reaches the real reactor's sockets.
class RealReactorRolesTest : public testing::PollerTest {};

TEST_P(RealReactorRolesTest, ServesThroughEachRole) {
  std::unique_ptr<Factory> echo = Factory::forProtocol<Echo>();
  DatagramProtocol datagrams;
  std::unique_ptr<Reactor> reactor = NewReactor();
  ReactorTCP& tcp = *reactor;
  ReactorUNIX& unix_role = *reactor;
  ReactorUDP& udp = *reactor;

  absl::StatusOr<Port*> tcp_port = tcp.listenTCP(0, echo.get(), 50, "127.0.0.1");
  ASSERT_TRUE(tcp_port.ok()) << tcp_port.status();
  const std::string name = absl::StrCat("@twist-roles-", getpid(), "-", GetParam());
  absl::StatusOr<Port*> unix_port = unix_role.listenUNIX(name, echo.get());
  ASSERT_TRUE(unix_port.ok()) << unix_port.status();
  absl::StatusOr<UdpPort*> udp_port = udp.listenUDP(0, &datagrams, "127.0.0.1");
  ASSERT_TRUE(udp_port.ok()) << udp_port.status();
  EXPECT_NE((*udp_port)->getHost().port(), 0);
  EXPECT_EQ(datagrams.transport(), *udp_port);

  for (Port* port : {*tcp_port, *unix_port}) {
    BlockingClient client = Connect(port->getHost());
    ASSERT_TRUE(client.SendAll("through a role").ok());
    ASSERT_TRUE(testing::RunUntil(*reactor, [&] {
      return testing::PendingBytes(client.fd()) >= 14;
    }));
    absl::StatusOr<std::string> echoed = client.ReadExactly(14);
    ASSERT_TRUE(echoed.ok()) << echoed.status();
    EXPECT_EQ(*echoed, "through a role") << port->getHost().ToString();
  }
}

INSTANTIATE_TEST_SUITE_P(Pollers, RealReactorRolesTest,
                         ::testing::ValuesIn(PollerNames()));

}  // namespace
}  // namespace twist
