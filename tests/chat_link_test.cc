// ChatFactory with a ChatLink (issue 17), on StringTransports and a fake
// link whose answers the test gives by hand: a user is not read while the
// link decides its name, a user who leaves before the answer gives the
// name back, /who merges, a link that is down leaves the decisions to the
// server, and evict() is local. The link over Redis itself is tested with
// real processes in chat_redis_test.

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "framework/string_transport.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "protocols/chat.h"
#include "tests/fake_chat_user.h"

namespace twist {
namespace {

using LinkUser = testing::FakeChatUser;

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class FakeLink : public ChatLink {
 public:
  bool up() const override { return up_; }
  void publish(absl::string_view line) override { published.emplace_back(line); }
  void claim(absl::string_view name,
             absl::AnyInvocable<void(absl::StatusOr<bool>)> done) override {
    asked.push_back(absl::StrCat("claim ", name));
    answers.push_back(std::move(done));
  }
  void rename(absl::string_view old_name, absl::string_view new_name,
              absl::AnyInvocable<void(absl::StatusOr<bool>)> done) override {
    asked.push_back(absl::StrCat("rename ", old_name, " ", new_name));
    answers.push_back(std::move(done));
  }
  void release(absl::string_view name) override { released.emplace_back(name); }
  void names(
      absl::AnyInvocable<void(absl::StatusOr<std::vector<std::string>>)> done) override {
    asked.push_back("names");
    who.push_back(std::move(done));
  }
  // Answers the oldest claim or rename.
  void answer(absl::StatusOr<bool> ok) {
    ASSERT_FALSE(answers.empty());
    auto done = std::move(answers.front());
    answers.pop_front();
    done(ok);
  }

  bool up_ = true;
  std::vector<std::string> published, asked, released;
  std::deque<absl::AnyInvocable<void(absl::StatusOr<bool>)>> answers;
  std::deque<absl::AnyInvocable<void(absl::StatusOr<std::vector<std::string>>)>> who;
};

class ChatLinkTest : public ::testing::Test {
 protected:
  ChatLinkTest() { room.setLink(&link); }
  ~ChatLinkTest() override { room.setLink(nullptr); }
  ChatFactory room;
  FakeLink link;
};

TEST_F(ChatLinkTest, JoinWaitsForTheLinkAndLinesAfterItWaitToo) {
  LinkUser a(&room);
  a.transport.receive("alice\nhello\n");
  EXPECT_THAT(a.lines(), ElementsAre("What's your name?"));
  EXPECT_THAT(link.asked, ElementsAre("claim alice"));
  EXPECT_THAT(link.published, IsEmpty()) << "hello waits for the name";
  link.answer(true);
  EXPECT_THAT(a.lines(), ElementsAre("Welcome, alice!"));
  EXPECT_THAT(link.published, ElementsAre("* alice has joined", "<alice> hello"));
  EXPECT_THAT(room.localNames(), ElementsAre("alice"));
}

TEST_F(ChatLinkTest, TakenElsewhere) {
  LinkUser a(&room);
  a.transport.receive("alice\n");
  link.answer(false);
  EXPECT_THAT(a.lines(), ElementsAre("What's your name?", "Name taken, please choose another."));
  EXPECT_THAT(room.localNames(), IsEmpty());
  EXPECT_THAT(link.published, IsEmpty());
}

TEST_F(ChatLinkTest, UnansweredIsDecidedHere) {
  LinkUser a(&room), b(&room);
  a.transport.receive("alice\n");
  b.transport.receive("alice\n");  // also asked: the link decides both
  link.answer(absl::UnavailableError("lost"));
  link.answer(absl::UnavailableError("lost"));
  EXPECT_THAT(a.lines(), ElementsAre("What's your name?", "Welcome, alice!"));
  EXPECT_THAT(b.lines(), ElementsAre("What's your name?", "Name taken, please choose another."));
}

TEST_F(ChatLinkTest, LeavingBeforeTheAnswerGivesTheNameBack) {
  LinkUser a(&room);
  a.transport.receive("alice\n");
  a.transport.disconnect();
  link.answer(true);
  EXPECT_THAT(link.released, ElementsAre("alice"));
  EXPECT_THAT(room.localNames(), IsEmpty());
  EXPECT_THAT(link.published, IsEmpty());
}

TEST_F(ChatLinkTest, NickThroughTheLink) {
  LinkUser a(&room);
  a.transport.receive("alice\n");
  link.answer(true);
  a.lines();
  a.transport.receive("/nick al\nhi\n");
  EXPECT_THAT(link.asked, ElementsAre("claim alice", "rename alice al"));
  EXPECT_THAT(a.lines(), IsEmpty());
  link.answer(true);
  EXPECT_THAT(a.lines(), ElementsAre("You are now al."));
  EXPECT_THAT(link.published, ElementsAre("* alice has joined", "* alice is now al", "<al> hi"));
  EXPECT_THAT(room.localNames(), ElementsAre("al"));
}

TEST_F(ChatLinkTest, WhoMergesTheLinksNamesWithThisServers) {
  LinkUser a(&room);
  a.transport.receive("alice\n");
  link.answer(true);
  a.lines();
  a.transport.receive("/who\n");
  ASSERT_EQ(link.who.size(), 1u);
  link.who.front()(std::vector<std::string>{"zed", "alice", "bob"});
  EXPECT_THAT(a.lines(), ElementsAre("Online: alice, bob, zed"));
}

TEST_F(ChatLinkTest, LinkDownDecidesHereAndSaysSo) {
  link.up_ = false;
  LinkUser a(&room);
  a.transport.receive("alice\n/who\n");
  EXPECT_THAT(link.asked, IsEmpty());
  EXPECT_THAT(a.lines(), ElementsAre("What's your name?", "Welcome, alice!",
                                     std::string(kChatOthersAway), "Online: alice"));
}

TEST_F(ChatLinkTest, LinesFromTheLinkReachChattingUsersOnly) {
  LinkUser a(&room), naming(&room);
  a.transport.receive("alice\n");
  link.answer(true);
  a.lines();
  naming.lines();
  room.deliverFromLink("<bob> hi");
  EXPECT_THAT(a.lines(), ElementsAre("<bob> hi"));
  EXPECT_THAT(naming.lines(), IsEmpty());
  EXPECT_THAT(link.published, ElementsAre("* alice has joined")) << "not sent back";
}

TEST_F(ChatLinkTest, EvictIsLocal) {
  LinkUser a(&room), b(&room);
  a.transport.receive("alice\n");
  link.answer(true);
  b.transport.receive("bob\n");
  link.answer(true);
  a.lines();
  b.lines();
  link.published.clear();
  room.evict("bob", "Your name bob was taken.");
  EXPECT_THAT(b.lines(), ElementsAre("Your name bob was taken."));
  EXPECT_TRUE(b.transport.disconnecting());
  EXPECT_THAT(a.lines(), ElementsAre("* bob has left"));
  EXPECT_THAT(link.published, IsEmpty());
  EXPECT_THAT(room.localNames(), ElementsAre("alice"));
}

}  // namespace
}  // namespace twist
