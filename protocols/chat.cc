#include "protocols/chat.h"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <string>
#include <memory>
#include <mutex>
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

// One reactor's inbox in a shared room: the lines other reactors post to its
// users, in the order they were posted. Each sender posts from its own
// reactor's thread, so one sender's lines reach each inbox in its order.
// Lines cross threads as shared strings; users never do.
//
// Flow: the reactor takes at most kDrainSlice bytes of lines per turn of its
// loop, as a socket read would, so that its users' sockets drain between
// slices (a reader that keeps up is not sent a burst that looks like not
// reading). Past options.max_inbox bytes waiting, the sites whose users
// posted are told to stop reading those users until it drains to a quarter:
// a reactor that falls behind slows the senders instead of growing memory.
struct ChatFactory::Site : std::enable_shared_from_this<Site> {
  static constexpr size_t kDrainSlice = 64 * 1024;

  Site(ReactorThreads* r, ChatFactory* f, size_t max)
      : max_inbox(max), reactor(r), factory(f) {}

  // Any thread: queues `line` for this reactor's users. Returns true if the
  // inbox is over max_inbox: then `from` will be asked to resume its
  // senders (resumeSenders) once it has drained.
  bool post(const std::shared_ptr<const std::string>& line, const std::shared_ptr<Site>& from) {
    std::lock_guard<std::mutex> lock(mu);
    if (reactor == nullptr) return false;  // the factory is gone: nobody to tell
    inbox.push_back({line, next_seq++});
    inbox_bytes += line->size();
    peak_bytes = std::max(peak_bytes, inbox_bytes);
    if (!scheduled) {
      scheduled = true;
      // Under mu, so that the factory's destructor (which clears reactor
      // under mu) cannot let the reactor go while this call runs.
      reactor->callFromThread([self = shared_from_this()] { self->drain(); });
    }
    if (inbox_bytes <= max_inbox) return false;
    if (std::find(waiters.begin(), waiters.end(), from) == waiters.end()) waiters.push_back(from);
    return true;
  }

  // On the reactor's thread: hands a slice of what arrived to the users here
  // now (a user who left meanwhile is no longer among them); the rest waits
  // for the next turn of the loop.
  void drain() {
    ChatFactory* f;
    std::vector<std::shared_ptr<Site>> wake;
    {
      std::lock_guard<std::mutex> lock(mu);
      f = factory;
      size_t bytes = 0;
      while (!inbox.empty() && bytes < kDrainSlice) {
        bytes += inbox.front().line->size();
        draining.push_back(std::move(inbox.front()));
        inbox.pop_front();
      }
      inbox_bytes -= bytes;
      if (inbox_bytes <= max_inbox / 4) wake.swap(waiters);
      scheduled = !inbox.empty() && reactor != nullptr;
      if (scheduled) reactor->callFromThread([self = shared_from_this()] { self->drain(); });
    }
    if (f != nullptr) {
      for (const Posted& p : draining) f->deliverPosted(*p.line, p.seq);
    }
    draining.clear();  // keeps its capacity for the next slice
    for (const std::shared_ptr<Site>& w : wake) w->resumeSenders();
  }

  // The number the next line posted here will have: a user who joins now
  // gets the lines from this one on, not those posted before it joined.
  uint64_t nextSeq() {
    std::lock_guard<std::mutex> lock(mu);
    return next_seq;
  }

  // Any thread: has this reactor resume the users it paused because an
  // inbox was full.
  void resumeSenders() {
    std::lock_guard<std::mutex> lock(mu);
    if (reactor == nullptr) return;
    reactor->callFromThread([self = shared_from_this()] {
      ChatFactory* f;
      {
        std::lock_guard<std::mutex> lock(self->mu);
        f = self->factory;
      }
      if (f != nullptr) f->resumePaused();
    });
  }

  const size_t max_inbox;
  std::mutex mu;
  ReactorThreads* reactor ABSL_GUARDED_BY(mu);
  ChatFactory* factory ABSL_GUARDED_BY(mu);
  struct Posted {
    std::shared_ptr<const std::string> line;
    uint64_t seq;
  };
  std::deque<Posted> inbox ABSL_GUARDED_BY(mu);
  uint64_t next_seq ABSL_GUARDED_BY(mu) = 0;
  size_t inbox_bytes ABSL_GUARDED_BY(mu) = 0;
  size_t peak_bytes ABSL_GUARDED_BY(mu) = 0;
  bool scheduled ABSL_GUARDED_BY(mu) = false;  // a drain is queued on the reactor
  std::vector<std::shared_ptr<Site>> waiters ABSL_GUARDED_BY(mu);
  std::vector<Posted> draining;  // reactor's thread
};

ChatFactory::ChatFactory(ChatOptions options) : options_(options) {}

ChatFactory::ChatFactory(std::shared_ptr<ChatRoom> room, ReactorThreads* reactor)
    : options_(room->options()),
      room_(std::move(room)),
      site_(std::make_shared<Site>(reactor, this, options_.max_inbox)) {
  room_->addSite(site_);
}

ChatFactory::~ChatFactory() {
  if (room_ == nullptr) return;
  room_->removeSite(site_.get());
  // Posts still on their way find nobody; those already queued on the
  // reactor hold the site, not this factory. Senders elsewhere waiting for
  // this inbox to drain wait no more.
  std::vector<std::shared_ptr<Site>> wake;
  {
    std::lock_guard<std::mutex> lock(site_->mu);
    site_->reactor = nullptr;
    site_->factory = nullptr;
    wake.swap(site_->waiters);
  }
  for (const std::shared_ptr<Site>& w : wake) w->resumeSenders();
}

std::unique_ptr<Protocol> ChatFactory::buildProtocol(const Address& addr) {
  return std::make_unique<Chat>(this);
}

std::vector<std::string> ChatFactory::names() const {
  if (room_ != nullptr) return room_->names();
  std::vector<std::string> out;
  out.reserve(users_.size());
  for (const auto& [name, user] : users_) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

size_t ChatFactory::userCount() const {
  return room_ != nullptr ? room_->userCount() : users_.size();
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

bool ChatFactory::claim(absl::string_view name, Chat* user) {
  // Before the name is claimed: whoever sees it claimed posts after this.
  if (room_ != nullptr) user->joined_seq_ = site_->nextSeq();
  if (room_ != nullptr ? !room_->claim(name) : users_.contains(name)) return false;
  users_.emplace(name, user);
  return true;
}

bool ChatFactory::rename(const std::string& old_name, absl::string_view new_name, Chat* user) {
  if (room_ != nullptr ? !room_->rename(old_name, new_name) : users_.contains(new_name)) {
    return false;
  }
  users_.erase(old_name);
  users_.emplace(new_name, user);
  return true;
}

void ChatFactory::release(const std::string& name) {
  users_.erase(name);
  if (room_ != nullptr) room_->release(name);
  if (link_ != nullptr) link_->release(name);
}

std::vector<std::string> ChatFactory::localNames() const {
  std::vector<std::string> out;
  out.reserve(users_.size());
  for (const auto& [name, user] : users_) out.push_back(name);
  return out;
}

void ChatFactory::evict(absl::string_view name, absl::string_view why) {
  Chat* u = user(name);
  if (u == nullptr || u->state_ != Chat::State::kChatting) return;
  u->state_ = Chat::State::kGone;
  stopWaiting(u);
  paused_.erase(u);
  users_.erase(u->name_);
  broadcastLocal(u, absl::StrCat("* ", u->name_, " has left"));
  u->sendFinal(why);
  u->clearLineBuffer();
  u->transport()->loseConnection();
}

void ChatFactory::stopWaiting(Chat* user) {
  if (user->ticket_ == 0) return;
  waiting_.erase(user->ticket_);
  user->ticket_ = 0;
}

void ChatFactory::askLink(Chat* user, std::string name, bool rename) {
  const uint64_t ticket = next_ticket_++;
  waiting_.emplace(ticket, user);
  user->ticket_ = ticket;
  // Its next lines wait for the answer, so that they see the name decided.
  user->pauseProducing();
  auto done = [this, ticket, name, rename](absl::StatusOr<bool> got) {
    auto it = waiting_.find(ticket);
    if (it == waiting_.end()) {
      // The user left meanwhile: give back what it was given.
      if (got.ok() && *got && link_ != nullptr && !users_.contains(name)) link_->release(name);
      return;
    }
    Chat* u = it->second;
    waiting_.erase(it);
    u->ticket_ = 0;
    // Not answered (the link went down): decided here, as while it is down.
    const bool ok = !users_.contains(name) && (!got.ok() || *got);
    if (ok) {
      if (rename) users_.erase(u->name_);
      users_.emplace(name, u);
    }
    u->named(name, ok, rename);
    u->resumeProducing();
  };
  if (rename) {
    link_->rename(user->name_, name, std::move(done));
  } else {
    link_->claim(name, std::move(done));
  }
}

void ChatFactory::whoThroughLink(Chat* user) {
  const uint64_t ticket = next_ticket_++;
  waiting_.emplace(ticket, user);
  user->ticket_ = ticket;
  user->pauseProducing();
  link_->names([this, ticket](absl::StatusOr<std::vector<std::string>> got) {
    auto it = waiting_.find(ticket);
    if (it == waiting_.end()) return;
    Chat* u = it->second;
    waiting_.erase(it);
    u->ticket_ = 0;
    // This server's users are listed even if the link's view lags behind.
    std::vector<std::string> all = localNames();
    if (got.ok()) all.insert(all.end(), got->begin(), got->end());
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    u->send(absl::StrCat("Online: ", absl::StrJoin(all, ", ")));
    u->resumeProducing();
  });
}

void ChatFactory::lineDropped() {
  ++dropped_lines_;
  if (room_ != nullptr) room_->dropped_lines_.fetch_add(1, std::memory_order_relaxed);
}

void ChatFactory::broadcast(Chat* except, absl::string_view line) {
  broadcastLocal(except, line);
  if (link_ != nullptr) link_->publish(line);
  if (room_ != nullptr && postToOthers(line) && except != nullptr &&
      except->state_ == Chat::State::kChatting) {
    // An inbox elsewhere is full: read no more from this sender until it
    // has drained (Site::resumeSenders).
    except->transport()->pauseProducing();
    paused_.insert(except);
    room_->sender_pauses_.fetch_add(1, std::memory_order_relaxed);
  }
}

void ChatFactory::resumePaused() {
  absl::flat_hash_set<Chat*> paused;
  paused.swap(paused_);
  // Resuming delivers the lines held meanwhile, which may pause it again.
  for (Chat* user : paused) user->transport()->resumeProducing();
}

void ChatFactory::broadcastLocal(const Chat* except, absl::string_view line) {
  // Writing never calls back into a protocol (closes are deferred), so the
  // registry cannot change under this loop.
  for (const auto& [name, user] : users_) {
    if (user != except) user->send(line);
  }
}

void ChatFactory::deliverPosted(absl::string_view line, uint64_t seq) {
  for (const auto& [name, user] : users_) {
    if (user->joined_seq_ <= seq) user->send(line);
  }
}

bool ChatFactory::postToOthers(absl::string_view line) {
  room_->sitesIfChanged(site_.get(), &others_version_, &others_);
  if (others_.empty()) return false;
  // One copy of the line, shared by every inbox it goes to.
  auto shared = std::make_shared<const std::string>(line);
  bool full = false;
  for (const std::shared_ptr<Site>& site : others_) full |= site->post(shared, site_);
  return full;
}

// ---- ChatRoom ---------------------------------------------------------------

std::vector<std::string> ChatRoom::names() const {
  std::vector<std::string> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    out.assign(names_.begin(), names_.end());
  }
  std::sort(out.begin(), out.end());
  return out;
}

size_t ChatRoom::peakInboxBytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t peak = 0;
  for (const std::shared_ptr<Site>& s : sites_) {
    std::lock_guard<std::mutex> site_lock(s->mu);
    peak = std::max(peak, s->peak_bytes);
  }
  return peak;
}

size_t ChatRoom::userCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return names_.size();
}

bool ChatRoom::claim(absl::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  return names_.emplace(name).second;
}

bool ChatRoom::rename(absl::string_view old_name, absl::string_view new_name) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!names_.emplace(new_name).second) return false;
  names_.erase(old_name);
  return true;
}

void ChatRoom::release(absl::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  names_.erase(name);
}

void ChatRoom::addSite(std::shared_ptr<Site> site) {
  std::lock_guard<std::mutex> lock(mu_);
  sites_.push_back(std::move(site));
  sites_version_.fetch_add(1, std::memory_order_release);
}

void ChatRoom::removeSite(const Site* site) {
  std::lock_guard<std::mutex> lock(mu_);
  sites_.erase(std::remove_if(sites_.begin(), sites_.end(),
                              [site](const std::shared_ptr<Site>& s) { return s.get() == site; }),
               sites_.end());
  sites_version_.fetch_add(1, std::memory_order_release);
}

void ChatRoom::sitesIfChanged(const Site* self, uint64_t* version,
                              std::vector<std::shared_ptr<Site>>* out) const {
  // The reactors of a room rarely change (once each, at start-up): one
  // atomic load per line instead of the mutex.
  if (sites_version_.load(std::memory_order_acquire) == *version) return;
  std::lock_guard<std::mutex> lock(mu_);
  *version = sites_version_.load(std::memory_order_relaxed);
  out->clear();
  for (const std::shared_ptr<Site>& s : sites_) {
    if (s.get() != self) out->push_back(s);
  }
}

// ---- ChatPoolFactory --------------------------------------------------------

namespace {

// A ChatFactory per reactor of `pool`, sharing a room; for a pool of one
// reactor, one room of its own.
std::vector<std::unique_ptr<ChatFactory>> FactoriesFor(ReactorPool* pool, ChatOptions options) {
  std::vector<std::unique_ptr<ChatFactory>> out;
  if (pool->size() == 1) {
    out.push_back(std::make_unique<ChatFactory>(options));
    return out;
  }
  auto room = std::make_shared<ChatRoom>(options);
  for (int i = 0; i < pool->size(); ++i) {
    out.push_back(std::make_unique<ChatFactory>(room, &pool->reactor(i)));
  }
  return out;
}

std::vector<Factory*> Raw(const std::vector<std::unique_ptr<ChatFactory>>& factories) {
  std::vector<Factory*> out;
  for (const auto& f : factories) out.push_back(f.get());
  return out;
}

}  // namespace

ChatPoolFactory::ChatPoolFactory(ReactorPool* pool, ChatOptions options)
    : ChatPoolFactory(pool, FactoriesFor(pool, options)) {}

ChatPoolFactory::ChatPoolFactory(ReactorPool* pool, Factories factories)
    : PerReactorFactory(pool, Raw(factories)), factories_(std::move(factories)) {}

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
  if (room_->link_ != nullptr && room_->link_->up() && !room_->users_.contains(name)) {
    room_->askLink(this, std::string(name), /*rename=*/false);  // answers with named()
    return;
  }
  named(std::string(name), room_->claim(name, this), /*rename=*/false);
}

void Chat::named(const std::string& name, bool ok, bool rename) {
  if (!ok) {
    send(kNameTaken);
    return;
  }
  if (rename) {
    renamed(name);
    return;
  }
  name_ = name;
  state_ = State::kChatting;
  // The others are told first, so that by the time this user reads its
  // welcome, its join is on its way to every reactor.
  room_->broadcast(this, absl::StrCat("* ", name_, " has joined"));
  send(absl::StrCat("Welcome, ", name_, "!"));
  if (room_->link_ != nullptr && !room_->link_->up()) send(kChatOthersAway);
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
    if (room_->link_ != nullptr && room_->link_->up()) {
      room_->whoThroughLink(this);
      return;
    }
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
  if (room_->link_ != nullptr && room_->link_->up() && !room_->users_.contains(name)) {
    room_->askLink(this, std::string(name), /*rename=*/true);  // answers with named()
    return;
  }
  if (!room_->rename(name_, name, this)) {
    send(kNameTaken);
    return;
  }
  renamed(std::string(name));
}

void Chat::renamed(std::string name) {
  std::string old = std::exchange(name_, std::move(name));
  send(absl::StrCat("You are now ", name_, "."));
  room_->broadcast(this, absl::StrCat("* ", old, " is now ", name_));
}

void Chat::leave() {
  room_->stopWaiting(this);
  const bool was_chatting = state_ == State::kChatting;
  state_ = State::kGone;
  if (!was_chatting) return;
  room_->release(name_);
  room_->paused_.erase(this);
  room_->broadcast(this, absl::StrCat("* ", name_, " has left"));
}

void Chat::connectionLost(const absl::Status& reason) { leave(); }

bool Chat::send(absl::string_view line) {
  if (transport()->bufferedBytes() > room_->options().max_buffered) {
    ++dropped_lines_;
    room_->lineDropped();
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
