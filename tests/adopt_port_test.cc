// Reactor::adoptStreamPort (Twisted's IReactorSocket.adoptStreamPort): a
// listening socket made elsewhere (here by another reactor that is never
// run, as the parent of --workers does) served by this reactor, on every
// poller and stream transport.

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "framework/protocol.h"
#include "framework/reactor.h"
#include "framework/tcp_port.h"
#include "gtest/gtest.h"
#include "protocols/echo.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using testing::BlockingClient;

bool Listening(int fd) {
  int on = 0;
  socklen_t len = sizeof(on);
  return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on;
}

using AdoptStreamPortTest = testing::TransportTest;

TEST_P(AdoptStreamPortTest, ServesASocketBoundElsewhereAndLeavesItOpen) {
  Factory unused([] { return std::unique_ptr<Protocol>(); });
  auto echo = Factory::forProtocol<Echo>();
  std::unique_ptr<Reactor> binder = NewReactor();  // never run
  Port* shared = ListenPort(&unused);
  std::unique_ptr<Reactor> reactor = NewReactor();
  absl::StatusOr<Port*> adopted = reactor->adoptStreamPort(shared->fileno(), echo.get());
  ASSERT_TRUE(adopted.ok()) << adopted.status();
  EXPECT_NE((*adopted)->fileno(), shared->fileno()) << "serves a duplicate";
  EXPECT_EQ((*adopted)->getHost().ToString(), shared->getHost().ToString());
  ASSERT_TRUE(testing::RunBeside(*reactor, [&] {
    absl::StatusOr<BlockingClient> c = BlockingClient::Connect(shared->getHost());
    ASSERT_TRUE(c.ok()) << c.status();
    ASSERT_TRUE(c->SendAll("adopted").ok());
    EXPECT_EQ(c->ReadExpected("adopted"), "adopted");
  }));
  // Stopping it closes its duplicate only: the caller's socket (and a Unix
  // socket's file) stays, still listening.
  (*adopted)->stopListening();
  EXPECT_TRUE(Listening(shared->fileno()));
  if (transport() == testing::StreamTransport::kUnix) {
    EXPECT_EQ(access(shared->getHost().path().c_str(), F_OK), 0) << "the file was removed";
  }
  absl::StatusOr<BlockingClient> queued = BlockingClient::Connect(shared->getHost());
  EXPECT_TRUE(queued.ok()) << "the listener went with the adopted port: " << queued.status();
}

INSTANTIATE_TEST_SUITE_P(AllPollersAndTransports, AdoptStreamPortTest,
                         ::testing::ValuesIn(testing::PollersAndTransports()),
                         testing::PollerTransportName);

TEST(AdoptStreamPortErrors, OnlyAListeningStreamSocket) {
  auto echo = Factory::forProtocol<Echo>();
  std::unique_ptr<Reactor> reactor = testing::MakeReactor("epoll");
  int unbound = socket(AF_INET, SOCK_STREAM, 0);
  int datagram = socket(AF_INET, SOCK_DGRAM, 0);
  int pipes[2];
  ASSERT_EQ(pipe(pipes), 0);
  for (int fd : {unbound, datagram, pipes[0], -1}) {
    absl::StatusOr<Port*> p = reactor->adoptStreamPort(fd, echo.get());
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << fd << ": " << p.status();
  }
  for (int fd : {unbound, datagram, pipes[0], pipes[1]}) close(fd);
}

}  // namespace
}  // namespace twist
