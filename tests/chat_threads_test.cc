// Chat across reactors: one ChatRoom shared by a ChatFactory per reactor,
// each reactor run() on a thread of its own, with real clients over
// loopback TCP. Unit tests first, on StringTransports and a stand-in for
// the reactors' callFromThread that runs the posts when the test says.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <future>
#include <initializer_list>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "framework/reactor.h"
#include "framework/reactor_pool.h"
#include "framework/string_transport.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "protocols/chat.h"
#include "tests/fake_chat_user.h"
#include "tests/line_client.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using FakeUser = testing::FakeChatUser;

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::BlockingClient;
using testing::kTimeout;

// ---- Unit tests: posts run when the test says --------------------------------

// A reactor's callFromThread, held until run() (one thread: the test's).
class HeldCalls : public ReactorThreads {
 public:
  void callFromThread(absl::AnyInvocable<void()> fn) override {
    calls_.push_back(std::move(fn));
  }
  absl::StatusOr<uint64_t> callInThread(absl::AnyInvocable<void()>,
                                        absl::AnyInvocable<void(absl::Status)>) override {
    return absl::UnimplementedError("not here");
  }
  void cancelThreadCall(uint64_t) override {}
  void suggestThreadPoolSize(int) override {}
  std::weak_ptr<const void> liveness() const override { return alive_; }
  std::shared_ptr<const int> alive_ = std::make_shared<const int>(0);
  // Runs what was posted so far; returns how many calls that was.
  size_t run() {
    std::vector<absl::AnyInvocable<void()>> calls;
    calls.swap(calls_);
    for (auto& fn : calls) fn();
    return calls.size();
  }
  size_t pending() const { return calls_.size(); }

 private:
  std::vector<absl::AnyInvocable<void()>> calls_;
};

// A room over two reactors whose posts run when the test says.
class ChatRoomUnitTest : public ::testing::Test {
 protected:
  // Runs what was posted to both reactors and drops what `users` got so
  // far: a room where everyone's join has reached everyone.
  void Settle(std::initializer_list<FakeUser*> users) {
    r1.run();
    r2.run();
    for (FakeUser* u : users) u->lines();
  }

  std::shared_ptr<ChatRoom> room = std::make_shared<ChatRoom>();
  HeldCalls r1, r2;
  ChatFactory f1{room, &r1}, f2{room, &r2};
};

TEST_F(ChatRoomUnitTest, LinesReachOtherReactorsWhenTheirPostsRun) {
  FakeUser a(&f1), b(&f2), c(&f1);
  a.transport.receive("alice\n");
  c.transport.receive("carol\n");
  b.transport.receive("bob\n");
  EXPECT_THAT(a.lines(), ElementsAre("What's your name?", "Welcome, alice!", "* carol has joined"));
  // alice's and carol's joins went to r2 in one post before bob joined:
  // they run after, but bob gets only what was posted since he joined.
  EXPECT_EQ(r2.run(), 1u);
  EXPECT_THAT(b.lines(), ElementsAre("What's your name?", "Welcome, bob!"));
  EXPECT_THAT(a.lines(), IsEmpty()) << "bob's join is still on its way to r1";
  EXPECT_EQ(r1.run(), 1u);
  EXPECT_THAT(a.lines(), ElementsAre("* bob has joined"));
  EXPECT_THAT(c.lines(), ElementsAre("What's your name?", "Welcome, carol!", "* bob has joined"));

  // Several lines, one post: the first wakes the reactor, the rest wait in
  // its inbox, in the sender's order.
  b.transport.receive("one\ntwo\n/me three\n/nick bea\nfour\n");
  EXPECT_THAT(b.lines(), ElementsAre("You are now bea."));
  EXPECT_EQ(r1.pending(), 1u);
  r1.run();
  EXPECT_THAT(a.lines(), ElementsAre("<bob> one", "<bob> two", "* bob three",
                                     "* bob is now bea", "<bea> four"));
  // /who is the whole room's; a name is the whole room's.
  a.transport.receive("/who\n/nick bea\n");
  EXPECT_THAT(a.lines(), ElementsAre("Online: alice, bea, carol", "Name taken, please choose another."));
  FakeUser d(&f2);
  d.transport.receive("carol\nalice\nbob\n");
  EXPECT_THAT(d.lines(), ElementsAre("What's your name?", "Name taken, please choose another.",
                                     "Name taken, please choose another.", "Welcome, bob!"));
  EXPECT_EQ(f1.localUserCount(), 2u);
  EXPECT_EQ(f2.localUserCount(), 2u);
  EXPECT_EQ(f1.userCount(), 4u);
  EXPECT_EQ(f1.user("bea"), nullptr) << "user() is this reactor's users only";
  EXPECT_NE(f2.user("bea"), nullptr);
  r1.run();
  a.lines();
  c.lines();
}

TEST_F(ChatRoomUnitTest, AUserWhoLeftBeforeThePostRanIsSkipped) {
  FakeUser a(&f1), b(&f2), c(&f2);
  a.transport.receive("alice\n");
  b.transport.receive("bob\n");
  c.transport.receive("carol\n");
  Settle({&a, &b, &c});
  a.transport.receive("hello\n");
  c.transport.disconnect();  // carol leaves while "hello" is on its way
  r2.run();
  EXPECT_THAT(b.lines(), ElementsAre("* carol has left", "<alice> hello"));
  EXPECT_THAT(c.lines(), IsEmpty());
  r1.run();
  EXPECT_THAT(a.lines(), ElementsAre("* carol has left"));
  EXPECT_THAT(room->names(), ElementsAre("alice", "bob"));
}

TEST_F(ChatRoomUnitTest, AFactoryThatIsGoneIsPostedNothing) {
  HeldCalls r3;
  FakeUser a(&f1);
  a.transport.receive("alice\n");
  {
    ChatFactory f3(room, &r3);
    FakeUser b(&f3);
    b.transport.receive("bob\n");
    a.transport.receive("for bob\n");
    EXPECT_EQ(r3.pending(), 1u);
    b.transport.disconnect();
  }
  // The post already queued holds the inbox, not the factory: it runs and
  // finds nobody.
  EXPECT_EQ(r3.run(), 1u);
  a.transport.receive("to nobody\n");
  EXPECT_EQ(r3.pending(), 0u) << "posted to a factory that is gone";
  r1.run();
  EXPECT_THAT(a.lines(), ElementsAre("What's your name?", "Welcome, alice!", "* bob has joined",
                                     "* bob has left"));
}

TEST_F(ChatRoomUnitTest, ASlowReaderOnAnotherReactorMissesLinesThere) {
  const size_t max_buffered = room->options().max_buffered;
  FakeUser talker(&f1), slow(&f2);
  talker.transport.receive("t\n");
  slow.transport.receive("s\n");
  Settle({&slow});
  // Over the bound where the slow user is: lines posted there are dropped
  // there, per user, as on one reactor.
  slow.transport.setBufferedBytes(max_buffered + 1);
  talker.transport.receive("one\ntwo\n");
  r2.run();
  EXPECT_THAT(slow.lines(), IsEmpty());
  EXPECT_EQ(f2.droppedLines(), 2u);
  EXPECT_EQ(f1.droppedLines(), 0u);
  EXPECT_EQ(room->droppedLines(), 2u);
  slow.transport.setBufferedBytes(max_buffered);  // caught up enough
  talker.transport.receive("three\n");
  r2.run();
  EXPECT_THAT(slow.lines(), ElementsAre("<t> three"));
}

// ---- Loopback: reactors on threads -----------------------------------------

// The test thread waits for any client with poll(2) (WaitFor), while the
// reactors run on their own threads.
using testing::LineClient;

class ChatThreadsTest : public ::testing::Test {
 protected:
  // `n` reactors (epoll), each with its ChatFactory of one room and a port
  // on 127.0.0.1, then each run() on a thread of its own. The port of
  // reactor `pinned` (if any) has its buffers pinned to kSmallBuffers.
  void Start(int n, ChatOptions options = {}, int pinned = -1) {
    room_ = std::make_shared<ChatRoom>(options);
    for (int i = 0; i < n; ++i) {
      ReactorOptions ro;
      ro.shutdown_grace = absl::Seconds(2);
      absl::StatusOr<std::unique_ptr<Reactor>> r = Reactor::Create(ro);
      ASSERT_TRUE(r.ok()) << r.status();
      reactors_.push_back(*std::move(r));
      factories_.push_back(std::make_unique<ChatFactory>(room_, reactors_.back().get()));
      absl::StatusOr<Port*> port =
          reactors_.back()->listenTCP(0, factories_.back().get(), 1024, "127.0.0.1");
      ASSERT_TRUE(port.ok()) << port.status();
      if (i == pinned) testing::PinSocketBuffers((*port)->fileno(), testing::kSmallBuffers);
      addrs_.push_back((*port)->getHost());
    }
    for (auto& r : reactors_) threads_.emplace_back([r = r.get()] { r->run(); });
  }

  // Stops every reactor (from this thread, through callFromThread) and
  // joins their threads; then nothing runs on them any more.
  void StopAll() {
    for (auto& r : reactors_) r->callFromThread([r = r.get()] { r->stop(); });
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

  void TearDown() override {
    clients_.clear();
    StopAll();
    // The reactors before the factories: their destructors may still call
    // into the protocols, which use their factory.
    reactors_.clear();
    factories_.clear();
  }

  // Runs `fn` on reactor `i`'s thread and waits for it.
  void OnReactor(int i, absl::AnyInvocable<void()> fn) {
    std::promise<void> done;
    std::future<void> f = done.get_future();
    reactors_[i]->callFromThread([&fn, &done] {
      fn();
      done.set_value();
    });
    ASSERT_EQ(f.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  }

  LineClient& Connect(int reactor, int pinned_buffers = 0) {
    absl::StatusOr<BlockingClient> c = BlockingClient::Connect(addrs_[reactor], pinned_buffers);
    EXPECT_TRUE(c.ok()) << c.status();
    if (!c.ok()) abort();
    clients_.push_back(std::make_unique<LineClient>(*std::move(c)));
    return *clients_.back();
  }

  // Pumps every client until pred() holds or kTimeout passes; between
  // tries it waits in poll(2) for any client to have something to read.
  bool WaitFor(absl::FunctionRef<bool()> pred) {
    const absl::Time deadline = absl::Now() + kTimeout;
    std::vector<pollfd> fds;
    for (;;) {
      for (auto& c : clients_) {
        if (c->reading()) c->pump();
      }
      if (pred()) return true;
      if (absl::Now() >= deadline) return false;
      fds.clear();
      for (auto& c : clients_) {
        if (c->reading() && !c->eof()) fds.push_back({c->socket().fd(), POLLIN, 0});
      }
      ::poll(fds.data(), fds.size(), 100);
    }
  }

  // The next line `c` receives, or "<closed>" / "<timeout>".
  std::string Next(LineClient& c) {
    WaitFor([&] { return c.hasLine() || c.eof(); });
    if (c.hasLine()) return c.pop();
    return c.eof() ? "<closed>" : "<timeout>";
  }

  LineClient& Join(const std::string& name, int reactor) {
    LineClient& c = Connect(reactor);
    EXPECT_EQ(Next(c), "What's your name?");
    c.send(name + "\r\n");
    EXPECT_EQ(Next(c), absl::StrCat("Welcome, ", name, "!"));
    return c;
  }

  std::shared_ptr<ChatRoom> room_;
  std::vector<std::unique_ptr<ChatFactory>> factories_;
  std::vector<std::unique_ptr<Reactor>> reactors_;
  std::vector<std::thread> threads_;
  std::vector<Address> addrs_;
  std::vector<std::unique_ptr<LineClient>> clients_;
};

TEST_F(ChatThreadsTest, ConversationAcrossThreads) {
  Start(4);
  LineClient& a = Join("alice", 0);
  LineClient& b = Join("bob", 1);
  EXPECT_EQ(Next(a), "* bob has joined");
  LineClient& c = Join("carol", 2);
  EXPECT_EQ(Next(a), "* carol has joined");
  EXPECT_EQ(Next(b), "* carol has joined");
  LineClient& naming = Connect(3);
  EXPECT_EQ(Next(naming), "What's your name?");
  // Names are the whole room's, whichever reactor asks.
  naming.send("alice\r\nbob\r\ndave\r\n");
  EXPECT_EQ(Next(naming), "Name taken, please choose another.");
  EXPECT_EQ(Next(naming), "Name taken, please choose another.");
  EXPECT_EQ(Next(naming), "Welcome, dave!");
  LineClient& d = naming;
  for (LineClient* u : {&a, &b, &c}) EXPECT_EQ(Next(*u), "* dave has joined");
  // /who lists everyone, on every reactor.
  for (LineClient* u : {&a, &b, &c, &d}) {
    u->send("/who\r\n");
    EXPECT_EQ(Next(*u), "Online: alice, bob, carol, dave");
  }
  b.send("hi\r\n/me waves\r\n/nick bea\r\nhi again\r\n");
  EXPECT_EQ(Next(b), "You are now bea.");
  for (LineClient* u : {&a, &c, &d}) {
    EXPECT_EQ(Next(*u), "<bob> hi");
    EXPECT_EQ(Next(*u), "* bob waves");
    EXPECT_EQ(Next(*u), "* bob is now bea");
    EXPECT_EQ(Next(*u), "<bea> hi again");
  }
  c.send("/quit\r\n");
  EXPECT_EQ(Next(c), "Bye!");
  EXPECT_EQ(Next(c), "<closed>");
  for (LineClient* u : {&a, &b, &d}) EXPECT_EQ(Next(*u), "* carol has left");
  // The freed names are free on every reactor.
  LineClient& c2 = Join("carol", 0);
  LineClient& b2 = Join("bob", 3);
  a.send("/who\r\n");
  // carol's and bob's joins may come in either order: two senders.
  std::vector<std::string> got = {Next(a), Next(a)};
  std::sort(got.begin(), got.end());
  EXPECT_THAT(got, ElementsAre("* bob has joined", "* carol has joined"));
  EXPECT_EQ(Next(a), "Online: alice, bea, bob, carol, dave");
  EXPECT_EQ(room_->userCount(), 5u);
  (void)c2;
  (void)b2;
}

TEST_F(ChatThreadsTest, TwoHundredUsersOnFourThreadsEachLineExactlyOnceInOrder) {
  constexpr int kReactors = 4;
  constexpr int kUsers = 200;
  constexpr int kLines = 3;  // per user
  Start(kReactors);
  std::vector<LineClient*> users;
  for (int i = 0; i < kUsers; ++i) users.push_back(&Join(absl::StrCat("u", i), i % kReactors));

  // Every user hears of those who joined after them, once, and not of
  // those before them (even if their posts ran after it joined).
  std::vector<std::vector<int>> joined(kUsers, std::vector<int>(kUsers, 0));
  std::vector<std::string> unexpected;
  std::vector<int> later_joins_missing(kUsers);
  int missing = 0;
  for (int i = 0; i < kUsers; ++i) missing += later_joins_missing[i] = kUsers - 1 - i;
  // The lines of the second phase, by receiver and sender: their k's.
  std::vector<std::vector<std::vector<int>>> got(
      kUsers, std::vector<std::vector<int>>(kUsers));
  // As the servers stop, the users who are still connected hear the others
  // leave.
  std::vector<std::vector<int>> left(kUsers, std::vector<int>(kUsers, 0));
  int total = 0;
  auto drain = [&](int i) {
    while (users[i]->hasLine()) {
      std::string l = users[i]->pop();
      std::vector<std::string> parts = absl::StrSplit(l, ' ');
      int j = -1, k = -1;
      if (parts.size() == 4 && parts[0] == "*" && parts[2] == "has" && parts[3] == "joined" &&
          absl::StartsWith(parts[1], "u") && absl::SimpleAtoi(parts[1].substr(1), &j) &&
          j >= 0 && j < kUsers) {
        if (++joined[i][j] == 1 && j > i) {
          --later_joins_missing[i];
          --missing;
        }
      } else if (parts.size() == 4 && parts[0] == "*" && parts[2] == "has" &&
                 parts[3] == "left" && absl::StartsWith(parts[1], "u") &&
                 absl::SimpleAtoi(parts[1].substr(1), &j) && j >= 0 && j < kUsers && j != i) {
        ++left[i][j];
      } else if (parts.size() == 3 && parts[0] == absl::StrCat("<u", parts[1], ">") &&
                 absl::SimpleAtoi(parts[1], &j) && j >= 0 && j < kUsers &&
                 absl::SimpleAtoi(parts[2], &k)) {
        got[i][j].push_back(k);
        ++total;
      } else {
        unexpected.push_back(absl::StrCat("u", i, " got: ", l));
      }
    }
  };
  ASSERT_TRUE(WaitFor([&] {
    for (int i = 0; i < kUsers; ++i) drain(i);
    return missing == 0;
  })) << missing << " join notices missing";

  // Every user sends kLines lines at once; all the users together, as fast
  // as this thread can, so the four reactors fan them out concurrently.
  for (int i = 0; i < kUsers; ++i) {
    std::string lines;
    for (int k = 0; k < kLines; ++k) absl::StrAppend(&lines, i, " ", k, "\r\n");
    users[i]->send(lines);
  }
  const int want = kUsers * (kUsers - 1) * kLines;
  ASSERT_TRUE(WaitFor([&] {
    for (int i = 0; i < kUsers; ++i) drain(i);
    return total >= want;
  })) << total << " of " << want << " lines arrived";
  // /who from one user per reactor: everyone, on each.
  for (int r = 0; r < kReactors; ++r) users[r]->send("/who\r\n");
  std::vector<std::string> who;
  ASSERT_TRUE(WaitFor([&] {
    for (int r = 0; r < kReactors; ++r) {
      while (users[r]->hasLine()) {
        std::string l = users[r]->pop();
        if (absl::StartsWith(l, "Online: ")) {
          who.push_back(l);
        } else {
          unexpected.push_back(absl::StrCat("u", r, " got: ", l));
        }
      }
    }
    return who.size() == kReactors;
  }));
  std::vector<std::string> names;
  for (int i = 0; i < kUsers; ++i) names.push_back(absl::StrCat("u", i));
  std::sort(names.begin(), names.end());
  for (const std::string& w : who) EXPECT_EQ(w, "Online: " + absl::StrJoin(names, ", "));

  // Whatever else arrives before the servers close: no line twice.
  StopAll();
  for (int i = 0; i < kUsers; ++i) {
    WaitFor([&] { return users[i]->eof(); });
    drain(i);
  }
  EXPECT_THAT(unexpected, IsEmpty());
  EXPECT_EQ(total, want);
  std::vector<int> in_order;
  for (int k = 0; k < kLines; ++k) in_order.push_back(k);
  for (int i = 0; i < kUsers; ++i) {
    for (int j = 0; j < kUsers; ++j) {
      if (i == j) {
        ASSERT_THAT(got[i][j], IsEmpty()) << "u" << i << " got its own lines back";
        ASSERT_EQ(joined[i][j], 0);
      } else {
        ASSERT_EQ(got[i][j], in_order) << "u" << i << " got u" << j << "'s lines so";
        ASSERT_EQ(joined[i][j], j > i ? 1 : 0) << "u" << i << " heard u" << j << " join so often";
        ASSERT_LE(left[i][j], 1) << "u" << i << " heard u" << j << " leave twice";
      }
    }
  }
}

TEST_F(ChatThreadsTest, ANameIsUniqueAcrossThreadsUnderARace) {
  constexpr int kReactors = 4;
  constexpr int kPerRound = 8;  // two per reactor
  constexpr int kRounds = 20;
  Start(kReactors);
  std::vector<LineClient*> all;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<LineClient*> racers;
    for (int i = 0; i < kPerRound; ++i) {
      racers.push_back(&Connect(i % kReactors));
      EXPECT_EQ(Next(*racers.back()), "What's your name?");
    }
    // All at once: the same name from every reactor.
    const std::string name = absl::StrCat("n", round);
    for (LineClient* c : racers) c->send(name + "\r\n");
    int welcomed = 0, taken = 0;
    std::vector<LineClient*> losers;
    for (LineClient* c : racers) {
      std::string l = Next(*c);
      if (l == absl::StrCat("Welcome, ", name, "!")) {
        ++welcomed;
      } else if (l == "Name taken, please choose another.") {
        ++taken;
        losers.push_back(c);
      } else {
        ADD_FAILURE() << "unexpected: " << l;
      }
    }
    ASSERT_EQ(welcomed, 1) << "round " << round;
    ASSERT_EQ(taken, kPerRound - 1);
    for (size_t k = 0; k < losers.size(); ++k) {
      const std::string other = absl::StrCat("n", round, "_", k);
      losers[k]->send(other + "\r\n");
      ASSERT_EQ(Next(*losers[k]), absl::StrCat("Welcome, ", other, "!"));
    }
    // And /nick to one new name, all at once.
    const std::string nick = absl::StrCat("z", round);
    for (LineClient* c : racers) c->send(absl::StrCat("/nick ", nick, "\r\n"));
    int renamed = 0;
    for (LineClient* c : racers) {
      // Skip the notices of this round's joins and renames.
      for (std::string l = Next(*c);; l = Next(*c)) {
        if (absl::StartsWith(l, "* ")) continue;
        if (l == absl::StrCat("You are now ", nick, ".")) {
          ++renamed;
        } else {
          ASSERT_EQ(l, "Name taken, please choose another.");
        }
        break;
      }
    }
    ASSERT_EQ(renamed, 1) << "round " << round;
    all.insert(all.end(), racers.begin(), racers.end());
  }
  std::vector<std::string> names = room_->names();
  EXPECT_EQ(names.size(), static_cast<size_t>(kRounds * kPerRound));
  EXPECT_EQ(absl::flat_hash_set<std::string>(names.begin(), names.end()).size(), names.size());
  size_t local = 0;
  for (int r = 0; r < kReactors; ++r) {
    OnReactor(r, [&, r] { local += factories_[r]->localUserCount(); });
  }
  EXPECT_EQ(local, names.size()) << "each user is local to exactly one reactor";
}

TEST_F(ChatThreadsTest, AUserWhoDoesNotReadOnAnotherThreadMissesLinesInsteadOfBuffering) {
  ChatOptions options;
  options.max_buffered = 32 * 1024;
  // The slow user's reactor (2) is pinned: with autotuned buffers the
  // kernel could hold much of the chat. The others are not: the reader
  // reads on this thread, which shares the machine with the reactors, and
  // a batch (512 KiB) must fit in its sockets meanwhile, or it would be
  // a slow reader too.
  Start(3, options, /*pinned=*/2);
  LineClient& talker = Join("talker", 0);
  LineClient& reader = Join("reader", 1);
  EXPECT_EQ(Next(talker), "* reader has joined");
  LineClient& slow = Connect(2, testing::kSmallBuffers);
  EXPECT_EQ(Next(slow), "What's your name?");
  slow.send("slow\r\n");
  EXPECT_EQ(Next(slow), "Welcome, slow!");
  slow.stopReading();
  EXPECT_EQ(Next(talker), "* slow has joined");
  EXPECT_EQ(Next(reader), "* slow has joined");

  // 16 MiB of chat from reactor 0; `slow`, on reactor 2, reads none of it.
  constexpr int kLines = 2048;
  const std::string body(8192, 'm');
  const size_t line_size = body.size() + 32;
  size_t max_buffered = 0;
  int got = 0;
  for (int batch = 0; batch < kLines / 64; ++batch) {
    std::string lines;
    for (int i = 0; i < 64; ++i) absl::StrAppend(&lines, batch * 64 + i, " ", body, "\r\n");
    // This thread must keep reading for the reader meanwhile.
    testing::BackgroundSend sender(talker, std::move(lines));
    bool ok = WaitFor([&] {
      while (reader.hasLine()) {
        std::string l = reader.pop();
        EXPECT_EQ(l, absl::StrCat("<talker> ", got, " ", body)) << l.substr(0, 40);
        ++got;
      }
      return got == (batch + 1) * 64 && sender.done();
    });
    ASSERT_TRUE(ok) << "the reader got " << got << " lines; dropped in the room: "
                    << room_->droppedLines();
    // What reactor 2 holds for `slow`, seen on its own thread.
    OnReactor(2, [&] {
      Chat* s = factories_[2]->user("slow");
      ASSERT_NE(s, nullptr);
      max_buffered = std::max(max_buffered, s->transport()->bufferedBytes());
    });
  }
  EXPECT_EQ(got, kLines);
  EXPECT_LE(max_buffered, options.max_buffered + line_size)
      << "output to a client that does not read must stay bounded";
  uint64_t slow_dropped = 0;
  OnReactor(2, [&] { slow_dropped = factories_[2]->user("slow")->droppedLines(); });
  EXPECT_GT(slow_dropped, 0u) << "the kernel took everything: the bound was not exercised";
  EXPECT_EQ(room_->droppedLines(), slow_dropped);
  talker.send("/who\r\n");
  EXPECT_EQ(Next(talker), "Online: reader, slow, talker");
  RecordProperty("max_buffered_bytes", static_cast<int>(max_buffered));
  RecordProperty("dropped_lines", static_cast<int>(slow_dropped));
}

TEST_F(ChatThreadsTest, AReactorThatFallsBehindSlowsTheSenderInsteadOfGrowingMemory) {
  ChatOptions options;
  options.max_inbox = 64 * 1024;
  // No user is slow here: the reader's bound is out of the way.
  options.max_buffered = 64 << 20;
  // The talker's socket is pinned at both ends, so that the kernel cannot
  // take the whole chat while the talker is not read.
  Start(2, options, /*pinned=*/0);
  LineClient& talker = Connect(0, testing::kSmallBuffers);
  EXPECT_EQ(Next(talker), "What's your name?");
  talker.send("talker\r\n");
  EXPECT_EQ(Next(talker), "Welcome, talker!");
  LineClient& other = Join("other", 0);
  EXPECT_EQ(Next(talker), "* other has joined");
  LineClient& reader = Join("reader", 1);
  EXPECT_EQ(Next(talker), "* reader has joined");
  EXPECT_EQ(Next(other), "* reader has joined");

  // Reactor 1 is held up (a callback that waits), so its inbox fills.
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  reactors_[1]->callFromThread(
      [opened] { ASSERT_EQ(opened.wait_for(std::chrono::seconds(20)), std::future_status::ready); });
  constexpr int kLines = 2048;  // 2 MiB: 32 times max_inbox
  const std::string body(1000, 'b');
  std::string lines;
  for (int i = 0; i < kLines; ++i) absl::StrAppend(&lines, i, " ", body, "\r\n");
  testing::BackgroundSend sender(talker, std::move(lines));
  ASSERT_TRUE(WaitFor([&] { return room_->senderPauses() > 0; }));
  // Reactor 0 still serves its other users meanwhile (who hear the talker
  // at once: they share its reactor).
  other.send("/who\r\n");
  std::string l = Next(other);
  for (int i = 0; i < kLines && absl::StartsWith(l, "<talker> "); ++i) l = Next(other);
  EXPECT_EQ(l, "Online: other, reader, talker");
  EXPECT_FALSE(sender.done()) << "the talker was read on although reactor 1 is full";
  gate.set_value();
  int got = 0;
  ASSERT_TRUE(WaitFor([&] {
    while (reader.hasLine()) {
      std::string l = reader.pop();
      EXPECT_EQ(l, absl::StrCat("<talker> ", got, " ", body)) << l.substr(0, 40);
      ++got;
    }
    return got == kLines && sender.done();
  })) << "the reader got " << got << " lines";
  EXPECT_EQ(room_->droppedLines(), 0u);
  // What reactor 1 was sent while it was held up: max_inbox, and one line
  // more at most (the one that found it full).
  EXPECT_LE(room_->peakInboxBytes(), options.max_inbox + body.size() + 32);
  EXPECT_GT(room_->peakInboxBytes(), options.max_inbox);
  RecordProperty("sender_pauses", static_cast<int>(room_->senderPauses()));
  RecordProperty("peak_inbox_bytes", static_cast<int>(room_->peakInboxBytes()));
}

// ---- ChatPoolFactory on a ReactorPool --------------------------------------

TEST(ChatPoolFactoryTest, OneRoomOverThePoolsReactors) {
  absl::StatusOr<std::unique_ptr<ReactorPool>> pool = ReactorPool::Create(4);
  ASSERT_TRUE(pool.ok()) << pool.status();
  ChatPoolFactory factory(pool->get());
  ASSERT_NE(factory.room(), nullptr);
  absl::StatusOr<std::vector<Port*>> ports =
      (*pool)->listenTCP(0, &factory, Spread::kRoundRobin, 1024, "127.0.0.1");
  ASSERT_TRUE(ports.ok()) << ports.status();
  const Address addr = (*ports)[0]->getHost();
  std::thread runner([&] { (*pool)->run(); });
  // However the test ends: stops the pool, joins its thread and destroys
  // it, before the factory (which its connections use) goes.
  struct Joiner {
    std::unique_ptr<ReactorPool>* pool;
    std::thread* runner;
    ~Joiner() {
      (*pool)->stop();
      runner->join();
      pool->reset();
    }
  } joiner{&*pool, &runner};
  // Round robin: user i is on reactor i % 4.
  constexpr int kUsers = 12;
  std::vector<BlockingClient> users;
  for (int i = 0; i < kUsers; ++i) {
    absl::StatusOr<BlockingClient> c = BlockingClient::Connect(addr);
    ASSERT_TRUE(c.ok()) << c.status();
    const std::string name = absl::StrCat("p", i);
    ASSERT_TRUE(c->SendAll(name + "\n").ok());
    const std::string welcome = absl::StrCat("What's your name?\r\nWelcome, ", name, "!\r\n");
    EXPECT_EQ(c->ReadExpected(welcome), welcome);
    for (BlockingClient& u : users) {
      const std::string joined = absl::StrCat("* ", name, " has joined\r\n");
      EXPECT_EQ(u.ReadExpected(joined), joined);
    }
    users.push_back(*std::move(c));
  }
  // One after the other, so that what each user reads is known exactly.
  for (int i = 0; i < kUsers; ++i) {
    std::string lines, relayed;
    for (int k = 0; k < 20; ++k) {
      absl::StrAppend(&lines, "m", k, "\n");
      absl::StrAppend(&relayed, "<p", i, "> m", k, "\r\n");
    }
    ASSERT_TRUE(users[i].SendAll(lines).ok());
    for (int j = 0; j < kUsers; ++j) {
      if (j != i) {
        EXPECT_EQ(users[j].ReadExpected(relayed), relayed);
      }
    }
  }
  ASSERT_TRUE(users[3].SendAll("/who\n").ok());
  const std::string who = "Online: p0, p1, p10, p11, p2, p3, p4, p5, p6, p7, p8, p9\r\n";
  EXPECT_EQ(users[3].ReadExpected(who), who);
  EXPECT_EQ(factory.room()->userCount(), static_cast<size_t>(kUsers));
}

TEST(ChatPoolFactoryTest, APoolOfOneIsOneReactorsRoom) {
  absl::StatusOr<std::unique_ptr<ReactorPool>> pool = ReactorPool::Create(1);
  ASSERT_TRUE(pool.ok()) << pool.status();
  ChatPoolFactory factory(pool->get());
  EXPECT_EQ(factory.room(), nullptr) << "no room, no lock: the single-reactor chat";
  // Not on one of the pool's reactors: refused, not built for a wrong one.
  EXPECT_EQ(factory.buildProtocol(Address()), nullptr);
}

}  // namespace
}  // namespace twist
