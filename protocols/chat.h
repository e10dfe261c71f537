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
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "framework/address.h"
#include "framework/protocol.h"
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
};

/// The chat room: builds a Chat per connection and owns the registry of
/// names. It must outlive the ports using it and their connections.
class ChatFactory : public Factory {
 public:
  explicit ChatFactory(ChatOptions options = {});

  std::unique_ptr<Protocol> buildProtocol(const Address& addr) override;

  const ChatOptions& options() const { return options_; }
  /// The names of the users who are chatting, sorted.
  std::vector<std::string> names() const;
  size_t userCount() const { return users_.size(); }
  /// The chatting user called `name`, or nullptr.
  Chat* user(absl::string_view name) const;
  /// Lines not sent to slow readers so far.
  uint64_t droppedLines() const { return dropped_lines_; }

  /// Whether `name` is acceptable: not empty, at most max_name bytes, valid
  /// UTF-8, no ASCII space and no control characters (C0, DEL, C1), does not
  /// start with '/'.
  bool isValidName(absl::string_view name) const;

 private:
  friend class Chat;

  /// Sends `line` to every chatting user but `except`.
  void broadcast(const Chat* except, absl::string_view line);

  ChatOptions options_;
  absl::flat_hash_map<std::string, Chat*> users_;
  uint64_t dropped_lines_ = 0;
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
};

}  // namespace twist

#endif  // TWIST_PROTOCOLS_CHAT_H_
