// ConnectionHost (framework/connection_host.h) is all a port or a transport
// needs of the reactor: a stand-in host with a real poller, and no Reactor,
// runs a Port and a TcpConnection, and sees exactly the calls the interface
// promises, in the order it promises.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "framework/address.h"
#include "framework/connection_host.h"
#include "framework/poller.h"
#include "framework/protocol.h"
#include "framework/stream_connection.h"
#include "framework/task_clock.h"
#include "framework/tcp_connection.h"
#include "framework/tcp_port.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using testing::BlockingClient;

// A host that records what its parts ask; anything else fails the test.
class FakeHost : public ConnectionHost {
 public:
  explicit FakeHost(std::unique_ptr<Poller> poller)
      : ConnectionHost(poller.get(), &clock_), owned_poller_(std::move(poller)) {}

  // Dispatches readiness until `done` holds; false after `turns` turns.
  template <class F>
  bool PollUntil(F done, int turns = 2000) {
    for (int i = 0; i < turns && !done(); ++i) {
      std::vector<ReadyEvent> ready;
      if (!poller().poll(absl::Milliseconds(10), &ready).ok()) return false;
      for (const ReadyEvent& ev : ready) ev.selectable->handleEvents(ev.events);
    }
    return done();
  }

  void adoptConnection(int fd, Factory* factory, const Address& peer) override {
    adopted.push_back(peer);
    ::close(fd);
  }
  absl::StatusOr<StreamConnection*> startConnection(int fd, std::unique_ptr<Protocol>,
                                                    Factory*, const Address&,
                                                    Connector*) override {
    ADD_FAILURE() << "startConnection: no connector here";
    ::close(fd);
    return absl::InternalError("unexpected");
  }
  void enqueueClose(StreamConnection* c) override { closes.push_back(c); }
  void retire(StreamConnection* c) override { retired.push_back(c); }
  void connectorMaybeIdle(Connector*) override { ADD_FAILURE() << "connectorMaybeIdle"; }
  bool shedOneConnection(int) override {
    ADD_FAILURE() << "shedOneConnection";
    return false;
  }
  bool stopping() const override { return false; }
  uint64_t resolve(absl::string_view, int, ResolveCallback) override {
    ADD_FAILURE() << "resolve";
    return 0;
  }
  void cancelResolve(uint64_t) override { ADD_FAILURE() << "cancelResolve"; }

  std::vector<Address> adopted;
  std::vector<StreamConnection*> closes;
  std::vector<StreamConnection*> retired;

 private:
  task::Clock clock_;
  std::unique_ptr<Poller> owned_poller_;
};

class ConnectionHostTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Poller>> p = CreatePoller(GetParam());
    ASSERT_TRUE(p.ok()) << p.status();
    host_ = std::make_unique<FakeHost>(*std::move(p));
  }
  std::unique_ptr<FakeHost> host_;
};

// A listening socket on 127.0.0.1, any port.
int ListenLoopback(Address* bound) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  absl::StatusOr<Address> any = Address::Parse("127.0.0.1", 0);
  if (fd < 0 || !any.ok() || ::bind(fd, any->sockaddr_ptr(), any->length()) != 0 ||
      ::listen(fd, 8) != 0) {
    return -1;
  }
  absl::StatusOr<Address> local = Address::LocalOf(fd);
  if (!local.ok()) return -1;
  *bound = *local;
  return fd;
}

TEST_P(ConnectionHostTest, APortHandsEachAcceptedSocketToItsHost) {
  Address where;
  int fd = ListenLoopback(&where);
  ASSERT_GE(fd, 0);
  Factory factory;
  Port port(host_.get(), &factory, fd, where);
  ASSERT_TRUE(port.startListening().ok());
  absl::StatusOr<BlockingClient> a = BlockingClient::Connect(where);
  absl::StatusOr<BlockingClient> b = BlockingClient::Connect(where);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(host_->PollUntil([&] { return host_->adopted.size() >= 2; }));
  ASSERT_EQ(host_->adopted.size(), 2u);
  // The peers the host is given are the clients' own addresses.
  absl::StatusOr<Address> a_local = Address::LocalOf(a->fd());
  absl::StatusOr<Address> b_local = Address::LocalOf(b->fd());
  ASSERT_TRUE(a_local.ok() && b_local.ok());
  EXPECT_EQ(host_->adopted[0], *a_local);
  EXPECT_EQ(host_->adopted[1], *b_local);
  port.stopListening();
  EXPECT_FALSE(port.listening());
}

// Records what a connection's protocol hears, and where its data lay.
class Recorder : public Protocol {
 public:
  void dataReceived(absl::string_view data) override {
    got.append(data.data(), data.size());
    last_data = data.data();
  }
  void connectionLost(const absl::Status& reason) override {
    lost = true;
    lost_reason = reason;
  }
  std::string got;
  const char* last_data = nullptr;
  bool lost = false;
  absl::Status lost_reason;
};

TEST_P(ConnectionHostTest, AConnectionReadsIntoTheHostsBufferAndClosesThroughIt) {
  Address where;
  int listen_fd = ListenLoopback(&where);
  ASSERT_GE(listen_fd, 0);
  absl::StatusOr<BlockingClient> client = BlockingClient::Connect(where);
  ASSERT_TRUE(client.ok()) << client.status();
  int fd = -1;
  for (int i = 0; i < 2000 && fd < 0; ++i) {
    fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) ::usleep(1000);
  }
  ::close(listen_fd);
  ASSERT_GE(fd, 0);
  auto owned = std::make_unique<Recorder>();
  Recorder* r = owned.get();
  auto conn = std::make_unique<TcpConnection>(host_.get(), fd, std::move(owned), where);
  ASSERT_TRUE(conn->start().ok());

  ASSERT_TRUE(client->SendAll("hello").ok());
  ASSERT_TRUE(host_->PollUntil([&] { return r->got.size() >= 5; }));
  EXPECT_EQ(r->got, "hello");
  // Read into the host's shared buffer, not a buffer of its own.
  EXPECT_EQ(r->last_data, host_->readBuffer());

  // A close is asked for, never done inside the protocol's call...
  conn->loseConnection();
  ASSERT_EQ(host_->closes.size(), 1u);
  EXPECT_EQ(host_->closes[0], conn.get());
  EXPECT_FALSE(r->lost);
  EXPECT_GE(conn->fd(), 0);
  EXPECT_TRUE(host_->retired.empty());
  // ...and done when the host says: connectionLost, then retire.
  conn->closeQueued();
  EXPECT_TRUE(r->lost);
  EXPECT_TRUE(r->lost_reason.ok()) << r->lost_reason;
  EXPECT_EQ(conn->fd(), -1);
  ASSERT_EQ(host_->retired.size(), 1u);
  EXPECT_EQ(host_->retired[0], conn.get());
  absl::StatusOr<std::string> rest = client->ReadToEof();
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(*rest, "");
}

INSTANTIATE_TEST_SUITE_P(Pollers, ConnectionHostTest, ::testing::ValuesIn(PollerNames()));

}  // namespace
}  // namespace twist
