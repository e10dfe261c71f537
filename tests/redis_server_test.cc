// RedisClient against a real redis-server, started by each test on a free
// loopback port with persistence off (tests/redis_server.h): pipelining,
// pub/sub across connections, AUTH, SELECT, RESP3, a server killed and
// restarted mid-session, the bounded queue (issue 17).

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "framework/reactor.h"
#include "gtest/gtest.h"
#include "protocols/redis.h"
#include "protocols/redis_client.h"
#include "tests/redis_server.h"
#include "tests/test_util.h"

namespace twist {
namespace testing {
namespace {

using Result = absl::StatusOr<RedisReply>;

class RedisServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TWIST_REQUIRE_REDIS_SERVER();
    reactor_ = MakeReactor("epoll");
  }

  std::unique_ptr<RedisServer> StartRedis(std::vector<std::string> extra = {}) {
    absl::StatusOr<std::unique_ptr<RedisServer>> s = RedisServer::Start(std::move(extra));
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }

  // A client of `url` with quick retries, started.
  std::unique_ptr<RedisClient> Client(const std::string& url, bool resp3 = false,
                                      size_t max_queued = 1024) {
    RedisClientOptions o;
    o.resp3 = resp3;
    o.max_queued = max_queued;
    o.initial_delay = absl::Milliseconds(20);
    o.max_delay = absl::Milliseconds(300);
    absl::StatusOr<RedisOptions> parsed = ParseRedisAddress(url, o);
    EXPECT_TRUE(parsed.ok()) << parsed.status();
    static_cast<RedisOptions&>(o) = *parsed;
    auto c = std::make_unique<RedisClient>(reactor_.get(), o);
    c->start();
    return c;
  }

  // The Deferred's result, turning the loop until it fires.
  Result Wait(Deferred<RedisReply> d) {
    std::optional<Result> r;
    d.addBoth([&r](Result x) -> Result {
      r = x;
      return RedisReply::Null();
    });
    if (!RunUntil(*reactor_, [&] { return r.has_value(); })) {
      return absl::DeadlineExceededError("no reply in time");
    }
    return *r;
  }

  bool WaitReady(RedisClient& c) {
    return RunUntil(*reactor_, [&] { return c.ready(); });
  }

  std::unique_ptr<Reactor> reactor_;
};

TEST_F(RedisServerTest, SetGetAndErrorReplies) {
  auto server = StartRedis();
  ASSERT_NE(server, nullptr);
  auto c = Client(server->url());
  EXPECT_EQ(*Wait(c->command({"SET", "k", "v\r\n\0x"})), RedisReply::SimpleString("OK"));
  EXPECT_EQ(*Wait(c->command({"GET", "k"})), RedisReply::Bulk("v\r\n\0x"));
  EXPECT_EQ(*Wait(c->command({"GET", "missing"})), RedisReply::Null());
  Result wrong = Wait(c->command({"LPUSH", "k", "x"}));
  ASSERT_FALSE(wrong.ok());
  EXPECT_TRUE(IsRedisError(wrong.status())) << wrong.status();
  EXPECT_EQ(RedisErrorCode(wrong.status()), "WRONGTYPE");
  Result unknown = Wait(c->command({"NOSUCHCOMMAND"}));
  EXPECT_EQ(RedisErrorCode(unknown.status()), "ERR");
  // The connection carries on after errors.
  EXPECT_EQ(*Wait(c->command({"RPUSH", "l", "a", "b"})), RedisReply::Integer(2));
  EXPECT_EQ(*Wait(c->command({"LRANGE", "l", "0", "-1"})),
            RedisReply::Array({RedisReply::Bulk("a"), RedisReply::Bulk("b")}));
  // MULTI/EXEC: an error inside EXEC's array stays an element.
  Wait(c->command({"MULTI"})).IgnoreError();
  Wait(c->command({"INCR", "n"})).IgnoreError();
  Wait(c->command({"INCR", "k"})).IgnoreError();
  Result exec = Wait(c->command({"EXEC"}));
  ASSERT_TRUE(exec.ok()) << exec.status();
  ASSERT_EQ(exec->elements.size(), 2u);
  EXPECT_EQ(exec->elements[0], RedisReply::Integer(1));
  EXPECT_TRUE(exec->elements[1].isError());
  EXPECT_EQ(c->connections(), 1);
}

TEST_F(RedisServerTest, Pipelines10000Commands) {
  auto server = StartRedis();
  ASSERT_NE(server, nullptr);
  auto c = Client(server->url());
  ASSERT_TRUE(WaitReady(*c));
  constexpr int kN = 10000;
  // Twice: the first round also pays for the process's fresh heap pages.
  for (int round = 0; round < 2; ++round) {
    std::vector<int64_t> got;
    int failed = 0;
    const absl::Time t0 = absl::Now();
    for (int i = 0; i < kN; ++i) {
      c->command({"INCR", "counter"}).addBoth([&](Result r) -> Result {
        if (r.ok() && r->type == RedisReply::Type::kInteger) {
          got.push_back(r->integer);
        } else {
          ++failed;
        }
        return RedisReply::Null();
      });
    }
    // All were issued before any reply was read: pipelined, not one by one.
    EXPECT_TRUE(got.empty());
    const absl::Duration issued = absl::Now() - t0;
    ASSERT_TRUE(RunUntil(*reactor_, [&] { return got.size() + failed == kN; }));
    const absl::Duration took = absl::Now() - t0;
    EXPECT_EQ(failed, 0);
    for (int i = 0; i < kN; ++i) {
      ASSERT_EQ(got[i], round * kN + i + 1) << "reply " << i << " out of order";
    }
    std::printf("round %d: pipelined %d INCRs in %s (%.0f commands/s; issued in %s)\n", round,
                kN, absl::FormatDuration(took).c_str(), kN / absl::ToDoubleSeconds(took),
                absl::FormatDuration(issued).c_str());
    RecordProperty(absl::StrCat("pipelined_10000_ms_round", round),
                   static_cast<int>(absl::ToInt64Milliseconds(took)));
  }
}

TEST_F(RedisServerTest, PubSubAcrossTwoConnections) {
  auto server = StartRedis();
  ASSERT_NE(server, nullptr);
  auto sub = Client(server->url());
  auto pub = Client(server->url());
  std::vector<RedisMessage> messages;
  sub->setMessageCallback([&](const RedisMessage& m) { messages.push_back(m); });
  ASSERT_TRUE(Wait(sub->subscribe({"room", "other"})).ok());
  ASSERT_TRUE(Wait(sub->psubscribe({"news.*"})).ok());
  constexpr int kN = 200;
  std::vector<Deferred<RedisReply>> published;
  for (int i = 0; i < kN; ++i) published.push_back(pub->command({"PUBLISH", "room", absl::StrCat(i)}));
  EXPECT_EQ(*Wait(pub->command({"PUBLISH", "news.sport", "goal"})), RedisReply::Integer(1));
  for (auto& d : published) EXPECT_EQ(*Wait(d), RedisReply::Integer(1));
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return messages.size() == kN + 1; }));
  for (int i = 0; i < kN; ++i) {
    EXPECT_EQ(messages[i].channel, "room");
    EXPECT_EQ(messages[i].payload, absl::StrCat(i)) << "messages out of order";
    EXPECT_EQ(messages[i].pattern, "");
  }
  EXPECT_EQ(messages[kN].channel, "news.sport");
  EXPECT_EQ(messages[kN].pattern, "news.*");
  EXPECT_EQ(messages[kN].payload, "goal");
  // Unsubscribed: nobody hears it any more.
  Result un = Wait(sub->unsubscribe({"room"}));
  ASSERT_TRUE(un.ok()) << un.status();
  EXPECT_EQ(*Wait(pub->command({"PUBLISH", "room", "late"})), RedisReply::Integer(0));
  EXPECT_EQ(*Wait(pub->command({"PUBLISH", "other", "still"})), RedisReply::Integer(1));
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return messages.size() == kN + 2; }));
  EXPECT_EQ(messages.back().payload, "still");
  // A RESP2 subscriber refuses ordinary commands at once.
  Result refused = Wait(sub->command({"GET", "x"}));
  EXPECT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
}

TEST_F(RedisServerTest, Resp3TypesAndPushes) {
  auto server = StartRedis();
  ASSERT_NE(server, nullptr);
  auto c = Client(server->url(), /*resp3=*/true);
  using Type = RedisReply::Type;
  auto debug = [&](absl::string_view what) { return Wait(c->command({"DEBUG", "PROTOCOL", what})); };
  EXPECT_EQ(debug("map")->type, Type::kMap);
  EXPECT_EQ(debug("set")->type, Type::kSet);
  Result d = debug("double");
  EXPECT_EQ(d->type, Type::kDouble);
  EXPECT_DOUBLE_EQ(d->number, 3.141);
  EXPECT_EQ(debug("bignum")->type, Type::kBigNumber);
  EXPECT_EQ(debug("true")->integer, 1);
  EXPECT_EQ(debug("false")->type, Type::kBoolean);
  EXPECT_EQ(debug("null")->type, Type::kNull);
  Result v = debug("verbatim");
  EXPECT_EQ(v->type, Type::kVerbatim);
  EXPECT_EQ(v->format, "txt");
  Result a = debug("attrib");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_FALSE(a->attributes.empty()) << a->DebugString();
  Wait(c->command({"HSET", "h", "f", "v"})).IgnoreError();
  EXPECT_EQ(Wait(c->command({"HGETALL", "h"}))->type, Type::kMap);
  // With RESP3, one connection subscribes and still runs commands.
  std::vector<RedisMessage> messages;
  c->setMessageCallback([&](const RedisMessage& m) { messages.push_back(m); });
  ASSERT_TRUE(Wait(c->subscribe({"ch"})).ok());
  EXPECT_EQ(*Wait(c->command({"PUBLISH", "ch", "self"})), RedisReply::Integer(1));
  EXPECT_EQ(*Wait(c->command({"GET", "missing"})), RedisReply::Null());
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return messages.size() == 1; }));
  EXPECT_EQ(messages[0].payload, "self");
}

TEST_F(RedisServerTest, AuthWithRequirepass) {
  auto server = StartRedis({"--requirepass", "s3cret:@"});
  ASSERT_NE(server, nullptr);
  auto good = Client(absl::StrCat("redis://:s3cret%3A%40@127.0.0.1:", server->port()));
  EXPECT_EQ(*Wait(good->command({"SET", "k", "v"})), RedisReply::SimpleString("OK"));

  auto none = Client(server->url());
  Result noauth = Wait(none->command({"GET", "k"}));
  EXPECT_EQ(RedisErrorCode(noauth.status()), "NOAUTH") << noauth.status();

  auto wrong = Client(absl::StrCat("redis://:nope@127.0.0.1:", server->port()));
  std::vector<absl::Status> changes;
  wrong->setConnectionCallback([&](const absl::Status& s) { changes.push_back(s); });
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return !changes.empty(); }));
  EXPECT_TRUE(absl::IsUnauthenticated(changes[0])) << changes[0];
  EXPECT_NE(changes[0].message().find("WRONGPASS"), std::string::npos) << changes[0];
  // It keeps trying, with back-off, and never becomes ready; commands wait.
  Deferred<RedisReply> waiting = wrong->command({"GET", "k"});
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return wrong->factory().retries() >= 2; }));
  EXPECT_FALSE(waiting.called());
  EXPECT_FALSE(wrong->ready());
  EXPECT_EQ(changes.size(), 1u) << "told once, not per attempt";
  wrong->stop();
  ASSERT_TRUE(waiting.called());
  EXPECT_TRUE(absl::IsCancelled(Wait(waiting).status()));
}

TEST_F(RedisServerTest, SelectDatabase) {
  auto server = StartRedis();
  ASSERT_NE(server, nullptr);
  auto db2 = Client(server->url() + "/2");
  auto db0 = Client(server->url());
  EXPECT_EQ(*Wait(db2->command({"SET", "k", "two"})), RedisReply::SimpleString("OK"));
  EXPECT_EQ(*Wait(db0->command({"GET", "k"})), RedisReply::Null());
  EXPECT_EQ(*Wait(db2->command({"GET", "k"})), RedisReply::Bulk("two"));
  auto bad = Client(server->url() + "/99");
  std::vector<absl::Status> changes;
  bad->setConnectionCallback([&](const absl::Status& s) { changes.push_back(s); });
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return !changes.empty(); }));
  EXPECT_TRUE(absl::IsFailedPrecondition(changes[0])) << changes[0];
  EXPECT_NE(changes[0].message().find("SELECT 99"), std::string::npos) << changes[0];
}

TEST_F(RedisServerTest, KilledMidSessionThenRestarted) {
  auto server = StartRedis();
  ASSERT_NE(server, nullptr);
  auto cmd = Client(server->url());
  auto sub = Client(server->url());
  auto pub = Client(server->url());
  std::vector<std::string> messages;
  sub->setMessageCallback([&](const RedisMessage& m) { messages.push_back(m.payload); });
  std::vector<absl::Status> cmd_changes;
  cmd->setConnectionCallback([&](const absl::Status& s) { cmd_changes.push_back(s); });
  ASSERT_TRUE(Wait(sub->subscribe({"ch"})).ok());
  EXPECT_EQ(*Wait(pub->command({"PUBLISH", "ch", "before"})), RedisReply::Integer(1));
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return messages.size() == 1; }));
  ASSERT_TRUE(WaitReady(*cmd));
  ASSERT_EQ(cmd_changes.size(), 1u);
  EXPECT_TRUE(cmd_changes[0].ok());

  // In flight when Redis dies: a BLPOP that blocks forever, and a PING
  // pipelined behind it.
  Deferred<RedisReply> blpop = cmd->command({"BLPOP", "nothing", "0"});
  Deferred<RedisReply> ping = cmd->command({"PING"});
  ASSERT_TRUE(server->Kill().ok());
  Result blpop_r = Wait(blpop);
  Result ping_r = Wait(ping);
  for (const Result& r : {blpop_r, ping_r}) {
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
    EXPECT_NE(r.status().message().find("lost with 2 commands in flight"), std::string::npos)
        << r.status();
  }
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return cmd_changes.size() == 2; }));
  EXPECT_TRUE(absl::IsUnavailable(cmd_changes[1])) << cmd_changes[1];
  EXPECT_FALSE(cmd->ready());

  // While it is down: commands wait in the queue; a few failed attempts
  // are not reported again.
  Deferred<RedisReply> queued = cmd->command({"SET", "k", "after"});
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return cmd->factory().retries() >= 2; }));
  EXPECT_FALSE(queued.called());
  EXPECT_EQ(cmd->queued(), 1u);
  EXPECT_EQ(cmd_changes.size(), 2u);

  ASSERT_TRUE(server->Restart().ok());
  EXPECT_EQ(*Wait(queued), RedisReply::SimpleString("OK"));
  ASSERT_EQ(cmd_changes.size(), 3u);
  EXPECT_TRUE(cmd_changes[2].ok());
  EXPECT_EQ(*Wait(cmd->command({"GET", "k"})), RedisReply::Bulk("after"));
  EXPECT_EQ(cmd->connections(), 2);

  // The subscriber re-subscribed by itself. A fresh subscription to
  // another channel, sent after the re-subscription on the same
  // connection, tells when Redis has read it.
  ASSERT_TRUE(WaitReady(*sub));
  ASSERT_TRUE(Wait(sub->subscribe({"sync"})).ok());
  EXPECT_EQ(sub->connections(), 2);
  EXPECT_EQ(*Wait(pub->command({"PUBLISH", "ch", "after"})), RedisReply::Integer(1));
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return messages.size() == 2; }));
  EXPECT_EQ(messages, (std::vector<std::string>{"before", "after"}));
}

TEST_F(RedisServerTest, QueueWhileDisconnectedIsBounded) {
  auto server = StartRedis();
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(server->Stop().ok());  // its port, with nothing listening
  auto c = Client(server->url(), false, /*max_queued=*/3);
  std::vector<absl::Status> changes;
  c->setConnectionCallback([&](const absl::Status& s) { changes.push_back(s); });
  std::vector<Deferred<RedisReply>> queued;
  for (int i = 0; i < 3; ++i) queued.push_back(c->command({"INCR", "n"}));
  Deferred<RedisReply> over = c->command({"INCR", "n"});
  ASSERT_TRUE(over.called()) << "a full queue fails a new command at once";
  Result over_r = Wait(over);
  EXPECT_TRUE(absl::IsResourceExhausted(over_r.status())) << over_r.status();
  // Subscriptions count too.
  Result sub_over = Wait(c->subscribe({"x"}));
  EXPECT_TRUE(absl::IsResourceExhausted(sub_over.status())) << sub_over.status();
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return !changes.empty(); }));
  EXPECT_TRUE(absl::IsUnavailable(changes[0])) << changes[0];  // connection refused
  for (auto& d : queued) EXPECT_FALSE(d.called());

  ASSERT_TRUE(server->Restart().ok());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(*Wait(queued[i]), RedisReply::Integer(i + 1));
  EXPECT_EQ(c->queued(), 0u);
  EXPECT_EQ(*Wait(c->command({"INCR", "n"})), RedisReply::Integer(4));
}

// The README's example, as written there (with the server's address).
TEST_F(RedisServerTest, ReadmeExample) {
  auto server = StartRedis({"--requirepass", "secret"});
  ASSERT_NE(server, nullptr);
  Reactor* reactor = reactor_.get();
  std::ostringstream out;
  auto& cout = out;

  twist::RedisClientOptions options;  // max_queued, back-off, timeout
  auto address = twist::ParseRedisAddress(
      absl::StrCat("redis://:secret@127.0.0.1:", server->port(), "/2"), options);
  ASSERT_TRUE(address.ok()) << address.status();
  static_cast<twist::RedisOptions&>(options) = *address;
  twist::RedisClient redis(reactor, options);
  redis.start();

  redis.command({"SET", "greeting", "hello"});
  redis.command({"GET", "greeting"}).addCallbacks(
      [&cout](twist::RedisReply r) { cout << r.str << "\n"; return r; },
      [](absl::Status e) -> absl::StatusOr<twist::RedisReply> { return e; });

  redis.setMessageCallback([&cout](const twist::RedisMessage& m) {
    cout << m.channel << ": " << m.payload << "\n";
  });
  Deferred<RedisReply> subscribed = redis.subscribe({"room"});
  redis.setConnectionCallback([&cout](const absl::Status& s) {
    cout << (s.ok() ? "redis is back" : "redis is away: " + std::string(s.message())) << "\n";
  });

  ASSERT_TRUE(Wait(subscribed).ok());
  auto pub = Client(absl::StrCat("redis://:secret@127.0.0.1:", server->port()));
  EXPECT_EQ(*Wait(pub->command({"PUBLISH", "room", "hi"})), RedisReply::Integer(1));
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return out.str() == "redis is back\nhello\nroom: hi\n"; }))
      << out.str();
}

TEST_F(RedisServerTest, StoppedClientFailsWhatIsQueued) {
  auto server = StartRedis();
  ASSERT_NE(server, nullptr);
  auto c = Client(server->url());
  ASSERT_TRUE(WaitReady(*c));
  Deferred<RedisReply> blocked = c->command({"BLPOP", "nothing", "0"});
  c->stop();
  Result r = Wait(blocked);
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  EXPECT_TRUE(absl::IsCancelled(Wait(c->command({"PING"})).status()));
}

}  // namespace
}  // namespace testing
}  // namespace twist
