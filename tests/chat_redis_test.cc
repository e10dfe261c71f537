// chat_server --redis (issue 17): several chat_server processes share one
// room through a real redis-server that the test starts (tests/
// redis_server.h). Users are real sockets; every wait is for output, with
// a deadline.

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "framework/address.h"
#include "gtest/gtest.h"
#include "tests/chat_user.h"
#include "tests/line_client.h"
#include "tests/redis_server.h"
#include "tests/subprocess.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using testing::BlockingClient;
using testing::LineClient;
using testing::RedisServer;
using testing::ServerProgram;
using testing::User;

constexpr absl::Duration kWait = absl::Seconds(20);
// --redis_expiry in these tests: a dead server's users leave within 4/3 of
// it (docs/design.md, "Chat across servers").
constexpr double kExpiry = 1.5;
constexpr absl::string_view kAway =
    "* Other servers are unreachable; only users on this server see what you say.";
constexpr absl::string_view kBack = "* Other servers are reachable again.";

class ChatRedisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TWIST_REQUIRE_REDIS_SERVER();
    absl::StatusOr<std::unique_ptr<RedisServer>> r = RedisServer::Start();
    ASSERT_TRUE(r.ok()) << r.status();
    redis_ = *std::move(r);
  }

  // A chat_server on the test's Redis.
  ServerProgram StartChat(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {absl::StrCat("--redis=", redis_->url()),
                                     absl::StrCat("--redis_expiry=", kExpiry)};
    args.insert(args.end(), extra.begin(), extra.end());
    absl::StatusOr<ServerProgram> s = testing::StartServerProgram("examples/chat_server", args);
    EXPECT_TRUE(s.ok()) << s.status();
    if (!s.ok()) abort();
    return *std::move(s);
  }

  // Who joins where, for JoinInTurn.
  struct Joining {
    const ServerProgram* server;
    const char* name;
  };
  // Users joining in turn, each on its server; everyone already in sees
  // each join. Once it returns, no join notice is on its way to anyone: a
  // notice crosses Redis to each server on its own, and a server's writes
  // to Redis go out after it welcomed the user, so a newcomer may still be
  // sent the join of someone in before it (design.md: "A user who joins gets
  // what its server receives from then on"), allowed once. Two rounds of
  // /who settle them: each server answers the first after what it
  // published reached Redis, so by the second every join is published, and
  // Redis sends a server the channel's messages before the answer, on the
  // same connection. Check HasFailure() after.
  template <size_t N>
  std::array<std::unique_ptr<User>, N> JoinInTurn(const Joining (&who)[N]) {
    std::array<std::unique_ptr<User>, N> users;
    std::vector<std::vector<std::string>> strays(N);  // each user's, so far
    // `line` next at user i, after nothing but joins of users in before it,
    // each once.
    auto expect = [&](size_t i, absl::string_view line) {
      absl::StatusOr<std::vector<std::string>> before = users[i]->waitFor(line);
      ASSERT_TRUE(before.ok()) << before.status() << " at " << who[i].name;
      for (const std::string& l : *before) {
        bool earlier = false;
        for (size_t k = 0; k < i; ++k) {
          earlier |= l == absl::StrCat("* ", who[k].name, " has joined");
        }
        const bool again = std::find(strays[i].begin(), strays[i].end(), l) != strays[i].end();
        EXPECT_TRUE(earlier && !again) << "before '" << line << "' at " << who[i].name << ": " << l;
        strays[i].push_back(l);
      }
    };
    std::vector<std::string> names;
    for (size_t i = 0; i < N; ++i) {
      users[i] = User::Join(who[i].server->address, who[i].name);
      if (users[i] == nullptr) return users;
      for (size_t j = 0; j < i; ++j) expect(j, absl::StrCat("* ", who[i].name, " has joined"));
      names.push_back(who[i].name);
    }
    std::sort(names.begin(), names.end());
    const std::string online = absl::StrCat("Online: ", absl::StrJoin(names, ", "));
    for (int round = 0; round < 2; ++round) {
      for (size_t i = 0; i < N; ++i) {
        users[i]->send("/who\n");
        expect(i, online);
      }
    }
    return users;
  }

  // The number of users of each server in the room, as Redis has them
  // (through redis-cli), sorted; empty if that failed.
  std::vector<int> UsersPerServer() {
    absl::StatusOr<testing::Subprocess> cli = testing::Subprocess::Start(
        "/usr/bin/redis-cli",
        {"-p", absl::StrCat(redis_->port()), "--raw", "EVAL",
         "local o = {} for _, s in ipairs(redis.call('SMEMBERS', 'twist:chat:servers')) do "
         "o[#o + 1] = redis.call('SCARD', 'twist:chat:users:'..s) end return o",
         "0"});
    if (!cli.ok()) return {};
    absl::StatusOr<int> status = cli->Wait(kWait);
    if (!status.ok() || *status != 0) return {};
    std::vector<int> out;
    for (absl::string_view l : absl::StrSplit(cli->out(), '\n', absl::SkipEmpty())) {
      int n = 0;
      if (absl::SimpleAtoi(l, &n)) out.push_back(n);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  std::unique_ptr<RedisServer> redis_;
};

TEST_F(ChatRedisTest, TwoServersShareOneRoom) {
  ServerProgram one = StartChat();
  ServerProgram two = StartChat();
  // anna is alice's neighbour.
  auto [alice, anna] = JoinInTurn({{&one, "alice"}, {&one, "anna"}});
  ASSERT_FALSE(HasFailure());

  // A name is unique across servers.
  absl::StatusOr<BlockingClient> c = BlockingClient::Connect(two.address);
  ASSERT_TRUE(c.ok()) << c.status();
  User bob(*std::move(c));
  bob.send("alice\nanna\nbob\n");
  bob.expect("What's your name?");
  bob.expect("Name taken, please choose another.");
  bob.expect("Name taken, please choose another.");
  bob.expect("Welcome, bob!");
  alice->expect("* bob has joined");
  anna->expect("* bob has joined");
  std::unique_ptr<User> bea = User::Join(two.address, "bea");
  ASSERT_NE(bea, nullptr);
  bob.expect("* bea has joined");
  alice->expect("* bea has joined");
  anna->expect("* bea has joined");

  // /who lists the users of both servers, from either.
  EXPECT_EQ(alice->who(), "Online: alice, anna, bea, bob");
  EXPECT_EQ(bob.who(), "Online: alice, anna, bea, bob");

  // /me and /nick across servers; the sender's lines in order.
  bob.send("hi all\n/me waves\n/nick robert\nbye\n");
  bob.expect("You are now robert.");
  for (User* u : {alice.get(), anna.get()}) {
    u->expect("<bob> hi all");
    u->expect("* bob waves");
    u->expect("* bob is now robert");
    u->expect("<robert> bye");
  }
  bea->expect("<bob> hi all");
  bea->expect("* bob waves");
  bea->expect("* bob is now robert");
  bea->expect("<robert> bye");
  // The old name is free everywhere, the new one taken everywhere.
  absl::StatusOr<BlockingClient> c2 = BlockingClient::Connect(one.address);
  ASSERT_TRUE(c2.ok()) << c2.status();
  User carl(*std::move(c2));
  carl.send("robert\nbob\n");
  carl.expect("What's your name?");
  carl.expect("Name taken, please choose another.");
  carl.expect("Welcome, bob!");
  for (User* u : {alice.get(), anna.get(), &bob, bea.get()}) u->expect("* bob has joined");
  EXPECT_EQ(bea->who(), "Online: alice, anna, bea, bob, robert");

  // Exactly once and in order: 300 lines from alice reach everyone once.
  std::string lines;
  std::vector<std::string> want;
  for (int i = 0; i < 300; ++i) {
    absl::StrAppend(&lines, "line ", i, "\n");
    want.push_back(absl::StrCat("<alice> line ", i));
  }
  alice->send(lines);
  for (User* u : {&bob, bea.get()}) {
    absl::StatusOr<std::vector<std::string>> got = u->waitFor(want.back());
    ASSERT_TRUE(got.ok()) << got.status();
    got->push_back(want.back());
    EXPECT_EQ(*got, want);
  }
  // A line said on server two after that one reached it comes after every
  // copy of alice's lines anywhere (one Redis, one order): what server one's
  // users see before it is alice's lines once (anna, carl) and nothing
  // (alice: her own lines are never sent back to her).
  bob.send("marker\n");
  for (User* u : {anna.get(), &carl}) {
    absl::StatusOr<std::vector<std::string>> got = u->waitFor("<robert> marker");
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, want);
  }
  bea->expect("<robert> marker");
  alice->expect("<robert> marker");

  // Leaving: everyone is told once; the name is free again.
  bob.send("/quit\n");
  bob.expect("Bye!");
  for (User* u : {alice.get(), anna.get(), bea.get(), &carl}) u->expect("* robert has left");
  std::unique_ptr<User> robert = User::Join(one.address, "robert");
  ASSERT_NE(robert, nullptr);
  bea->expect("* robert has joined");
  EXPECT_EQ(robert->who(), "Online: alice, anna, bea, bob, robert");

  // A server that stops cleanly (SIGTERM) tells the others its users left.
  two.process.Signal(SIGTERM);
  absl::StatusOr<int> status = two.process.Wait(kWait);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  absl::StatusOr<std::vector<std::string>> got = alice->waitFor("* bea has left");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(alice->who(), "Online: alice, anna, bob, robert");
}

// kill -9 of a server: its users' leaves reach the others, and their names
// are free, within 4/3 of --redis_expiry (plus the test's own slack).
TEST_F(ChatRedisTest, KilledServerUsersLeaveWithinTheBound) {
  ServerProgram one = StartChat();
  ServerProgram two = StartChat();
  auto [alice, anna, bob] = JoinInTurn({{&one, "alice"}, {&one, "anna"}, {&two, "bob"}});
  ASSERT_FALSE(HasFailure());

  const absl::Time killed = absl::Now();
  one.process.Signal(SIGKILL);
  absl::StatusOr<int> status = one.process.Wait(kWait);
  ASSERT_TRUE(status.ok()) << status.status();
  // Both leaves, in either order, and nothing else.
  std::vector<std::string> left;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<std::string> l = bob->next();
    ASSERT_TRUE(l.ok()) << l.status();
    left.push_back(*l);
  }
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"* alice has left", "* anna has left"}));
  const absl::Duration took = absl::Now() - killed;
  EXPECT_LT(took, absl::Seconds(kExpiry * 4 / 3) + absl::Seconds(2)) << took;
  EXPECT_EQ(bob->who(), "Online: bob");
  // The names are free: they can be taken on the server that is left.
  std::unique_ptr<User> alice2 = User::Join(two.address, "alice");
  ASSERT_NE(alice2, nullptr);
  bob->expect("* alice has joined");
  EXPECT_EQ(bob->who(), "Online: alice, bob");
}

// Redis killed mid-conversation and started again: the users of each
// server go on talking among themselves, are told once that the other
// servers are unreachable and once that they are back, and lines cross
// servers again afterwards; nothing said meanwhile is delivered late.
TEST_F(ChatRedisTest, RedisKilledAndRestarted) {
  ServerProgram one = StartChat();
  ServerProgram two = StartChat();
  auto [alice, anna, bob] = JoinInTurn({{&one, "alice"}, {&one, "anna"}, {&two, "bob"}});
  ASSERT_FALSE(HasFailure());
  bob->send("before\n");
  alice->expect("<bob> before");
  anna->expect("<bob> before");

  ASSERT_TRUE(redis_->Kill().ok());
  const std::string away(kAway), back(kBack);
  alice->expect(away);
  anna->expect(away);
  bob->expect(away);
  // Local chat goes on; nothing crosses.
  alice->send("only here\n");
  anna->expect("<alice> only here");
  bob->send("nobody hears\n/who\n");
  bob->expect("Online: bob");
  alice->send("/who\n");
  alice->expect("Online: alice, anna");
  // A user who joins meanwhile is told too, after its welcome.
  std::unique_ptr<User> carl = User::Join(one.address, "carl");
  ASSERT_NE(carl, nullptr);
  carl->expect(away);
  alice->expect("* carl has joined");
  anna->expect("* carl has joined");
  // Two users take one name on either side: Redis decides once it is back.
  std::unique_ptr<User> dave1 = User::Join(one.address, "dave");
  ASSERT_NE(dave1, nullptr);
  dave1->expect(away);
  for (User* u : {alice.get(), anna.get(), carl.get()}) u->expect("* dave has joined");
  std::unique_ptr<User> dave2 = User::Join(two.address, "dave");
  ASSERT_NE(dave2, nullptr);
  dave2->expect(away);
  bob->expect("* dave has joined");

  ASSERT_TRUE(redis_->Restart().ok());
  for (User* u : {alice.get(), anna.get(), bob.get(), carl.get(), dave1.get(), dave2.get()}) {
    u->expect(back);
  }
  // The server that registers again first keeps the name; the other's dave
  // is told and disconnected, and only its neighbours see it leave.
  const std::string evicted =
      "Your name dave was taken on another server while this one could not reach it; "
      "please reconnect.";
  User* lost = nullptr;
  const absl::Time deadline = absl::Now() + kWait;
  while (lost == nullptr && absl::Now() < deadline) {
    for (User* d : {dave1.get(), dave2.get()}) {
      absl::StatusOr<std::string> l = d->next(absl::Milliseconds(50));
      if (l.ok()) {
        EXPECT_EQ(*l, evicted);
        lost = d;
      }
    }
  }
  ASSERT_NE(lost, nullptr) << "no dave was told his name was taken";
  EXPECT_TRUE(absl::IsUnavailable(lost->next().status())) << "closed after the line";
  if (lost == dave1.get()) {
    for (User* u : {alice.get(), anna.get(), carl.get()}) u->expect("* dave has left");
  } else {
    bob->expect("* dave has left");
  }
  // Cross-server again, and nothing from the outage arrives late.
  alice->send("again\n");
  bob->expect("<alice> again");
  bob->send("welcome back\n");
  for (User* u : {alice.get(), anna.get(), carl.get()}) {
    if (u != alice.get()) u->expect("<alice> again");
    u->expect("<bob> welcome back");
  }
  // The names were claimed again: /who everywhere, and unique.
  EXPECT_EQ(bob->who(), "Online: alice, anna, bob, carl, dave");
  absl::StatusOr<BlockingClient> c = BlockingClient::Connect(two.address);
  ASSERT_TRUE(c.ok()) << c.status();
  User dup(*std::move(c));
  dup.send("carl\n");
  dup.expect("What's your name?");
  dup.expect("Name taken, please choose another.");
  // Still exactly once each: no second notice came meanwhile.
  for (User* u : {alice.get(), anna.get(), bob.get(), carl.get()}) {
    std::vector<std::string> rest = u->drain();
    EXPECT_EQ(std::count(rest.begin(), rest.end(), away), 0);
    EXPECT_EQ(std::count(rest.begin(), rest.end(), back), 0);
  }
}

// --workers=2 --redis: each worker is a server of the room (its own link
// and id), so users on either worker and on another server are in one
// conversation.
TEST_F(ChatRedisTest, WorkersShareTheRoom) {
  ASSERT_EQ(::access("/usr/bin/redis-cli", X_OK), 0) << "redis-cli (redis-tools) is missing";
  ServerProgram workers = StartChat({"--workers=2"});
  ServerProgram two = StartChat();
  std::unique_ptr<User> bob = User::Join(two.address, "bob");
  ASSERT_NE(bob, nullptr);
  // Users join the workers' port until both workers have some (the kernel
  // hands each connection to one of them).
  std::vector<std::unique_ptr<User>> users;
  std::vector<int> spread;
  while (users.size() < 40) {
    users.push_back(User::Join(workers.address, absl::StrCat("u", users.size())));
    ASSERT_NE(users.back(), nullptr);
    ASSERT_TRUE(bob->waitFor(absl::StrCat("* u", users.size() - 1, " has joined")).ok());
    spread = UsersPerServer();
    if (users.size() >= 4 && spread.size() == 3 && spread[0] == 1 && spread[1] >= 1) break;
  }
  // bob's server holds 1, each worker at least 1.
  ASSERT_EQ(spread.size(), 3u) << absl::StrJoin(spread, ",");
  ASSERT_GE(spread[1], 1) << "every user landed on one worker: " << absl::StrJoin(spread, ",");
  // A join notice crosses Redis to each server on its own, so bob can see
  // the last one before a user on the other worker does: join notices still
  // in flight are skipped below rather than drained here.
  for (auto& u : users) u->drain();
  // Everyone says one line; everyone else gets each exactly once.
  for (size_t i = 0; i < users.size(); ++i) users[i]->send(absl::StrCat("hi from ", i, "\n"));
  bob->send("hi from bob\n");
  std::vector<std::string> all;
  for (size_t i = 0; i < users.size(); ++i) all.push_back(absl::StrCat("<u", i, "> hi from ", i));
  all.push_back("<bob> hi from bob");
  std::sort(all.begin(), all.end());
  std::vector<User*> everyone = {bob.get()};
  for (auto& u : users) everyone.push_back(u.get());
  for (size_t k = 0; k < everyone.size(); ++k) {
    std::vector<std::string> got;
    while (got.size() + 1 < all.size()) {
      absl::StatusOr<std::string> l = everyone[k]->next();
      ASSERT_TRUE(l.ok()) << l.status() << " user " << k;
      if (absl::StartsWith(*l, "* u") && absl::EndsWith(*l, " has joined")) continue;
      got.push_back(*l);
    }
    std::sort(got.begin(), got.end());
    std::vector<std::string> want = all;
    const std::string own = k == 0 ? "<bob> hi from bob"
                                   : absl::StrCat("<u", k - 1, "> hi from ", k - 1);
    want.erase(std::find(want.begin(), want.end(), own));
    EXPECT_EQ(got, want) << "user " << k;
  }
  std::vector<std::string> names = {"bob"};
  for (size_t i = 0; i < users.size(); ++i) names.push_back(absl::StrCat("u", i));
  std::sort(names.begin(), names.end());
  const std::string online = absl::StrCat("Online: ", absl::StrJoin(names, ", "));
  EXPECT_EQ(bob->who(), online);
  EXPECT_EQ(users.front()->who(), online);
  EXPECT_EQ(users.back()->who(), online);
  // The workers stop cleanly on SIGTERM and leave the room.
  workers.process.Signal(SIGTERM);
  absl::StatusOr<int> status = workers.process.Wait(kWait);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  std::vector<std::string> left;
  for (size_t i = 0; i < users.size(); ++i) {
    absl::StatusOr<std::string> l = bob->next();
    ASSERT_TRUE(l.ok()) << l.status();
    left.push_back(*l);
  }
  EXPECT_EQ(bob->who(), "Online: bob");
}

// --threads=2 --redis: each reactor of the pool is a server of the room of
// its own (its own link and id), as each --workers worker is: users on
// either reactor and on another server are in one conversation.
TEST_F(ChatRedisTest, ThreadsShareTheRoom) {
  ASSERT_EQ(::access("/usr/bin/redis-cli", X_OK), 0) << "redis-cli (redis-tools) is missing";
  ServerProgram threads = StartChat({"--threads=2"});
  ServerProgram two = StartChat();
  // Round robin: u0 and u2 on one reactor, u1 and u3 on the other.
  auto [bob, u0, u1, u2, u3] = JoinInTurn(
      {{&two, "bob"}, {&threads, "u0"}, {&threads, "u1"}, {&threads, "u2"}, {&threads, "u3"}});
  ASSERT_FALSE(HasFailure());
  std::vector<User*> everyone = {bob.get(), u0.get(), u1.get(), u2.get(), u3.get()};
  // Three servers in the room: bob's with 1 user, each reactor with 2.
  EXPECT_EQ(UsersPerServer(), (std::vector<int>{1, 2, 2}));

  // Everyone says 20 lines at once; everyone else gets each exactly once,
  // each sender's in order.
  constexpr int kLines = 20;
  for (User* u : everyone) {
    std::string lines;
    for (int k = 0; k < kLines; ++k) absl::StrAppend(&lines, "m", k, "\n");
    u->send(lines);
  }
  const std::vector<std::string> names = {"bob", "u0", "u1", "u2", "u3"};
  for (size_t r = 0; r < everyone.size(); ++r) {
    // Per sender, what reached user r, in order of arrival.
    std::vector<std::vector<std::string>> from(names.size());
    for (size_t n = 0; n < kLines * (names.size() - 1); ++n) {
      absl::StatusOr<std::string> l = everyone[r]->next();
      ASSERT_TRUE(l.ok()) << l.status() << " user " << names[r];
      for (size_t s = 0; s < names.size(); ++s) {
        if (absl::StartsWith(*l, absl::StrCat("<", names[s], "> "))) from[s].push_back(*l);
      }
    }
    for (size_t s = 0; s < names.size(); ++s) {
      std::vector<std::string> want;
      if (s != r) {
        for (int k = 0; k < kLines; ++k) want.push_back(absl::StrCat("<", names[s], "> m", k));
      }
      EXPECT_EQ(from[s], want) << names[s] << "'s lines as " << names[r] << " got them";
    }
  }
  // No copy comes late: a last line from each server (bob, and u1 on the
  // other reactor than u0's) is all that comes next; a duplicate of a line
  // said earlier would come before it, in the order of the channel.
  bob->send("end\n");
  everyone[2]->send("end\n");
  for (size_t r = 0; r < everyone.size(); ++r) {
    std::vector<std::string> want;
    for (size_t s : {0, 2}) {
      if (s != r) want.push_back(absl::StrCat("<", names[s], "> end"));
    }
    std::vector<std::string> got;
    for (size_t n = 0; n < want.size(); ++n) {
      absl::StatusOr<std::string> l = everyone[r]->next();
      ASSERT_TRUE(l.ok()) << l.status() << " user " << names[r];
      got.push_back(*l);
    }
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, want) << "user " << names[r];
  }
  // /who lists everyone, from either reactor and the other server.
  const std::string online = "Online: bob, u0, u1, u2, u3";
  for (User* u : everyone) EXPECT_EQ(u->who(), online);
  // A name is unique across reactors and servers: a newcomer on one
  // reactor tries the names of both reactors' users and bob's.
  absl::StatusOr<BlockingClient> c = BlockingClient::Connect(threads.address);
  ASSERT_TRUE(c.ok()) << c.status();
  auto carl = std::make_unique<User>(*std::move(c));
  carl->send("u0\nu1\nbob\ncarl\n");
  carl->expect("What's your name?");
  for (int i = 0; i < 3; ++i) carl->expect("Name taken, please choose another.");
  carl->expect("Welcome, carl!");
  for (User* u : everyone) u->expect("* carl has joined");
  absl::StatusOr<BlockingClient> c2 = BlockingClient::Connect(two.address);
  ASSERT_TRUE(c2.ok()) << c2.status();
  User dup(*std::move(c2));
  dup.send("u2\nu3\ncarl\n");
  dup.expect("What's your name?");
  for (int i = 0; i < 3; ++i) dup.expect("Name taken, please choose another.");
  EXPECT_EQ(bob->who(), "Online: bob, carl, u0, u1, u2, u3");

  // SIGTERM: every reactor leaves the room, the process exits 0, and bob
  // sees each of its users leave once.
  std::vector<User*> theirs(everyone.begin() + 1, everyone.end());
  theirs.push_back(carl.get());
  threads.process.Signal(SIGTERM);
  absl::StatusOr<int> status = threads.process.Wait(kWait);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  // Both reactors' servers left Redis as they stopped: their heartbeats
  // would keep them there for another second at least.
  EXPECT_EQ(UsersPerServer(), std::vector<int>{1});
  std::vector<std::string> left;
  for (size_t i = 0; i < theirs.size(); ++i) {
    absl::StatusOr<std::string> l = bob->next();
    ASSERT_TRUE(l.ok()) << l.status();
    left.push_back(*l);
  }
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"* carl has left", "* u0 has left", "* u1 has left",
                                            "* u2 has left", "* u3 has left"}));
  for (User* u : theirs) {
    absl::StatusOr<std::string> l;
    while ((l = u->next()).ok()) {
    }
    EXPECT_TRUE(absl::IsUnavailable(l.status())) << l.status();
  }
  // Their names are free.
  EXPECT_EQ(bob->who(), "Online: bob");
  std::unique_ptr<User> again = User::Join(two.address, "u0");
  ASSERT_NE(again, nullptr);
  bob->expect("* u0 has joined");
}

TEST(ChatRedisFlagsTest, BadRedisUrlIsBadUsage) {
  testing::ExpectOneLineFailure(
      "examples/chat_server", {"--redis=redis://127.0.0.1:99999"},
      "chat_server: invalid --redis 'redis://127.0.0.1:99999': redis URL: port '99999' is not "
      "a number in 1..65535");
  testing::ExpectOneLineFailure(
      "examples/chat_server", {"--redis=redis://127.0.0.1:6379", "--redis_expiry=0"},
      "chat_server: invalid --redis_expiry 0: must be 0.1..86400 seconds");
  testing::ExpectOneLineFailure("examples/chat_server", {"--redis_expiry=-1", "--port=0"},
                                "chat_server: invalid --redis_expiry -1: must be 0.1..86400 "
                                "seconds");
  testing::ExpectOneLineFailure(
      "examples/chat_server", {"--workers=2"},
      "chat_server: --workers=2: chat cannot share its users across processes without "
      "--redis: serve it in one process, or give --redis");
}

}  // namespace
}  // namespace twist
