#include "protocols/chat_redis.h"

#include <sys/random.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "framework/reactor.h"

namespace twist {
namespace {

// The scripts run atomically in Redis: what one server does to the room's
// keys is never seen half done by another. Every one gets ARGV[1] = the
// prefix and ARGV[2] = this server's id; keys are built from them (one
// Redis, not a cluster).

// ARGV[3] = expiry (ms), ARGV[4] = name. 1: claimed.
constexpr absl::string_view kClaim = R"lua(
local P, id = ARGV[1], ARGV[2]
if redis.call('SET', P..'name:'..ARGV[4], id, 'NX', 'PX', ARGV[3]) then
  redis.call('SADD', P..'users:'..id, ARGV[4])
  return 1
end
return 0
)lua";

// ARGV[3] = expiry (ms), ARGV[4] = old name, ARGV[5] = new name. 1: moved.
constexpr absl::string_view kRename = R"lua(
local P, id, old, new = ARGV[1], ARGV[2], ARGV[4], ARGV[5]
if not redis.call('SET', P..'name:'..new, id, 'NX', 'PX', ARGV[3]) then return 0 end
if redis.call('GET', P..'name:'..old) == id then redis.call('DEL', P..'name:'..old) end
redis.call('SREM', P..'users:'..id, old)
redis.call('SADD', P..'users:'..id, new)
return 1
)lua";

// ARGV[3] = name: freed if it is still this server's.
constexpr absl::string_view kRelease = R"lua(
local P, id, n = ARGV[1], ARGV[2], ARGV[3]
if redis.call('GET', P..'name:'..n) == id then redis.call('DEL', P..'name:'..n) end
redis.call('SREM', P..'users:'..id, n)
return 1
)lua";

// The names of the users of every server that is alive.
constexpr absl::string_view kWho = R"lua(
local P = ARGV[1]
local out = {}
for _, s in ipairs(redis.call('SMEMBERS', P..'servers')) do
  if redis.call('EXISTS', P..'server:'..s) == 1 then
    for _, n in ipairs(redis.call('SMEMBERS', P..'users:'..s)) do out[#out + 1] = n end
  end
end
return out
)lua";

// ARGV[3] = expiry (ms). Removes every server whose presence expired
// (freeing its names, telling everyone its users left, as from it, and
// leaving a mark for an hour that it was removed, should it come back),
// then refreshes this one's presence and names. 0: this server is not
// registered (removed by another, or Redis lost its data): register again.
constexpr absl::string_view kHeartbeat = R"lua(
local P, id, ttl = ARGV[1], ARGV[2], ARGV[3]
for _, s in ipairs(redis.call('SMEMBERS', P..'servers')) do
  if s ~= id and redis.call('EXISTS', P..'server:'..s) == 0 then
    redis.call('SREM', P..'servers', s)
    for _, n in ipairs(redis.call('SMEMBERS', P..'users:'..s)) do
      if redis.call('GET', P..'name:'..n) == s then redis.call('DEL', P..'name:'..n) end
      redis.call('PUBLISH', P..'channel', s..' * '..n..' has left')
    end
    redis.call('DEL', P..'users:'..s)
    redis.call('SET', P..'gone:'..s, '1', 'EX', 3600)
  end
end
if redis.call('SISMEMBER', P..'servers', id) == 0 or
   redis.call('PEXPIRE', P..'server:'..id, ttl) == 0 then
  return 0
end
for _, n in ipairs(redis.call('SMEMBERS', P..'users:'..id)) do
  if redis.call('GET', P..'name:'..n) == id then redis.call('PEXPIRE', P..'name:'..n, ttl) end
end
return 1
)lua";

// ARGV[3] = expiry (ms), ARGV[4..] = the names of this server's users now.
// Makes Redis's record of this server say so: names it no longer has are
// freed, names it has are claimed again, and this server is marked alive.
// The others are told what they missed: if Redis knew this server, the
// leaves and joins since; if another server removed it (and told everyone
// its users left), every user's join; if Redis lost its data (a restart),
// nothing, since nobody can tell what the others were told. Returns the
// names another server holds now.
constexpr absl::string_view kRegister = R"lua(
local P, id, ttl = ARGV[1], ARGV[2], ARGV[3]
local users, chan = P..'users:'..id, P..'channel'
local known = redis.call('SISMEMBER', P..'servers', id) == 1
local removed = redis.call('DEL', P..'gone:'..id) == 1
local now, had, lost = {}, {}, {}
for i = 4, #ARGV do now[ARGV[i]] = true end
for _, n in ipairs(redis.call('SMEMBERS', users)) do
  had[n] = true
  if not now[n] then
    if redis.call('GET', P..'name:'..n) == id then redis.call('DEL', P..'name:'..n) end
    redis.call('SREM', users, n)
    redis.call('PUBLISH', chan, id..' * '..n..' has left')
  end
end
for i = 4, #ARGV do
  local n = ARGV[i]
  local k = P..'name:'..n
  if redis.call('SET', k, id, 'NX', 'PX', ttl) or redis.call('GET', k) == id then
    redis.call('PEXPIRE', k, ttl)
    redis.call('SADD', users, n)
    if removed or (known and not had[n]) then
      redis.call('PUBLISH', chan, id..' * '..n..' has joined')
    end
  else
    redis.call('SREM', users, n)
    lost[#lost + 1] = n
  end
end
redis.call('SADD', P..'servers', id)
redis.call('SET', P..'server:'..id, '1', 'PX', ttl)
return lost
)lua";

// Leaves the room: frees this server's names, publishes their leaves,
// forgets the server.
constexpr absl::string_view kUnregister = R"lua(
local P, id = ARGV[1], ARGV[2]
for _, n in ipairs(redis.call('SMEMBERS', P..'users:'..id)) do
  if redis.call('GET', P..'name:'..n) == id then redis.call('DEL', P..'name:'..n) end
  redis.call('PUBLISH', P..'channel', id..' * '..n..' has left')
end
redis.call('DEL', P..'users:'..id, P..'server:'..id)
redis.call('SREM', P..'servers', id)
return 1
)lua";

std::string RandomId() {
  unsigned char bytes[8];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    const ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

// Runs `f` with the reply, and ends the chain there: the failure is
// handled by `f`, never reported as unhandled.
template <class F>
void OnReply(Deferred<RedisReply> d, F f) {
  d.addBoth([f = std::move(f)](absl::StatusOr<RedisReply> r) mutable {
    f(r);
    return RedisReply::Null();
  });
}

}  // namespace

ChatRedisLink::ChatRedisLink(Reactor* reactor, ChatFactory* factory, ChatRedisOptions options)
    : reactor_(reactor),
      factory_(factory),
      options_(std::move(options)),
      id_(options_.server_id.empty() ? RandomId() : options_.server_id),
      channel_(absl::StrCat(options_.prefix, "channel")),
      ttl_ms_(absl::StrCat(std::max<int64_t>(1, absl::ToInt64Milliseconds(options_.expiry)))),
      client_(reactor, [this] {
        RedisClientOptions o = options_.redis;
        // Pub/sub and commands on one connection, so that one connection's
        // state is the room's reachability.
        o.resp3 = true;
        return o;
      }()) {
  factory_->setLink(this);
  client_.setMessageCallback([this](const RedisMessage& m) { messageReceived(m); });
  client_.setConnectionCallback([this](const absl::Status& s) { connectionChanged(s); });
}

ChatRedisLink::~ChatRedisLink() {
  closed_ = true;
  client_.stop();  // the answers still due fail now, while this is whole
  std::vector<absl::AnyInvocable<void(bool)>> held = std::move(held_);
  held_.clear();
  for (auto& h : held) h(false);
  heartbeat_call_.cancel().IgnoreError();
  stop_call_.cancel().IgnoreError();
  wait_call_.cancel().IgnoreError();
  factory_->setLink(nullptr);
}

void ChatRedisLink::start() {
  const absl::string_view channel = channel_;
  OnReply(client_.subscribe(absl::MakeConstSpan(&channel, 1)), [](const auto&) {});
  client_.start();
  heartbeat_call_ = reactor_->callLater(options_.expiry / 3, [this] { heartbeat(); });
}

void ChatRedisLink::log(absl::string_view what) {
  if (options_.log) options_.log(what);
}

void ChatRedisLink::connectionChanged(const absl::Status& status) {
  if (closed_) return;
  const bool first = std::exchange(starting_, false);
  std::vector<absl::AnyInvocable<void(bool)>> held = std::move(held_);
  held_.clear();
  if (status.ok()) {
    up_ = true;
    registerServer();
    if (told_away_) {
      told_away_ = false;
      log("reachable again");
      factory_->deliverFromLink(kChatOthersBack);
    }
  } else {
    up_ = false;
    if (!told_away_) {
      told_away_ = true;
      log(absl::StrCat(first ? "unreachable at start: " : "unreachable: ", status.message()));
      factory_->deliverFromLink(kChatOthersAway);
    }
  }
  for (auto& h : held) h(up_);
}

bool ChatRedisLink::hold(absl::AnyInvocable<void(bool)> then) {
  if (!starting_ || closed_) return false;
  held_.push_back(std::move(then));
  return true;
}

void ChatRedisLink::messageReceived(const RedisMessage& m) {
  if (closed_ || m.channel != channel_) return;
  const size_t space = m.payload.find(' ');
  if (space == std::string::npos) return;
  const absl::string_view payload = m.payload;
  // This server's own lines: its users had them directly.
  if (payload.substr(0, space) == id_) return;
  ++received_;
  factory_->deliverFromLink(payload.substr(space + 1));
}

Deferred<RedisReply> ChatRedisLink::eval(absl::string_view script, std::vector<std::string> args) {
  std::vector<absl::string_view> argv = {"EVAL", script, "0", options_.prefix, id_};
  for (const std::string& a : args) argv.push_back(a);
  return client_.command(absl::MakeConstSpan(argv));
}

void ChatRedisLink::publish(absl::string_view line) {
  if (closed_ || !up_ || client_.inFlight() >= options_.max_in_flight) {
    ++dropped_;
    return;
  }
  const std::string payload = absl::StrCat(id_, " ", line);
  OnReply(client_.command({"PUBLISH", channel_, payload}),
          [this](const absl::StatusOr<RedisReply>& r) {
            if (!r.ok()) ++dropped_;
          });
}

void ChatRedisLink::claim(absl::string_view name,
                          absl::AnyInvocable<void(absl::StatusOr<bool>)> done) {
  if (starting_ && hold([this, name = std::string(name), done = std::move(done)](bool) mutable {
        claim(name, std::move(done));
      })) {
    return;
  }
  if (closed_ || !up_) {
    done(absl::UnavailableError("redis is unreachable"));
    return;
  }
  OnReply(eval(kClaim, {ttl_ms_, std::string(name)}),
          [done = std::move(done)](const absl::StatusOr<RedisReply>& r) mutable {
            if (r.ok()) {
              done(r->integer == 1);
            } else {
              done(r.status());
            }
          });
}

void ChatRedisLink::rename(absl::string_view old_name, absl::string_view new_name,
                           absl::AnyInvocable<void(absl::StatusOr<bool>)> done) {
  if (starting_ && hold([this, old_name = std::string(old_name), new_name = std::string(new_name),
                         done = std::move(done)](bool) mutable {
        rename(old_name, new_name, std::move(done));
      })) {
    return;
  }
  if (closed_ || !up_) {
    done(absl::UnavailableError("redis is unreachable"));
    return;
  }
  OnReply(eval(kRename, {ttl_ms_, std::string(old_name), std::string(new_name)}),
          [done = std::move(done)](const absl::StatusOr<RedisReply>& r) mutable {
            if (r.ok()) {
              done(r->integer == 1);
            } else {
              done(r.status());
            }
          });
}

void ChatRedisLink::release(absl::string_view name) {
  // While Redis is unreachable, registerServer() frees it on the way back.
  if (closed_ || !up_) return;
  OnReply(eval(kRelease, {std::string(name)}), [](const auto&) {});
}

void ChatRedisLink::names(
    absl::AnyInvocable<void(absl::StatusOr<std::vector<std::string>>)> done) {
  if (starting_ && hold([this, done = std::move(done)](bool) mutable { names(std::move(done)); })) {
    return;
  }
  if (closed_ || !up_) {
    done(absl::UnavailableError("redis is unreachable"));
    return;
  }
  OnReply(eval(kWho, {}), [done = std::move(done)](const absl::StatusOr<RedisReply>& r) mutable {
    if (!r.ok()) {
      done(r.status());
      return;
    }
    std::vector<std::string> out;
    for (const RedisReply& e : r->elements) out.push_back(e.str);
    done(std::move(out));
  });
}

void ChatRedisLink::registerServer() {
  std::vector<std::string> args = {ttl_ms_};
  for (std::string& n : factory_->localNames()) args.push_back(std::move(n));
  OnReply(eval(kRegister, std::move(args)), [this](const absl::StatusOr<RedisReply>& r) {
    if (!r.ok() || closed_) return;  // the next connection registers again
    for (const RedisReply& lost : r->elements) {
      ++evictions_;
      factory_->evict(lost.str, absl::StrCat("Your name ", lost.str,
                                             " was taken on another server while this one "
                                             "could not reach it; please reconnect."));
    }
  });
}

void ChatRedisLink::heartbeat() {
  if (closed_) return;
  heartbeat_call_ = reactor_->callLater(options_.expiry / 3, [this] { heartbeat(); });
  if (!up_) return;
  if (heartbeat_in_flight_) {
    // No answer for an expiry: Redis is unreachable even if TCP has not
    // noticed (a partition sends no reset). Give the connection up; the
    // client reconnects with back-off, and the users are told.
    if (reactor_->seconds() - heartbeat_sent_ >= options_.expiry) {
      log(absl::StrCat("did not answer for ", absl::FormatDuration(options_.expiry)));
      client_.dropConnection();
    }
    return;
  }
  heartbeat_in_flight_ = true;
  heartbeat_sent_ = reactor_->seconds();
  OnReply(eval(kHeartbeat, {ttl_ms_}), [this](const absl::StatusOr<RedisReply>& r) {
    heartbeat_in_flight_ = false;
    if (closed_ || !r.ok()) return;
    // Removed by another server (it thought this one dead), or Redis lost
    // its data: say again who is here.
    if (r->integer == 0) registerServer();
  });
}

Deferred<Unit> ChatRedisLink::leaveRoom(absl::Duration wait) {
  if (closed_) return succeed();
  closed_ = true;
  heartbeat_call_.cancel().IgnoreError();
  if (!up_) {
    client_.stop();
    std::vector<absl::AnyInvocable<void(bool)>> held = std::move(held_);
    held_.clear();
    for (auto& h : held) h(false);
    return succeed();
  }
  Deferred<Unit> left;
  auto finish = std::make_shared<absl::AnyInvocable<void()>>([this, left, done = false]() mutable {
    if (done) return;
    done = true;
    left.callback(Unit{}).IgnoreError();
    // Not from inside the client's own callback.
    stop_call_ = reactor_->callLater(absl::ZeroDuration(), [this] { client_.stop(); });
  });
  OnReply(eval(kUnregister, {}), [finish](const auto&) { (*finish)(); });
  wait_call_ = reactor_->callLater(wait, [finish] { (*finish)(); });
  return left;
}

}  // namespace twist
