// RedisProtocol on a StringTransport (no server, no sockets): pipelining,
// replies split at every byte, errors, the handshake, pub/sub, losses; and
// Redis addresses (issue 17).

#include "protocols/redis.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "framework/errors.h"
#include "framework/reactor.h"
#include "framework/string_transport.h"
#include "protocols/redis_client.h"
#include "gtest/gtest.h"

namespace twist {
namespace {

using Results = std::vector<absl::StatusOr<RedisReply>>;

void Collect(Deferred<RedisReply> d, Results* out) {
  d.addBoth([out](absl::StatusOr<RedisReply> r) -> absl::StatusOr<RedisReply> {
    out->push_back(r);
    return RedisReply::Null();
  });
}

// Sends the replies in two pieces, split at `at`.
void ReceiveSplit(StringTransport& t, absl::string_view wire, size_t at) {
  t.receive(wire.substr(0, at));
  t.receive(wire.substr(at));
}

TEST(RedisProtocolTest, PipelinedRepliesMatchInOrderAtEverySplit) {
  const std::string wire =
      "+OK\r\n$3\r\nbar\r\n-WRONGTYPE Operation against a key\r\n"
      "*3\r\n:1\r\n$-1\r\n*1\r\n-ERR inner\r\n:7\r\n";
  for (size_t at = 0; at <= wire.size(); ++at) {
    SCOPED_TRACE(absl::StrCat("split at ", at));
    RedisProtocol p;
    StringTransport t;
    t.connect(&p);
    ASSERT_TRUE(p.ready());
    Results got;
    Collect(p.command({"SET", "foo", "bar"}), &got);
    Collect(p.command({"GET", "foo"}), &got);
    Collect(p.command({"LPUSH", "foo", "x"}), &got);
    Collect(p.command(std::vector<std::string>{"EXEC"}), &got);
    Collect(p.command({"INCR", "n"}), &got);
    EXPECT_EQ(p.inFlight(), 5u);
    if (at == 0) {
      EXPECT_EQ(t.value(),
                "*3\r\n$3\r\nSET\r\n$3\r\nfoo\r\n$3\r\nbar\r\n*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n"
                "*3\r\n$5\r\nLPUSH\r\n$3\r\nfoo\r\n$1\r\nx\r\n*1\r\n$4\r\nEXEC\r\n"
                "*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n");
    }
    ReceiveSplit(t, wire, at);
    ASSERT_EQ(got.size(), 5u);
    EXPECT_EQ(*got[0], RedisReply::SimpleString("OK"));
    EXPECT_EQ(*got[1], RedisReply::Bulk("bar"));
    ASSERT_FALSE(got[2].ok());
    EXPECT_TRUE(IsRedisError(got[2].status()));
    EXPECT_EQ(RedisErrorCode(got[2].status()), "WRONGTYPE");
    // An error inside an aggregate stays an element.
    EXPECT_EQ(*got[3], RedisReply::Array({RedisReply::Integer(1), RedisReply::Null(),
                                          RedisReply::Array({RedisReply::Error("ERR inner")})}));
    EXPECT_EQ(*got[4], RedisReply::Integer(7));
    EXPECT_EQ(p.inFlight(), 0u);
    EXPECT_FALSE(t.disconnecting());
    t.disconnect();
  }
}

TEST(RedisProtocolTest, HandshakeAuthAndSelectComeFirst) {
  RedisOptions o;
  o.password = "s3cret";
  o.db = 3;
  RedisProtocol p(o);
  std::vector<absl::Status> ready;
  p.setReadyCallback([&](const absl::Status& s) { ready.push_back(s); });
  StringTransport t;
  t.connect(&p);
  Results got;
  Collect(p.command({"PING"}), &got);
  EXPECT_EQ(t.value(),
            "*2\r\n$4\r\nAUTH\r\n$6\r\ns3cret\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n"
            "*1\r\n$4\r\nPING\r\n");
  EXPECT_FALSE(p.ready());
  t.receive("+OK\r\n");
  EXPECT_TRUE(ready.empty());
  t.receive("+OK\r\n+PONG\r\n");
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_TRUE(ready[0].ok());
  EXPECT_TRUE(p.ready());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(*got[0], RedisReply::SimpleString("PONG"));
}

TEST(RedisProtocolTest, Resp3HelloWithUser) {
  RedisOptions o;
  o.username = "app";
  o.password = "pw";
  o.resp3 = true;
  RedisProtocol p(o);
  StringTransport t;
  t.connect(&p);
  EXPECT_EQ(t.value(), EncodeCommand({"HELLO", "3", "AUTH", "app", "pw"}));
  t.receive("%1\r\n$6\r\nserver\r\n$5\r\nredis\r\n");
  EXPECT_TRUE(p.ready());
}

TEST(RedisProtocolTest, FailedAuthFailsEverythingAndCloses) {
  RedisOptions o;
  o.password = "wrong";
  RedisProtocol p(o);
  std::vector<absl::Status> ready;
  std::vector<absl::Status> lost;
  p.setReadyCallback([&](const absl::Status& s) { ready.push_back(s); });
  p.setLostCallback([&](const absl::Status& s) { lost.push_back(s); });
  StringTransport t;
  t.connect(&p);
  Results got;
  Collect(p.command({"GET", "k"}), &got);
  t.receive("-WRONGPASS invalid username-password pair or user is disabled.\r\n");
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_TRUE(absl::IsUnauthenticated(ready[0])) << ready[0];
  EXPECT_NE(ready[0].message().find("AUTH: WRONGPASS"), std::string::npos) << ready[0];
  EXPECT_TRUE(t.disconnecting());
  // The server's NOAUTH for the GET is not read: the connection is closing.
  t.receive("-NOAUTH Authentication required.\r\n");
  t.disconnect();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(absl::IsUnauthenticated(got[0].status())) << got[0].status();
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_TRUE(absl::IsUnauthenticated(lost[0]));
}

TEST(RedisProtocolTest, LossFailsCommandsInFlightClearly) {
  RedisProtocol p;
  StringTransport t;
  t.connect(&p);
  Results got;
  Collect(p.command({"GET", "a"}), &got);
  Collect(p.command({"GET", "b"}), &got);
  Collect(p.command({"GET", "c"}), &got);
  t.receive("$1\r\nA\r\n$1\r\n");  // b's reply is cut short
  t.disconnect(ConnectionLost("Connection reset by peer"));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(*got[0], RedisReply::Bulk("A"));
  for (int i : {1, 2}) {
    EXPECT_TRUE(absl::IsUnavailable(got[i].status()));
    EXPECT_EQ(std::string(got[i].status().message()),
              "redis connection to 127.0.0.1:54321 lost with 2 commands in flight (each may or "
              "may not have run): connection lost: Connection reset by peer");
  }
  Results after;
  Collect(p.command({"GET", "d"}), &after);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_TRUE(absl::IsUnavailable(after[0].status())) << after[0].status();
}

TEST(RedisProtocolTest, CommandBeforeConnectingFails) {
  RedisProtocol p;
  Results got;
  Collect(p.command({"PING"}), &got);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(absl::IsFailedPrecondition(got[0].status()));
  Collect(p.command(absl::Span<const absl::string_view>()), &got);
  EXPECT_TRUE(absl::IsInvalidArgument(got[1].status()));
}

TEST(RedisProtocolTest, MalformedReplyAbortsAndFailsWhatWaits) {
  RedisProtocol p;
  StringTransport t;
  t.connect(&p);
  Results got;
  Collect(p.command({"PING"}), &got);
  Collect(p.command({"PING"}), &got);
  t.receive("+PONG\r\n?garbage\r\n");
  EXPECT_TRUE(t.aborted());
  t.disconnect();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_TRUE(got[0].ok());
  EXPECT_TRUE(absl::IsUnavailable(got[1].status()));
  EXPECT_NE(got[1].status().message().find("unknown reply type byte 0x3f"), std::string::npos)
      << got[1].status();
}

TEST(RedisProtocolTest, UnsolicitedReplyAborts) {
  RedisProtocol p;
  StringTransport t;
  t.connect(&p);
  t.receive("+OK\r\n");
  EXPECT_TRUE(t.aborted());
  t.disconnect();
}

TEST(RedisProtocolTest, HostileReplyHitsTheLimit) {
  RedisOptions o;
  o.limits.max_bulk_length = 1024;
  RedisProtocol p(o);
  StringTransport t;
  t.connect(&p);
  Results got;
  Collect(p.command({"GET", "big"}), &got);
  t.receive("$1025\r\n");
  EXPECT_TRUE(t.aborted());
  t.disconnect();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_NE(got[0].status().message().find("bulk length 1025 exceeds the limit of 1024"),
            std::string::npos)
      << got[0].status();
}

// RESP2 pub/sub: confirmations matched to the commands, messages to the
// callback, at every split of the server's bytes.
TEST(RedisProtocolTest, PubSubResp2AtEverySplit) {
  const std::string wire =
      "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"
      "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$5\r\nhello\r\n"
      "*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"
      "*3\r\n$10\r\npsubscribe\r\n$3\r\nr.*\r\n:3\r\n"
      "*4\r\n$8\r\npmessage\r\n$3\r\nr.*\r\n$3\r\nr.1\r\n$2\r\nhi\r\n"
      "*2\r\n$4\r\npong\r\n$0\r\n\r\n"
      "*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:2\r\n"
      "*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n"
      "*3\r\n$12\r\npunsubscribe\r\n$3\r\nr.*\r\n:0\r\n"
      "$1\r\nv\r\n";
  for (size_t at = 0; at <= wire.size(); ++at) {
    SCOPED_TRACE(absl::StrCat("split at ", at));
    RedisProtocol p;
    StringTransport t;
    t.connect(&p);
    std::vector<std::string> messages;
    p.setMessageCallback([&](const RedisMessage& m) {
      messages.push_back(absl::StrCat(m.pattern, "|", m.channel, "|", m.payload));
    });
    Results got;
    Collect(p.subscribe({"a", "b"}), &got);
    Collect(p.command({"psubscribe", "r.*"}), &got);
    // Refused while subscribed (RESP2), without reaching the server.
    Results refused;
    Collect(p.command({"GET", "k"}), &refused);
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_TRUE(absl::IsFailedPrecondition(refused[0].status()));
    Collect(p.command({"PING"}), &got);
    Collect(p.unsubscribe(), &got);
    Collect(p.punsubscribe(), &got);
    EXPECT_TRUE(p.channels().empty());
    // Allowed again once nothing is subscribed (as sent).
    Collect(p.command({"GET", "k"}), &got);
    ReceiveSplit(t, wire, at);
    ASSERT_EQ(got.size(), 6u);
    for (const auto& r : got) ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(got[0]->elements.size(), 2u);
    EXPECT_EQ(got[0]->elements[1].elements[1], RedisReply::Bulk("b"));
    EXPECT_EQ(got[2]->elements[0], RedisReply::Bulk("pong"));
    EXPECT_EQ(got[3]->elements.size(), 2u);  // both channels
    EXPECT_EQ(got[4]->elements.size(), 1u);
    EXPECT_EQ(*got[5], RedisReply::Bulk("v"));
    EXPECT_EQ(messages, (std::vector<std::string>{"|a|hello", "r.*|r.1|hi"}));
    EXPECT_FALSE(t.disconnecting());
  }
}

TEST(RedisProtocolTest, UnsubscribeWithNothingSubscribedExpectsOneReply) {
  RedisProtocol p;
  StringTransport t;
  t.connect(&p);
  Results got;
  Collect(p.unsubscribe(), &got);
  Collect(p.command({"PING"}), &got);
  t.receive("*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n+PONG\r\n");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0]->elements.size(), 1u);
  EXPECT_EQ(*got[1], RedisReply::SimpleString("PONG"));
}

// RESP3: messages are pushes, interleaved with ordinary replies.
TEST(RedisProtocolTest, PubSubResp3Pushes) {
  RedisOptions o;
  o.resp3 = true;
  RedisProtocol p(o);
  StringTransport t;
  t.connect(&p);
  t.receive("%0\r\n");  // HELLO's reply
  ASSERT_TRUE(p.ready());
  std::vector<std::string> messages;
  p.setMessageCallback([&](const RedisMessage& m) { messages.push_back(m.payload); });
  std::vector<RedisReply> pushes;
  p.setPushCallback([&](const RedisReply& r) { pushes.push_back(r); });
  Results got;
  Collect(p.subscribe({"c"}), &got);
  Collect(p.command({"GET", "k"}), &got);  // allowed in RESP3
  t.receive(
      ">3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n"
      ">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\n1\r\n"
      ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n"
      "$1\r\nv\r\n"
      ">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\n2\r\n");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_TRUE(got[0].ok());
  EXPECT_EQ(*got[1], RedisReply::Bulk("v"));
  EXPECT_EQ(messages, (std::vector<std::string>{"1", "2"}));
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0].elements[0], RedisReply::Bulk("invalidate"));
}

// A callback may replace or clear itself while it runs (ASan would see the
// running function destroyed otherwise).
TEST(RedisProtocolTest, MessageCallbackMayReplaceItself) {
  RedisProtocol p;
  StringTransport t;
  t.connect(&p);
  std::vector<std::string> seen;
  p.setMessageCallback([&](const RedisMessage& m) {
    seen.push_back("first:" + m.payload);
    p.setMessageCallback([&](const RedisMessage& m2) {
      seen.push_back("second:" + m2.payload);
      p.clearCallbacks();
    });
  });
  Results got;
  Collect(p.subscribe({"c"}), &got);
  const std::string msg = "*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nx\r\n";
  t.receive("*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n" + msg + msg + msg);
  EXPECT_EQ(seen, (std::vector<std::string>{"first:x", "second:x"}));
}

// The reactor may build a protocol and destroy it unstarted, with no
// connectionMade() or connectionLost() (a descriptor the poller refuses:
// Reactor::startConnection). The client must not keep it: its connection is
// the protocol that connectionMade() started.
TEST(RedisClientTest, OnlyAStartedProtocolBecomesTheConnection) {
  absl::StatusOr<std::unique_ptr<Reactor>> reactor = Reactor::Create();
  ASSERT_TRUE(reactor.ok()) << reactor.status();
  RedisClient client(reactor->get(), RedisClientOptions{});
  const Address peer = *Address::Parse("127.0.0.1", 6379);

  client.factory().buildProtocol(peer).reset();
  EXPECT_FALSE(client.ready());
  Results got;
  Collect(client.command({"PING"}), &got);
  EXPECT_EQ(client.queued(), 1u);

  std::unique_ptr<Protocol> p = client.factory().buildProtocol(peer);
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(client.ready());  // built, not started
  StringTransport t;
  t.connect(p.get());
  EXPECT_TRUE(client.ready());
  EXPECT_EQ(client.queued(), 0u);
  EXPECT_EQ(t.take(), EncodeCommand({"PING"}));
  t.receive("+PONG\r\n");
  ASSERT_EQ(got.size(), 1u);
  ASSERT_TRUE(got[0].ok()) << got[0].status();
  EXPECT_EQ(*got[0], RedisReply::SimpleString("PONG"));
  t.disconnect();
  EXPECT_FALSE(client.ready());
}

TEST(RedisAddressTest, Urls) {
  auto o = ParseRedisAddress("redis://:p%40ss@example.com:6380/2");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->host, "example.com");
  EXPECT_EQ(o->port, 6380);
  EXPECT_EQ(o->password, "p@ss");
  EXPECT_EQ(o->username, "");
  EXPECT_EQ(o->db, 2);
  o = ParseRedisAddress("redis://127.0.0.1");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->port, 6379);
  EXPECT_EQ(o->db, 0);
  EXPECT_EQ(o->password, "");
  o = ParseRedisAddress("redis://app:pw@[::1]:7000/");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->host, "::1");
  EXPECT_EQ(o->port, 7000);
  EXPECT_EQ(o->username, "app");
  EXPECT_EQ(o->describe(), "[::1]:7000");
  o = ParseRedisAddress("tcp:host=10.0.0.1:port=7001");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->host, "10.0.0.1");
  EXPECT_EQ(o->port, 7001);
  o = ParseRedisAddress("unix:/run/redis.sock");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->unix_path, "/run/redis.sock");
  EXPECT_EQ(o->describe(), "unix:/run/redis.sock");
  for (absl::string_view bad :
       {"redis://", "redis://h:0", "redis://h:x", "redis://h:", "redis://h/x", "redis://pw@h",
        "redis://:%4@h", "redis://[::1", "rediss://h", "http://h", "redis://h:70000"}) {
    auto r = ParseRedisAddress(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << bad;
  }
  EXPECT_EQ(ParseRedisAddress("rediss://h").status().message(),
            "redis URL: rediss:// (TLS) is not supported");
}

}  // namespace
}  // namespace twist
