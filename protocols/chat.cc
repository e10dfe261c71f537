#include "protocols/chat.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace twist {
namespace {

constexpr absl::string_view kCrLf = "\r\n";
constexpr absl::string_view kNameTaken = "Name taken, please choose another.";
constexpr absl::string_view kNameInvalid = "Invalid name, please choose another.";
constexpr absl::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// One step of UTF-8 decoding at the start of `s` (not empty): `length`
// bytes, well-formed or not. An ill-formed step is a maximal subpart
// (Unicode 3.9, U+FFFD substitution): the lead byte and the continuation
// bytes that could still have been part of a character.
struct Utf8Step {
  size_t length;
  bool ok;
  uint32_t code_point;
};

Utf8Step NextUtf8(absl::string_view s) {
  const uint8_t b0 = static_cast<uint8_t>(s[0]);
  if (b0 < 0x80) return {1, true, b0};
  size_t n;  // continuation bytes
  uint8_t lo = 0x80, hi = 0xBF;  // the second byte's range (Table 3-7)
  uint32_t cp;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 1;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 2;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 3;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // past U+10FFFF
  } else {
    return {1, false, 0};  // a continuation byte, C0, C1 or F5..FF
  }
  for (size_t i = 1; i <= n; ++i) {
    if (i >= s.size()) return {i, false, 0};
    const uint8_t b = static_cast<uint8_t>(s[i]);
    if (b < lo || b > hi) return {i, false, 0};
    cp = cp << 6 | (b & 0x3F);
    lo = 0x80;
    hi = 0xBF;
  }
  return {n + 1, true, cp};
}

bool IsControl(uint32_t cp) { return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F); }

}  // namespace

bool IsValidUtf8(absl::string_view text) {
  while (!text.empty()) {
    const Utf8Step step = NextUtf8(text);
    if (!step.ok) return false;
    text.remove_prefix(step.length);
  }
  return true;
}

std::string NeutraliseText(absl::string_view text) {
  // Printable ASCII, the common case, is kept as it is.
  if (std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7F; })) {
    return std::string(text);
  }
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const Utf8Step step = NextUtf8(text);
    if (step.ok && !IsControl(step.code_point)) {
      out.append(text.data(), step.length);
    } else {
      out.append(kReplacement.data(), kReplacement.size());
    }
    text.remove_prefix(step.length);
  }
  return out;
}

// ---- ChatFactory ------------------------------------------------------------

ChatFactory::ChatFactory(ChatOptions options) : options_(options) {}

std::unique_ptr<Protocol> ChatFactory::buildProtocol(const Address& addr) {
  return std::make_unique<Chat>(this);
}

std::vector<std::string> ChatFactory::names() const {
  std::vector<std::string> out;
  out.reserve(users_.size());
  for (const auto& [name, user] : users_) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

Chat* ChatFactory::user(absl::string_view name) const {
  auto it = users_.find(name);
  return it == users_.end() ? nullptr : it->second;
}

bool ChatFactory::isValidName(absl::string_view name) const {
  if (name.empty() || name.size() > options_.max_name || name[0] == '/') return false;
  while (!name.empty()) {
    const Utf8Step step = NextUtf8(name);
    if (!step.ok || step.code_point == ' ' || IsControl(step.code_point)) return false;
    name.remove_prefix(step.length);
  }
  return true;
}

void ChatFactory::broadcast(const Chat* except, absl::string_view line) {
  // Writing never calls back into a protocol (closes are deferred), so the
  // registry cannot change under this loop.
  for (const auto& [name, user] : users_) {
    if (user != except) user->send(line);
  }
}

// ---- Chat -------------------------------------------------------------------

Chat::Chat(ChatFactory* room) : room_(room) {
  // Clients end lines with "\n" or "\r\n": split on "\n" and drop a "\r"
  // before it, which the length limit must allow for.
  setDelimiter("\n");
  setMaxLength(room->options().max_line + 1);
}

void Chat::connectionMade() { send("What's your name?"); }

bool Chat::deliverNext() {
  // Refuse an over-long line as soon as the bytes so far cannot be a line of
  // max_line bytes, without waiting for more: the first max_line + 1 bytes
  // hold no "\n", and are not max_line bytes followed by "\r" (+ "\n").
  const size_t max = room_->options().max_line;
  absl::string_view in = unconsumed();
  if (lineMode() && in.size() > max && in.substr(0, max + 1).find('\n') == absl::string_view::npos &&
      !(in[max] == '\r' && (in.size() == max + 1 || in[max + 1] == '\n'))) {
    clearLineBuffer();
    tooLong();
    return false;
  }
  return LineReceiver::deliverNext();
}

void Chat::lineReceived(absl::string_view line) {
  if (state_ == State::kGone) return;  // after /quit or an error
  absl::ConsumeSuffix(&line, "\r");
  if (line.size() > room_->options().max_line) {
    tooLong();
    return;
  }
  if (state_ == State::kNaming) {
    chooseName(line);
  } else {
    chat(line);
  }
}

void Chat::lineLengthExceeded(absl::string_view line) { tooLong(); }

void Chat::tooLong() {
  if (state_ == State::kGone) return;
  sendFinal("Line too long.");
  leave();
  clearLineBuffer();
  transport()->loseConnection();
}

void Chat::chooseName(absl::string_view name) {
  if (name == "/quit") {
    command(name, "");
    return;
  }
  if (!room_->isValidName(name)) {
    send(kNameInvalid);
    return;
  }
  if (room_->users_.contains(name)) {
    send(kNameTaken);
    return;
  }
  name_ = std::string(name);
  room_->users_.emplace(name_, this);
  state_ = State::kChatting;
  send(absl::StrCat("Welcome, ", name_, "!"));
  room_->broadcast(this, absl::StrCat("* ", name_, " has joined"));
}

void Chat::chat(absl::string_view line) {
  if (line.empty()) return;
  if (line[0] == '/') {
    const size_t space = line.find(' ');
    if (space == absl::string_view::npos) {
      command(line, "");
    } else {
      command(line.substr(0, space), line.substr(space + 1));
    }
    return;
  }
  room_->broadcast(this, absl::StrCat("<", name_, "> ", NeutraliseText(line)));
}

void Chat::command(absl::string_view verb, absl::string_view arg) {
  if (verb == "/quit") {
    sendFinal("Bye!");
    leave();
    clearLineBuffer();  // nothing the client sent after /quit counts
    transport()->loseConnection();
  } else if (verb == "/who") {
    send(absl::StrCat("Online: ", absl::StrJoin(room_->names(), ", ")));
  } else if (verb == "/me") {
    room_->broadcast(this, arg.empty() ? absl::StrCat("* ", name_)
                                       : absl::StrCat("* ", name_, " ", NeutraliseText(arg)));
  } else if (verb == "/nick") {
    rename(arg);
  } else {
    send(absl::StrCat("Unknown command ", NeutraliseText(verb),
                      "; commands: /who, /me ACTION, /nick NAME, /quit"));
  }
}

void Chat::rename(absl::string_view name) {
  if (!room_->isValidName(name)) {
    send(kNameInvalid);
    return;
  }
  if (name == name_) {
    send(absl::StrCat("You are now ", name_, "."));
    return;
  }
  if (room_->users_.contains(name)) {
    send(kNameTaken);
    return;
  }
  std::string old = std::exchange(name_, std::string(name));
  room_->users_.erase(old);
  room_->users_.emplace(name_, this);
  send(absl::StrCat("You are now ", name_, "."));
  room_->broadcast(this, absl::StrCat("* ", old, " is now ", name_));
}

void Chat::leave() {
  const bool was_chatting = state_ == State::kChatting;
  state_ = State::kGone;
  if (!was_chatting) return;
  room_->users_.erase(name_);
  room_->broadcast(this, absl::StrCat("* ", name_, " has left"));
}

void Chat::connectionLost(const absl::Status& reason) { leave(); }

bool Chat::send(absl::string_view line) {
  if (transport()->bufferedBytes() > room_->options().max_buffered) {
    ++dropped_lines_;
    ++room_->dropped_lines_;
    return false;
  }
  absl::string_view pieces[] = {line, kCrLf};
  transport()->writeSequence(pieces);
  return true;
}

void Chat::sendFinal(absl::string_view line) {
  absl::string_view pieces[] = {line, kCrLf};
  transport()->writeSequence(pieces);
}

}  // namespace twist
