#ifndef TWIST_PROTOCOLS_CHAT_H_
#define TWIST_PROTOCOLS_CHAT_H_

// A line-based chat server: the classic Twisted tutorial chat, with a few
// commands. The conversation, one line each way ("\r\n" from the server;
// "\n" or "\r\n" from clients):
//
//   server: What's your name?
//   client: alice
//   server: Welcome, alice!            (others: "* alice has joined")
//   client: hello                      (others: "<alice> hello")
//   client: /me waves                  (others: "* alice waves")
//   client: /who
//   server: Online: alice, bob
//   client: /nick al
//   server: You are now al.            (others: "* alice is now al")
//   client: /quit
//   server: Bye!                       (others: "* al has left"), then close
//
// Text is UTF-8. What users type reaches other users' terminals, so what the
// server relays or echoes (messages, actions, an unknown command) is
// neutralised first (NeutraliseText): control characters and ill-formed
// UTF-8 become U+FFFD. Names must be valid UTF-8 without controls.

#include <cstddef>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "framework/address.h"
#include "framework/per_reactor_factory.h"
#include "framework/protocol.h"
#include "framework/reactor_pool.h"
#include "framework/reactor_threads.h"
#include "protocols/basic.h"

namespace twist {

class Chat;

/// Whether `text` is well-formed UTF-8 (Unicode 3.9: no overlong forms,
/// surrogates or code points past U+10FFFF).
bool IsValidUtf8(absl::string_view text);

/// `text` made safe to show on a terminal: every control character (C0
/// U+0000..U+001F including tab, DEL U+007F, C1 U+0080..U+009F) and every
/// maximal ill-formed UTF-8 subsequence becomes U+FFFD; the rest is kept.
std::string NeutraliseText(absl::string_view text);

struct ChatOptions {
  /// Longest line a client may send, without its "\r\n" or "\n". A longer
  /// one gets "Line too long." and the connection is closed.
  size_t max_line = 16384;
  /// A client whose unsent output is over this many bytes (it does not read)
  /// misses the lines sent to it until it catches up, so that it cannot
  /// make the server's memory grow or stall the others.
  size_t max_buffered = 64 * 1024;
  /// Longest name, in bytes.
  size_t max_name = 32;
  /// A room over several reactors (ChatRoom): bytes of lines posted to one
  /// reactor and not yet handed to its users, past which the users who
  /// posted them are not read until it has drained to a quarter of this.
  /// A reactor that falls behind slows the senders down instead of making
  /// the server's memory grow.
  size_t max_inbox = 256 * 1024;
};

class ChatRoom;

/// What the users of a server sharing its room through a ChatLink are told
/// when the other servers become unreachable (and, joining meanwhile,
/// after their welcome), and when they are back; once each per change.
inline constexpr absl::string_view kChatOthersAway =
    "* Other servers are unreachable; only users on this server see what you say.";
inline constexpr absl::string_view kChatOthersBack = "* Other servers are reachable again.";

/// The rest of a room that lives outside this process, as a ChatFactory of
/// a room of its own sees it: other chat servers sharing the room through
/// Redis (ChatRedisLink, protocols/chat_redis.h). Every call is made on the
/// factory's reactor thread. Each `done` is called exactly once, later or
/// at once; an error means the others could not be asked, and the factory
/// decides alone (its own users only).
class ChatLink {
 public:
  virtual ~ChatLink() = default;
  /// Whether the others can be reached now. While not, the factory decides
  /// names alone and lines stay on this server.
  virtual bool up() const = 0;
  /// A line said here (already formatted: "<alice> hi", "* bob has left"),
  /// for every user elsewhere; this server's users got it directly.
  virtual void publish(absl::string_view line) = 0;
  /// Claims `name` for a user here: true if it was free everywhere.
  virtual void claim(absl::string_view name,
                     absl::AnyInvocable<void(absl::StatusOr<bool>)> done) = 0;
  /// Moves a user here from `old_name` to `new_name`: true if it was free.
  virtual void rename(absl::string_view old_name, absl::string_view new_name,
                      absl::AnyInvocable<void(absl::StatusOr<bool>)> done) = 0;
  /// Frees a name a user here held.
  virtual void release(absl::string_view name) = 0;
  /// The names of the users everywhere (unsorted, may repeat this server's).
  virtual void names(absl::AnyInvocable<void(absl::StatusOr<std::vector<std::string>>)> done) = 0;
};

/// The chat room of one reactor: builds a Chat per connection and keeps the
/// users connected through that reactor. It must outlive the ports using it
/// and their connections.
///
/// Alone (ChatFactory(options)) it is the whole room, on one reactor, and
/// nothing in it is locked. To spread a room over several reactors, each on
/// its own thread, make one shared ChatRoom and one ChatFactory per reactor
/// (ChatFactory(room, reactor)): the room holds the names, under a mutex;
/// each factory holds its own reactor's users, touched only on that
/// reactor's thread. A line goes to the sender's neighbours at once and to
/// every other reactor by one post (callFromThread) to that reactor's inbox,
/// where it is handed to the users connected there when the post runs.
///
/// Threads: every method of a ChatFactory, its buildProtocol, startFactory
/// and stopFactory included, is called on its reactor's thread (or before
/// that reactor runs, or after it stopped), as the reactor does; a factory
/// is never shared by two reactors. The ChatRoom's methods are thread-safe.
class ChatFactory : public Factory {
 public:
  /// A room of its own, served by one reactor.
  explicit ChatFactory(ChatOptions options = {});
  /// `reactor`'s share of `room`: the users who connect through `reactor`,
  /// which must be the reactor this factory listens with. Lines for them
  /// from other reactors are posted with reactor->callFromThread. `reactor`
  /// must not be destroyed while another reactor of the room may still post
  /// to it: stop every reactor's thread before destroying any reactor (as
  /// ReactorPool does), or destroy this factory first, which stops the
  /// posts.
  ChatFactory(std::shared_ptr<ChatRoom> room, ReactorThreads* reactor);
  ~ChatFactory() override;

  std::unique_ptr<Protocol> buildProtocol(const Address& addr) override;

  const ChatOptions& options() const { return options_; }
  /// The names of the users who are chatting, in the whole room, sorted.
  std::vector<std::string> names() const;
  /// Users chatting in the whole room.
  size_t userCount() const;
  /// Users chatting through this factory's reactor.
  size_t localUserCount() const { return users_.size(); }
  /// The user called `name` if they chat through this factory's reactor,
  /// else nullptr.
  Chat* user(absl::string_view name) const;
  /// Lines not sent to this reactor's slow readers so far.
  uint64_t droppedLines() const { return dropped_lines_; }
  /// The shared room; nullptr for a room of its own.
  const std::shared_ptr<ChatRoom>& room() const { return room_; }

  /// Shares this room of its own (ChatFactory(options), no ChatRoom) with
  /// other servers through `link` (nullptr: none, as by default), which
  /// must call setLink(nullptr) before it goes. Names are then claimed
  /// through the link (the user is not read until it answers), lines are
  /// published to it, /who asks it, and lines from it reach the users here
  /// through deliverFromLink().
  void setLink(ChatLink* link) { link_ = link; }
  ChatLink* link() const { return link_; }
  /// A line from elsewhere (another server's user, or the link's own
  /// notice): to every user chatting here.
  void deliverFromLink(absl::string_view line) { broadcastLocal(nullptr, line); }
  /// The names of the users chatting here, unsorted.
  std::vector<std::string> localNames() const;
  /// The link lost the name of the user here called `name` to a user
  /// elsewhere: that user is sent `why` and disconnected; the others here
  /// see "* NAME has left" (the others elsewhere never knew this one).
  void evict(absl::string_view name, absl::string_view why);

  /// Whether `name` is acceptable: not empty, at most max_name bytes, valid
  /// UTF-8, no ASCII space and no control characters (C0, DEL, C1), does not
  /// start with '/'.
  bool isValidName(absl::string_view name) const;

 private:
  friend class Chat;
  friend class ChatRoom;
  struct Site;

  /// Claims `name` for `user` in the whole room: false if it is taken.
  bool claim(absl::string_view name, Chat* user);
  /// Moves `user` from `old_name` to `new_name`: false if that is taken.
  bool rename(const std::string& old_name, absl::string_view new_name, Chat* user);
  /// Frees `name`.
  void release(const std::string& name);
  /// Sends `line` to every chatting user but `except`, here and on the
  /// room's other reactors; `except` (the sender) stops being read if an
  /// inbox it posted to is full.
  void broadcast(Chat* except, absl::string_view line);
  /// Sends `line` to every user chatting through this reactor but `except`.
  void broadcastLocal(const Chat* except, absl::string_view line);
  /// A shared room: posts `line` to every other reactor's inbox. True if
  /// one of them is over max_inbox.
  bool postToOthers(absl::string_view line);
  /// A line from another reactor's inbox, numbered `seq` there: to every
  /// user here who joined before it was posted.
  void deliverPosted(absl::string_view line, uint64_t seq);
  /// Resumes reading the users paused by broadcast().
  void resumePaused();
  /// Counts a line a slow reader missed.
  void lineDropped();
  /// With a link: claims `name` (or renames `user` to it, when `rename`)
  /// through it, not reading `user` until it answers.
  void askLink(Chat* user, std::string name, bool rename);
  /// With a link: /who through it.
  void whoThroughLink(Chat* user);
  /// Takes `user` off the users waiting for the link (it is going).
  void stopWaiting(Chat* user);

  ChatOptions options_;
  // This reactor's chatting users; in a room of its own, the room's names.
  absl::flat_hash_map<std::string, Chat*> users_;
  uint64_t dropped_lines_ = 0;
  // Shared room only (else null): the room, this reactor's inbox, and the
  // other reactors' inboxes as last read from the room.
  std::shared_ptr<ChatRoom> room_;
  std::shared_ptr<Site> site_;
  std::vector<std::shared_ptr<Site>> others_;
  uint64_t others_version_ = 0;
  // Users not read until a full inbox elsewhere has drained.
  absl::flat_hash_set<Chat*> paused_;
  // Servers elsewhere (null: none), and the users here waiting for its
  // answer, by ticket: an answer for a user who left finds nobody.
  ChatLink* link_ = nullptr;
  absl::flat_hash_map<uint64_t, Chat*> waiting_;
  uint64_t next_ticket_ = 1;
};

/// The part of a chat room that several reactors share (each through its
/// own ChatFactory): the names, unique across the room and claimed
/// atomically, and the reactors' inboxes. Thread-safe. It lives as long as
/// its factories and their posts in flight (shared_ptr).
class ChatRoom {
 public:
  explicit ChatRoom(ChatOptions options = {}) : options_(options) {}
  ChatRoom(const ChatRoom&) = delete;
  ChatRoom& operator=(const ChatRoom&) = delete;

  const ChatOptions& options() const { return options_; }
  /// Every chatting user's name, sorted.
  std::vector<std::string> names() const;
  size_t userCount() const;
  /// Lines not sent to slow readers, over all reactors.
  uint64_t droppedLines() const { return dropped_lines_.load(std::memory_order_relaxed); }
  /// Times a sender stopped being read because an inbox was over max_inbox.
  uint64_t senderPauses() const { return sender_pauses_.load(std::memory_order_relaxed); }
  /// The most bytes that ever waited in one reactor's inbox (of the
  /// reactors whose factories still exist).
  size_t peakInboxBytes() const;

 private:
  friend class ChatFactory;
  using Site = ChatFactory::Site;

  bool claim(absl::string_view name);
  bool rename(absl::string_view old_name, absl::string_view new_name);
  void release(absl::string_view name);
  void addSite(std::shared_ptr<Site> site);
  void removeSite(const Site* site);
  // Replaces `*out` with the inboxes of every reactor but `self`'s if they
  // changed since `*version`.
  void sitesIfChanged(const Site* self, uint64_t* version,
                      std::vector<std::shared_ptr<Site>>* out) const;

  const ChatOptions options_;
  // std::mutex, not absl::Mutex: Debian's Abseil is not built for
  // ThreadSanitizer (see framework/reactor.h).
  mutable std::mutex mu_;
  absl::flat_hash_set<std::string> names_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Site>> sites_ ABSL_GUARDED_BY(mu_);
  // Bumped under mu_ when sites_ changes; read without it on every line.
  std::atomic<uint64_t> sites_version_{1};
  std::atomic<uint64_t> dropped_lines_{0};
  std::atomic<uint64_t> sender_pauses_{0};
};

/// The one factory a ReactorPool's listeners share for a chat room over
/// all its reactors: a ChatRoom and a ChatFactory per reactor of the pool,
/// served through PerReactorFactory (framework/per_reactor_factory.h): a
/// connection's Chat is built by the ChatFactory of the reactor that takes
/// it, which becomes the Chat's factory(); so a user lives on its reactor
/// alone (its startFactory and stopFactory, which do nothing, run on each
/// per-reactor factory's own reactor's thread, as PerReactorFactory runs them). A pool of one reactor gets a plain
/// ChatFactory(options), without a room: one reactor's chat, exactly as
/// without a pool. Made before the pool runs; it must outlive the pool (its
/// reactors' connections use it).
class ChatPoolFactory : public PerReactorFactory {
 public:
  ChatPoolFactory(ReactorPool* pool, ChatOptions options = {});

  /// The shared room; nullptr for a pool of one reactor.
  const std::shared_ptr<ChatRoom>& room() const { return factories_[0]->room(); }
  /// Reactor `i`'s factory: call it on that reactor's thread.
  ChatFactory& factory(int i) { return *factories_[i]; }

 private:
  using Factories = std::vector<std::unique_ptr<ChatFactory>>;
  // Made before the PerReactorFactory that serves them.
  ChatPoolFactory(ReactorPool* pool, Factories factories);

  Factories factories_;
};

/// One client of a ChatFactory.
class Chat : public LineReceiver {
 public:
  explicit Chat(ChatFactory* room);

  void connectionMade() override;
  void lineReceived(absl::string_view line) override;
  void lineLengthExceeded(absl::string_view line) override;
  void connectionLost(const absl::Status& reason) override;

  /// Empty until the user has chosen a name.
  const std::string& name() const { return name_; }
  /// Lines this client missed because it was not reading.
  uint64_t droppedLines() const { return dropped_lines_; }

 protected:
  bool deliverNext() override;

 private:
  friend class ChatFactory;
  enum class State { kNaming, kChatting, kGone };

  void chooseName(absl::string_view name);
  // The link's answer to a claim (or rename) of `name`.
  void named(const std::string& name, bool ok, bool rename);
  void renamed(std::string name);
  void chat(absl::string_view line);
  void command(absl::string_view verb, absl::string_view arg);
  void rename(absl::string_view name);
  // Tells the others this user left and frees the name; at most once.
  void leave();
  // Sends "line\r\n" unless too much is waiting unsent; returns whether sent.
  bool send(absl::string_view line);
  // Sends the last line to a client that is being closed: never dropped.
  void sendFinal(absl::string_view line);
  void tooLong();

  ChatFactory* room_;
  std::string name_;
  State state_ = State::kNaming;
  uint64_t dropped_lines_ = 0;
  // Waiting for the link's answer (ChatFactory::waiting_), else 0.
  uint64_t ticket_ = 0;
  // A shared room: the first line posted to this reactor's inbox after this
  // user began to join (ChatFactory::claim); earlier ones are not for it.
  uint64_t joined_seq_ = 0;
};

}  // namespace twist

#endif  // TWIST_PROTOCOLS_CHAT_H_
