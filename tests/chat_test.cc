// The chat server: every line of its conversation, through the real reactor
// and real clients on every poller over TCP (127.0.0.1 and ::1) and Unix
// sockets, plus a few unit tests on StringTransport.

#include "protocols/chat.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "framework/reactor.h"
#include "framework/string_transport.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/line_client.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using ::testing::ElementsAre;
using testing::BlockingClient;
using testing::RunUntil;

// ---- Unit tests on StringTransport ------------------------------------------

// A Chat on a StringTransport; lines() splits what it was sent.
struct FakeUser {
  explicit FakeUser(ChatFactory* room)
      : protocol(room->buildProtocol(Address())) {
    transport.connect(protocol.get());
  }
  std::vector<std::string> lines() {
    const std::string all = transport.take();
    EXPECT_TRUE(all.empty() || absl::EndsWith(all, "\r\n")) << all;
    absl::string_view out = all;
    absl::ConsumeSuffix(&out, "\r\n");
    if (out.empty()) return {};
    return absl::StrSplit(out, "\r\n");
  }
  std::unique_ptr<Protocol> protocol;
  StringTransport transport;
};

TEST(ChatUnitTest, ConversationOnStringTransport) {
  ChatFactory room;
  FakeUser a(&room), b(&room);
  EXPECT_THAT(a.lines(), ElementsAre("What's your name?"));
  a.transport.receive("alice\n");
  EXPECT_THAT(a.lines(), ElementsAre("Welcome, alice!"));
  b.transport.receive("bob\r\nhi\r\n");
  EXPECT_THAT(a.lines(), ElementsAre("* bob has joined", "<bob> hi"));
  EXPECT_THAT(b.lines(), ElementsAre("What's your name?", "Welcome, bob!"));
  EXPECT_THAT(room.names(), ElementsAre("alice", "bob"));
  b.transport.disconnect();
  EXPECT_THAT(a.lines(), ElementsAre("* bob has left"));
  EXPECT_THAT(room.names(), ElementsAre("alice"));
}

TEST(ChatUnitTest, ClientThatDoesNotReadMissesLinesInsteadOfBuffering) {
  ChatOptions options;
  options.max_buffered = 1000;
  ChatFactory room(options);
  FakeUser talker(&room), slow(&room);
  talker.transport.receive("t\n");
  slow.transport.receive("s\n");
  slow.transport.clear();
  slow.transport.setBufferedBytes(1001);  // over the bound: the peer is not reading
  talker.transport.receive("one\ntwo\n");
  EXPECT_EQ(slow.transport.value(), "");
  EXPECT_EQ(room.droppedLines(), 2u);
  slow.transport.setBufferedBytes(1000);  // caught up enough
  talker.transport.receive("three\n");
  EXPECT_THAT(slow.lines(), ElementsAre("<t> three"));
}

TEST(ChatUnitTest, NamesAreValidatedAsSpecified) {
  ChatFactory room;
  for (const char* name : {"a", "alice", "Zoë", "x_y-z.1", "0123456789012345678901234567890!"}) {
    EXPECT_TRUE(room.isValidName(name)) << name;
  }
  for (absl::string_view name :
       {absl::string_view(""), absl::string_view("012345678901234567890123456789012"),
        absl::string_view("a b"), absl::string_view(" a"), absl::string_view("a "),
        absl::string_view("a\tb"), absl::string_view("a\x01" "b"),
        absl::string_view("a\x7f"), absl::string_view("a\0b", 3),
        absl::string_view("/a"), absl::string_view("/")}) {
    EXPECT_FALSE(room.isValidName(name)) << absl::CEscape(name);
  }
}

// Names must be valid UTF-8 with no control characters, C1 included.
TEST(ChatUnitTest, NamesMustBeValidUtf8WithoutControls) {
  ChatFactory room;
  for (const char* name : {"Zo\xC3\xAB", "\xE6\x97\xA5\xE6\x9C\xAC", "\xF0\x9F\x98\x80",
                           "\xC2\xA0nbsp"}) {
    EXPECT_TRUE(room.isValidName(name)) << absl::CEscape(name);
  }
  for (const char* name : {
           "\xFF", "bob\xFE", "caf\xC3",           // not UTF-8, or truncated
           "\xC0\xAF", "\xE0\x80\xAF",             // overlong '/'
           "\xED\xA0\x80", "\xF4\x90\x80\x80",     // a surrogate, past U+10FFFF
           "a\xC2\x85" "b", "\xC2\x9B" "31m",       // C1 controls (NEL, CSI)
           "\x1B[31mred"}) {                      // ESC
    EXPECT_FALSE(room.isValidName(name)) << absl::CEscape(name);
  }
  FakeUser a(&room);
  a.lines();
  a.transport.receive("\xFF\xFEname\r\n");
  EXPECT_THAT(a.lines(), ElementsAre("Invalid name, please choose another."));
  EXPECT_EQ(room.userCount(), 0u);
  a.transport.receive("alice\n/nick \xC3\n");
  EXPECT_THAT(a.lines(), ElementsAre("Welcome, alice!", "Invalid name, please choose another."));
  EXPECT_THAT(room.names(), ElementsAre("alice"));
}

TEST(ChatUnitTest, NeutraliseTextReplacesControlsAndIllFormedUtf8) {
  const std::string r = "\xEF\xBF\xBD";  // U+FFFD
  EXPECT_EQ(NeutraliseText("plain text ~"), "plain text ~");
  EXPECT_EQ(NeutraliseText("caf\xC3\xA9 \xF0\x9F\x98\x80"), "caf\xC3\xA9 \xF0\x9F\x98\x80");
  EXPECT_EQ(NeutraliseText("\x1B[2J\x07"), r + "[2J" + r);
  EXPECT_EQ(NeutraliseText("a\tb\rc\x7F"), "a" + r + "b" + r + "c" + r);
  EXPECT_EQ(NeutraliseText(absl::string_view("\0", 1)), r);
  EXPECT_EQ(NeutraliseText("\xC2\x9B" "31m \xC2\x80\xC2\x9F\xC2\xA0"), r + "31m " + r + r + "\xC2\xA0");
  // One U+FFFD per maximal ill-formed subpart (Unicode 3.9).
  EXPECT_EQ(NeutraliseText("\xE2\x82"), r);              // truncated
  EXPECT_EQ(NeutraliseText("\xE2\x82x"), r + "x");
  EXPECT_EQ(NeutraliseText("\xF0\x80\x80"), r + r + r);   // overlong: no valid prefix
  EXPECT_EQ(NeutraliseText("\xED\xA0\x80"), r + r + r);   // surrogate
  EXPECT_EQ(NeutraliseText("\xFF\xFE"), r + r);
  EXPECT_EQ(NeutraliseText("\xF4\x8F\xBF\xBF"), "\xF4\x8F\xBF\xBF");  // U+10FFFF
  EXPECT_TRUE(IsValidUtf8("\xF4\x8F\xBF\xBF"));
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));
  EXPECT_FALSE(IsValidUtf8("\xC3"));
}

// What one user types reaches the others' terminals only neutralised:
// messages, actions, and the echo of an unknown command.
TEST(ChatUnitTest, ControlBytesAndBadUtf8AreNeutralisedInRelayedText) {
  ChatFactory room;
  FakeUser a(&room), b(&room);
  a.transport.receive("alice\n");
  b.transport.receive("bob\n");
  a.lines();
  b.lines();
  const std::string r = "\xEF\xBF\xBD";
  a.transport.receive("hi \x1B[31mred\x1B[0m \xC2\x9B" "2J \xFF caf\xC3\xA9\r\n");
  EXPECT_THAT(b.lines(), ElementsAre("<alice> hi " + r + "[31mred" + r + "[0m " + r + "2J " + r +
                                     " caf\xC3\xA9"));
  a.transport.receive("/me rings\x07 \x1B]0;owned\x07\n");
  EXPECT_THAT(b.lines(), ElementsAre("* alice rings" + r + " " + r + "]0;owned" + r));
  a.transport.receive("/x\x1B[2J\n");
  EXPECT_THAT(a.lines(), ElementsAre("Unknown command /x" + r +
                                     "[2J; commands: /who, /me ACTION, /nick NAME, /quit"));
  EXPECT_THAT(b.lines(), ::testing::IsEmpty());
}

// ---- Loopback ---------------------------------------------------------------

// The test thread also runs the reactor, so every wait turns the loop
// (RunUntil) and pumps the clients.
using testing::LineClient;

// Each chat test runs on every poller over each stream transport (tcp,
// tcp6, unix; abstract once): testing::TransportTest.
class ChatTest : public testing::TransportTest {
 protected:
  // Makes the room and the reactor, the room first: the reactor's
  // destructor still calls into the protocols, which use the room.
  // `pinned_buffers` > 0 pins the accepted sockets' buffers where the
  // transport lets it (TransportTest::ListenPort).
  void Start(ChatOptions options = {}, int pinned_buffers = 0) {
    room_ = std::make_unique<ChatFactory>(options);
    reactor_ = NewReactor();
    addr_ = Listen(room_.get(), pinned_buffers);
  }
  void TearDown() override {
    clients_.clear();
    reactor_.reset();
    room_.reset();
  }

  LineClient& Connect(int pinned_buffers = 0) {
    absl::StatusOr<BlockingClient> c = BlockingClient::Connect(addr_, pinned_buffers);
    EXPECT_TRUE(c.ok()) << c.status();
    clients_.push_back(std::make_unique<LineClient>(*std::move(c), isTcp()));
    return *clients_.back();
  }

  // The next line `c` receives, or "<closed>" / "<timeout>".
  std::string Next(LineClient& c) {
    RunUntil(*reactor_, [&] {
      c.pump();
      return c.hasLine() || c.eof();
    });
    if (c.hasLine()) return c.pop();
    return c.eof() ? "<closed>" : "<timeout>";
  }

  // Connects, reads the greeting and joins as `name`.
  LineClient& Join(const std::string& name) {
    LineClient& c = Connect();
    EXPECT_EQ(Next(c), "What's your name?");
    c.send(name + "\r\n");
    EXPECT_EQ(Next(c), absl::StrCat("Welcome, ", name, "!"));
    return c;
  }

  // Proves `c` was sent nothing else so far: the server answers /who after
  // every line it sent before, on the same connection.
  void ExpectNothingMore(LineClient& c) {
    c.send("/who\r\n");
    std::string line = Next(c);
    EXPECT_TRUE(absl::StartsWith(line, "Online: ")) << "unexpected line: " << line;
  }

  // Runs the loop until `c` is closed by the server; returns what it got.
  std::vector<std::string> UntilClosed(LineClient& c) {
    std::vector<std::string> got;
    for (std::string l = Next(c); l != "<closed>" && l != "<timeout>"; l = Next(c)) {
      got.push_back(l);
    }
    EXPECT_TRUE(c.eof()) << "the server did not close the connection";
    return got;
  }

  std::unique_ptr<ChatFactory> room_;
  std::unique_ptr<Reactor> reactor_;
  Address addr_;
  std::vector<std::unique_ptr<LineClient>> clients_;
};

TEST_P(ChatTest, GreetingWelcomeAndJoinNotices) {
  Start();
  LineClient& a = Join("alice");
  LineClient& naming = Connect();
  EXPECT_EQ(Next(naming), "What's your name?");
  LineClient& b = Join("bob");
  EXPECT_EQ(Next(a), "* bob has joined");
  // Users still choosing a name hear nothing.
  a.send("hello\r\n");
  EXPECT_EQ(Next(b), "<alice> hello");
  naming.send("carol\r\n");
  EXPECT_EQ(Next(naming), "Welcome, carol!");
  EXPECT_EQ(Next(a), "* carol has joined");
  EXPECT_EQ(Next(b), "* carol has joined");
  ExpectNothingMore(naming);
  ExpectNothingMore(a);  // not its own message back
  ExpectNothingMore(b);
}

TEST_P(ChatTest, AcceptsBareNewlineAndCrLf) {
  Start();
  LineClient& a = Connect();
  EXPECT_EQ(Next(a), "What's your name?");
  a.send("alice\n");
  EXPECT_EQ(Next(a), "Welcome, alice!");
  LineClient& b = Join("bob");
  EXPECT_EQ(Next(a), "* bob has joined");
  b.send("one\ntwo\r\n\r\nthree\n");  // the empty line is not a message
  EXPECT_EQ(Next(a), "<bob> one");
  EXPECT_EQ(Next(a), "<bob> two");
  EXPECT_EQ(Next(a), "<bob> three");
  ExpectNothingMore(a);
  EXPECT_EQ(a.partial(), "") << "every server line ends in \\r\\n";
}

TEST_P(ChatTest, InvalidAndTakenNames) {
  Start();
  LineClient& a = Join("alice");
  LineClient& c = Connect();
  EXPECT_EQ(Next(c), "What's your name?");
  for (const std::string& bad :
       {std::string(""), std::string(33, 'n'), std::string("a b"), std::string("a\tb"),
        std::string("a\x01" "b"), std::string("a\x7f"), std::string("/who"),
        std::string("/alice"), std::string(" alice")}) {
    c.send(bad + "\r\n");
    EXPECT_EQ(Next(c), "Invalid name, please choose another.") << absl::CEscape(bad);
  }
  c.send("alice\r\n");
  EXPECT_EQ(Next(c), "Name taken, please choose another.");
  const std::string longest(32, 'n');
  c.send(longest + "\r\n");
  EXPECT_EQ(Next(c), "Welcome, " + longest + "!");
  EXPECT_EQ(Next(a), "* " + longest + " has joined");
}

TEST_P(ChatTest, MessagesGoToEveryOtherChattingUser) {
  Start();
  LineClient& a = Join("alice");
  LineClient& b = Join("bob");
  LineClient& c = Join("carol");
  EXPECT_EQ(Next(a), "* bob has joined");
  EXPECT_EQ(Next(a), "* carol has joined");
  EXPECT_EQ(Next(b), "* carol has joined");
  b.send("hi all <3 /not a command\r\n");
  EXPECT_EQ(Next(a), "<bob> hi all <3 /not a command");
  EXPECT_EQ(Next(c), "<bob> hi all <3 /not a command");
  ExpectNothingMore(b);
}

TEST_P(ChatTest, WhoListsSortedNamesToTheAskerOnly) {
  Start();
  LineClient& z = Join("zed");
  LineClient& a = Join("Amy");
  LineClient& m = Join("mia");
  LineClient& naming = Connect();
  EXPECT_EQ(Next(naming), "What's your name?");
  m.send("/who\r\n");
  EXPECT_EQ(Next(m), "Online: Amy, mia, zed");
  EXPECT_EQ(Next(z), "* Amy has joined");
  EXPECT_EQ(Next(z), "* mia has joined");
  EXPECT_EQ(Next(a), "* mia has joined");
  // Only the /who replies of their own follow.
  z.send("/who\r\n");
  EXPECT_EQ(Next(z), "Online: Amy, mia, zed");
  a.send("/who\r\n");
  EXPECT_EQ(Next(a), "Online: Amy, mia, zed");
}

TEST_P(ChatTest, MeIsAnAction) {
  Start();
  LineClient& a = Join("alice");
  LineClient& b = Join("bob");
  EXPECT_EQ(Next(a), "* bob has joined");
  b.send("/me waves at everyone\r\n");
  EXPECT_EQ(Next(a), "* bob waves at everyone");
  b.send("/me\r\n");
  EXPECT_EQ(Next(a), "* bob");
  ExpectNothingMore(b);
}

TEST_P(ChatTest, UnknownCommandIsAnsweredNotBroadcast) {
  Start();
  LineClient& a = Join("alice");
  LineClient& b = Join("bob");
  EXPECT_EQ(Next(a), "* bob has joined");
  b.send("/shrug now\r\n");
  EXPECT_EQ(Next(b), "Unknown command /shrug; commands: /who, /me ACTION, /nick NAME, /quit");
  ExpectNothingMore(a);
}

TEST_P(ChatTest, NickRenamesAndFreesTheOldName) {
  Start();
  LineClient& a = Join("alice");
  LineClient& b = Join("bob");
  EXPECT_EQ(Next(a), "* bob has joined");
  b.send("/nick alice\r\n");
  EXPECT_EQ(Next(b), "Name taken, please choose another.");
  b.send("/nick bad name\r\n");
  EXPECT_EQ(Next(b), "Invalid name, please choose another.");
  b.send("/nick\r\n");
  EXPECT_EQ(Next(b), "Invalid name, please choose another.");
  b.send("/nick /x\r\n");
  EXPECT_EQ(Next(b), "Invalid name, please choose another.");
  b.send("/nick robert\r\n");
  EXPECT_EQ(Next(b), "You are now robert.");
  EXPECT_EQ(Next(a), "* bob is now robert");
  b.send("hello\r\n");
  EXPECT_EQ(Next(a), "<robert> hello");
  // The old name is free again.
  LineClient& c = Join("bob");
  EXPECT_EQ(Next(a), "* bob has joined");
  c.send("/who\r\n");
  EXPECT_EQ(Next(c), "Online: alice, bob, robert");
}

TEST_P(ChatTest, QuitSaysByeClosesAndFreesTheName) {
  Start();
  LineClient& a = Join("alice");
  LineClient& b = Join("bob");
  EXPECT_EQ(Next(a), "* bob has joined");
  b.send("/quit\r\nnot sent after quit\r\n");
  EXPECT_THAT(UntilClosed(b), ElementsAre("Bye!"));
  EXPECT_EQ(Next(a), "* bob has left");
  ExpectNothingMore(a);
  Join("bob");
  EXPECT_EQ(Next(a), "* bob has joined");
}

TEST_P(ChatTest, QuitWhileChoosingANameJustCloses) {
  Start();
  LineClient& a = Join("alice");
  LineClient& c = Connect();
  EXPECT_EQ(Next(c), "What's your name?");
  c.send("/quit\n");
  EXPECT_THAT(UntilClosed(c), ElementsAre("Bye!"));
  ExpectNothingMore(a);
}

TEST_P(ChatTest, CloseAndResetLeaveAndFreeTheName) {
  Start();
  LineClient& a = Join("alice");
  LineClient& b = Join("bob");
  EXPECT_EQ(Next(a), "* bob has joined");
  b.socket().Reset();  // TCP RST
  EXPECT_EQ(Next(a), "* bob has left");
  LineClient& b2 = Join("bob");  // the name is free after a reset
  EXPECT_EQ(Next(a), "* bob has joined");
  b2.socket().ShutdownWrite();   // FIN: a clean close
  EXPECT_EQ(Next(a), "* bob has left");
  EXPECT_EQ(Next(b2), "<closed>");
  EXPECT_THAT(room_->names(), ElementsAre("alice"));
}

TEST_P(ChatTest, LineTooLongClosesThatConnectionOnly) {
  ChatOptions options;
  options.max_line = 100;
  Start(options);
  LineClient& a = Join("alice");
  LineClient& b = Join("bob");
  EXPECT_EQ(Next(a), "* bob has joined");
  // Exactly max_line bytes is fine, with either line ending.
  const std::string ok(100, 'o');
  b.send(ok + "\r\n" + ok + "\n");
  EXPECT_EQ(Next(a), "<bob> " + ok);
  EXPECT_EQ(Next(a), "<bob> " + ok);
  // max_line + 1 bytes and no line ending yet: refused at once.
  b.send(std::string(101, 'x'));
  EXPECT_THAT(UntilClosed(b), ElementsAre("Line too long."));
  EXPECT_EQ(Next(a), "* bob has left");
  // Everyone else carries on.
  LineClient& c = Join("carol");
  EXPECT_EQ(Next(a), "* carol has joined");
  c.send("still here\r\n");
  EXPECT_EQ(Next(a), "<carol> still here");
  // A too-long line with its ending, while still choosing a name.
  LineClient& d = Connect();
  EXPECT_EQ(Next(d), "What's your name?");
  d.send(std::string(101, 'y') + "\r\n");
  EXPECT_THAT(UntilClosed(d), ElementsAre("Line too long."));
  ExpectNothingMore(a);
}

TEST_P(ChatTest, ByteByByte) {
  Start();
  LineClient& a = Join("alice");
  LineClient& b = Connect();
  EXPECT_EQ(Next(b), "What's your name?");
  // Each byte sent only once the server has read the one before: every
  // read() the server makes returns exactly one byte.
  const int server_end = testing::ServerEndOf(b.socket());
  ASSERT_GE(server_end, 0);
  for (char ch : std::string("bob\r\nhello, world\r\n/me splits\n")) {
    b.send(std::string(1, ch));
    ASSERT_EQ(testing::PendingBytes(server_end), 1) << "not one byte per read";
    ASSERT_TRUE(RunUntil(*reactor_, [&] { return testing::PendingBytes(server_end) == 0; }));
  }
  EXPECT_EQ(Next(b), "Welcome, bob!");
  EXPECT_EQ(Next(a), "* bob has joined");
  EXPECT_EQ(Next(a), "<bob> hello, world");
  EXPECT_EQ(Next(a), "* bob splits");
}

TEST_P(ChatTest, ManyLinesInOneSend) {
  Start();
  LineClient& a = Join("alice");
  LineClient& b = Connect();
  EXPECT_EQ(Next(b), "What's your name?");
  std::string burst = "bob\r\n";
  for (int i = 0; i < 2000; ++i) absl::StrAppend(&burst, "message ", i, i % 2 ? "\r\n" : "\n");
  burst += "/quit\r\n";
  b.send(burst);
  EXPECT_EQ(Next(a), "* bob has joined");
  for (int i = 0; i < 2000; ++i) {
    ASSERT_EQ(Next(a), absl::StrCat("<bob> message ", i));
  }
  EXPECT_EQ(Next(a), "* bob has left");
  EXPECT_THAT(UntilClosed(b), ElementsAre("Welcome, bob!", "Bye!"));
}

TEST_P(ChatTest, TwoHundredUsersEachMessageReachesEveryOtherExactlyOnce) {
  constexpr int kUsers = 200;
  Start();
  std::vector<LineClient*> users;
  for (int i = 0; i < kUsers; ++i) {
    users.push_back(&Join(absl::StrCat("u", i)));
  }
  // Everyone has seen the joins of those after them.
  for (int i = 0; i < kUsers; ++i) {
    for (int j = i + 1; j < kUsers; ++j) {
      ASSERT_EQ(Next(*users[i]), absl::StrCat("* u", j, " has joined"));
    }
  }
  for (int i = 0; i < kUsers; ++i) users[i]->send(absl::StrCat("hello from ", i, "\r\n"));
  // seen[i][j]: how often user i got user j's message.
  std::vector<std::vector<int>> seen(kUsers, std::vector<int>(kUsers, 0));
  std::vector<std::string> unexpected;
  int total = 0;
  const int want = kUsers * (kUsers - 1);
  bool done = RunUntil(*reactor_, [&] {
    for (int i = 0; i < kUsers; ++i) {
      users[i]->pump();
      while (users[i]->hasLine()) {
        std::string l = users[i]->pop();
        int j = -1;
        std::vector<std::string> parts = absl::StrSplit(l, ' ');
        if (parts.size() == 4 && parts[1] == "hello" && parts[2] == "from" &&
            absl::SimpleAtoi(parts[3], &j) && j >= 0 && j < kUsers &&
            parts[0] == absl::StrCat("<u", j, ">")) {
          ++seen[i][j];
          ++total;
        } else {
          unexpected.push_back(absl::StrCat("u", i, " got: ", l));
        }
      }
    }
    return total >= want;
  });
  ASSERT_TRUE(done) << total << " of " << want << " messages arrived";
  EXPECT_THAT(unexpected, ::testing::IsEmpty());
  for (int i = 0; i < kUsers; ++i) {
    for (int j = 0; j < kUsers; ++j) {
      ASSERT_EQ(seen[i][j], i == j ? 0 : 1) << "u" << i << " got u" << j << "'s message";
    }
  }
  // Nothing more is on its way: every message line was sent before the
  // server read these /who lines.
  for (LineClient* u : users) u->send("/who\r\n");
  for (LineClient* u : users) {
    std::string l = Next(*u);
    ASSERT_TRUE(absl::StartsWith(l, "Online: u0, u1, u10, u100, ")) << l;
  }
  EXPECT_EQ(room_->userCount(), static_cast<size_t>(kUsers));
}

TEST_P(ChatTest, ClientThatNeverReadsDoesNotStallOrBloat) {
  ChatOptions options;
  options.max_buffered = 32 * 1024;
  // Pinned: with autotuned buffers the kernel could hold much of the chat.
  Start(options, testing::kSmallBuffers);
  LineClient& talker = Join("talker");
  LineClient& reader = Join("reader");
  EXPECT_EQ(Next(talker), "* reader has joined");
  LineClient& slow = Connect(testing::kSmallBuffers);
  EXPECT_EQ(Next(slow), "What's your name?");
  slow.send("slow\r\n");
  EXPECT_EQ(Next(talker), "* slow has joined");
  EXPECT_EQ(Next(reader), "* slow has joined");
  Chat* slow_chat = room_->user("slow");
  ASSERT_NE(slow_chat, nullptr);

  // 16 MiB of chat; `slow` reads none of it.
  constexpr int kLines = 2048;
  const std::string body(8192, 'm');
  const size_t line_size = body.size() + 32;
  size_t max_buffered = 0;
  int got = 0;
  for (int batch = 0; batch < kLines / 64; ++batch) {
    std::string lines;
    for (int i = 0; i < 64; ++i) absl::StrAppend(&lines, batch * 64 + i, " ", body, "\r\n");
    // A Unix socket's send buffer holds ~200 KiB: this thread must keep the
    // reactor reading meanwhile.
    testing::BackgroundSend sender(talker, std::move(lines));
    // The reader keeps up; the talker and the reader are never held back.
    bool ok = RunUntil(*reactor_, [&] {
      reader.pump();
      while (reader.hasLine()) {
        std::string l = reader.pop();
        EXPECT_EQ(l, absl::StrCat("<talker> ", got, " ", body)) << l.substr(0, 40);
        ++got;
      }
      max_buffered = std::max(max_buffered, slow_chat->transport()->bufferedBytes());
      return got == (batch + 1) * 64 && sender.done();
    });
    ASSERT_TRUE(ok) << "the reader got " << got << " lines";
  }
  EXPECT_EQ(got, kLines);
  EXPECT_LE(max_buffered, options.max_buffered + line_size)
      << "output to a client that does not read must stay bounded";
  EXPECT_GT(slow_chat->droppedLines(), 0u)
      << "the kernel took everything: the bound was not exercised";
  EXPECT_EQ(room_->droppedLines(), slow_chat->droppedLines());
  RecordProperty("max_buffered_bytes", static_cast<int>(max_buffered));
  RecordProperty("dropped_lines", static_cast<int>(slow_chat->droppedLines()));
  ExpectNothingMore(talker);
}

INSTANTIATE_TEST_SUITE_P(AllTransports, ChatTest,
                         ::testing::ValuesIn(testing::PollersAndTransports()),
                         testing::PollerTransportName);

}  // namespace
}  // namespace twist
