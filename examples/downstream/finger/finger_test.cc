// The finger protocol on StringTransport, its time on task::Clock (the
// factory needs only ReactorTime), then the whole server over loopback
// through a real reactor.

#include "finger/finger.h"

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "framework/client_factory.h"
#include "framework/reactor.h"
#include "framework/string_transport.h"
#include "framework/task_clock.h"
#include "framework/tcp_port.h"
#include "gtest/gtest.h"

namespace tutorial {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(10);

class FingerTest : public ::testing::Test {
 protected:
  // FingerFactory needs only the reactor's time: task::Clock stands in for
  // the reactor, with no poller and no sockets.
  void SetUp() override {
    factory_ = std::make_unique<FingerFactory>(
        &clock_, UserTable{{"moshez", "Happy and well"}}, kTimeout);
  }

  // What the reactor does for a connection: build, set factory(), attach.
  void Connect() {
    protocol_ = factory_->buildProtocol(t_.getPeer());
    ASSERT_NE(protocol_, nullptr);
    protocol_->setFactory(factory_.get());
    t_.connect(protocol_.get());
  }

  // Moves the fake time, running the calls that become due.
  void Advance(absl::Duration d) { clock_.advance(d); }

  twist::task::Clock clock_;
  std::unique_ptr<FingerFactory> factory_;
  twist::StringTransport t_;
  std::unique_ptr<twist::Protocol> protocol_;
};

TEST_F(FingerTest, AnswersAKnownUserAndCloses) {
  Connect();
  t_.receive("moshez\r\n");
  EXPECT_EQ(t_.value(), "Happy and well\r\n");
  EXPECT_TRUE(t_.disconnecting());
  EXPECT_FALSE(t_.aborted());
}

TEST_F(FingerTest, AnswersAnUnknownUserAsTwistedDoes) {
  Connect();
  t_.receive("nobody\r\n");
  EXPECT_EQ(t_.value(), "No such user\r\n");
  EXPECT_TRUE(t_.disconnecting());
}

TEST_F(FingerTest, TakesABareLineFeedAndAnyChunking) {
  Connect();
  t_.receive("mos");
  t_.receive("he");
  EXPECT_EQ(t_.value(), "");
  EXPECT_FALSE(t_.disconnecting());
  t_.receive("z\n");
  EXPECT_EQ(t_.value(), "Happy and well\r\n");
}

TEST_F(FingerTest, ClosesAClientThatSendsNothingInTime) {
  Connect();
  Advance(kTimeout - absl::Milliseconds(1));
  EXPECT_FALSE(t_.disconnecting());
  Advance(absl::Milliseconds(1));
  EXPECT_TRUE(t_.disconnecting());
  EXPECT_FALSE(t_.aborted());
  EXPECT_EQ(t_.value(), "");
}

TEST_F(FingerTest, PartialInputDoesNotExtendTheDeadline) {
  Connect();
  Advance(kTimeout / 2);
  t_.receive("mos");
  Advance(kTimeout / 2);
  EXPECT_TRUE(t_.disconnecting());
  EXPECT_EQ(t_.value(), "");
}

TEST_F(FingerTest, ClosesOnAnOverlongLine) {
  Connect();
  t_.receive(std::string(FingerProtocol::kMaxLine + 10, 'a'));
  EXPECT_TRUE(t_.disconnecting());
  EXPECT_EQ(t_.value(), "");
}

TEST(ParseUsersTest, ReadsEntries) {
  absl::StatusOr<UserTable> users =
      ParseUsers("moshez=Happy and well,alice=Out to lunch=back at 2,bob=");
  ASSERT_TRUE(users.ok()) << users.status();
  EXPECT_EQ(users->size(), 3u);
  EXPECT_EQ(users->at("moshez"), "Happy and well");
  EXPECT_EQ(users->at("alice"), "Out to lunch=back at 2");
  EXPECT_EQ(users->at("bob"), "");
  EXPECT_TRUE(ParseUsers("").ok());
}

TEST(ParseUsersTest, RejectsBadEntriesByName) {
  for (const char* bad : {"moshez", "=text", "two words=x", "a=1,,b=2"}) {
    absl::StatusOr<UserTable> users = ParseUsers(bad);
    EXPECT_EQ(users.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(ParseUsers("a=1,a=2").status().message(), "--users names 'a' twice");
}

// A client that sends `request` and records everything until the server
// closes, then stops the reactor.
class FingerClient : public twist::Protocol {
 public:
  FingerClient(std::string request, std::string* reply)
      : request_(std::move(request)), reply_(reply) {}
  void connectionMade() override { transport()->write(request_); }
  void dataReceived(absl::string_view data) override {
    reply_->append(data.data(), data.size());
  }

 private:
  std::string request_;
  std::string* reply_;
};

class StopWhenDone : public twist::ClientFactory {
 public:
  StopWhenDone(twist::Reactor* reactor, std::string request, std::string* reply)
      : reactor_(reactor), request_(std::move(request)), reply_(reply) {}
  std::unique_ptr<twist::Protocol> buildProtocol(const twist::Address&) override {
    return std::make_unique<FingerClient>(request_, reply_);
  }
  void clientConnectionFailed(twist::Connector*, const absl::Status& reason) override {
    result = reason;
    reactor_->stop();
  }
  void clientConnectionLost(twist::Connector*, const absl::Status& reason) override {
    result = reason;
    done = true;
    reactor_->stop();
  }
  absl::Status result = absl::UnknownError("never finished");
  bool done = false;

 private:
  twist::Reactor* reactor_;
  std::string request_;
  std::string* reply_;
};

// Runs a finger server with `timeout` and one client sending `request` on
// loopback; returns what the client got before the server closed.
std::string FingerOverLoopback(absl::Duration timeout, std::string request) {
  std::string reply;
  absl::StatusOr<std::unique_ptr<twist::Reactor>> r = twist::Reactor::Create();
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return reply;
  twist::Reactor* reactor = r->get();
  FingerFactory server(reactor, UserTable{{"moshez", "Happy and well"}}, timeout);
  StopWhenDone client(reactor, std::move(request), &reply);
  absl::StatusOr<twist::Port*> port = reactor->listenTCP(0, &server, 50, "127.0.0.1");
  EXPECT_TRUE(port.ok()) << port.status();
  if (!port.ok()) return reply;
  reactor->connectTCP("127.0.0.1", (*port)->getHost().port(), &client);
  bool gave_up = false;
  reactor->callLater(absl::Seconds(10), [&] {
    gave_up = true;
    reactor->stop();
  });
  reactor->run();
  EXPECT_FALSE(gave_up) << "no answer in 10 s";
  EXPECT_TRUE(client.done);
  EXPECT_TRUE(client.result.ok()) << client.result;  // the server closed cleanly
  return reply;
}

TEST(FingerServerTest, AnswersOverLoopback) {
  EXPECT_EQ(FingerOverLoopback(absl::Seconds(30), "moshez\r\n"), "Happy and well\r\n");
}

TEST(FingerServerTest, ClosesASilentClientOverLoopback) {
  EXPECT_EQ(FingerOverLoopback(absl::Milliseconds(50), ""), "");
}

}  // namespace
}  // namespace tutorial
