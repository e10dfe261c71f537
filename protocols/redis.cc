#include "protocols/redis.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "framework/endpoints.h"
#include "framework/transport.h"

namespace twist {

// ---- Addresses --------------------------------------------------------------

std::string RedisOptions::describe() const {
  if (!unix_path.empty()) return absl::StrCat("unix:", unix_path);
  if (host.find(':') != std::string::npos) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

namespace {

absl::StatusOr<std::string> PercentDecode(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    int v = 0;
    if (i + 2 >= s.size()) {
      return absl::InvalidArgumentError("redis URL: '%' not followed by two hex digits");
    }
    for (int k = 1; k <= 2; ++k) {
      const char c = s[i + k];
      if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
        return absl::InvalidArgumentError("redis URL: '%' not followed by two hex digits");
      }
      v = v * 16 + (absl::ascii_isdigit(static_cast<unsigned char>(c))
                        ? c - '0'
                        : absl::ascii_tolower(static_cast<unsigned char>(c)) - 'a' + 10);
    }
    out.push_back(static_cast<char>(v));
    i += 2;
  }
  return out;
}

absl::Status BadUrl(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("redis URL: ", why));
}

}  // namespace

absl::StatusOr<RedisOptions> ParseRedisAddress(absl::string_view spec, RedisOptions base) {
  RedisOptions o = std::move(base);
  if (absl::StartsWith(spec, "rediss://")) {
    return BadUrl("rediss:// (TLS) is not supported");
  }
  if (!absl::StartsWith(spec, "redis://")) {
    absl::StatusOr<ClientEndpointSpec> ep = ParseClientEndpoint(spec);
    if (!ep.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", spec, "' is neither a redis:// URL nor an endpoint: ",
                       ep.status().message()));
    }
    if (ep->type == ClientEndpointSpec::Type::kUnix) {
      o.unix_path = ep->path;
    } else {
      o.unix_path.clear();
      o.host = ep->host;
      o.port = ep->port;
    }
    return o;
  }
  absl::string_view rest = spec.substr(8);
  const size_t slash = rest.find('/');
  absl::string_view authority = rest.substr(0, slash);
  absl::string_view path = slash == absl::string_view::npos ? "" : rest.substr(slash + 1);
  const size_t at = authority.rfind('@');
  if (at != absl::string_view::npos) {
    absl::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    const size_t colon = userinfo.find(':');
    if (colon == absl::string_view::npos) {
      return BadUrl("the part before '@' needs a ':' before the password (redis://:password@host)");
    }
    absl::StatusOr<std::string> user = PercentDecode(userinfo.substr(0, colon));
    if (!user.ok()) return user.status();
    absl::StatusOr<std::string> password = PercentDecode(userinfo.substr(colon + 1));
    if (!password.ok()) return password.status();
    o.username = *std::move(user);
    o.password = *std::move(password);
  }
  absl::string_view host;
  absl::string_view port;
  bool has_port = false;
  if (absl::StartsWith(authority, "[")) {
    const size_t close = authority.find(']');
    if (close == absl::string_view::npos) return BadUrl("'[' without ']' around the host");
    host = authority.substr(1, close - 1);
    absl::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return BadUrl(absl::StrCat("unexpected '", after, "' after the host"));
      port = after.substr(1);
      has_port = true;
    }
  } else {
    const size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != absl::string_view::npos) {
      port = authority.substr(colon + 1);
      has_port = true;
    }
  }
  if (host.empty()) return BadUrl(absl::StrCat("no host in '", spec, "'"));
  o.host = std::string(host);
  o.unix_path.clear();
  o.port = 6379;
  if (has_port) {
    int p;
    if (port.empty() || !absl::ascii_isdigit(static_cast<unsigned char>(port[0])) ||
        !absl::SimpleAtoi(port, &p) || p < 1 || p > 65535) {
      return BadUrl(absl::StrCat("port '", port, "' is not a number in 1..65535"));
    }
    o.port = p;
  }
  if (!path.empty()) {
    int db;
    if (!absl::ascii_isdigit(static_cast<unsigned char>(path[0])) ||
        !absl::SimpleAtoi(path, &db) || db < 0) {
      return BadUrl(absl::StrCat("database '", path, "' is not a number"));
    }
    o.db = db;
  }
  return o;
}

// ---- RedisProtocol ----------------------------------------------------------

namespace {

// The pub/sub reply kinds (the first element of a message or confirmation).
bool IsConfirmation(absl::string_view kind) {
  return kind == "subscribe" || kind == "unsubscribe" || kind == "psubscribe" ||
         kind == "punsubscribe";
}

std::string Upper(absl::string_view s) { return absl::AsciiStrToUpper(s); }

}  // namespace

RedisProtocol::RedisProtocol(RedisOptions options)
    : options_(std::move(options)), parser_(options_.limits) {}

RedisProtocol::~RedisProtocol() = default;

void RedisProtocol::clearCallbacks() {
  on_message_ = nullptr;
  on_push_ = nullptr;
  on_ready_ = nullptr;
  on_lost_ = nullptr;
  ++callbacks_gen_;
}

absl::Status RedisProtocol::notWritable() const {
  if (lost_) {
    return absl::UnavailableError(
        absl::StrCat("redis connection to ", peer_, " is closed"));
  }
  if (transport() == nullptr) return absl::FailedPreconditionError("redis: not connected yet");
  if (!failure_.ok()) return failure_;
  return absl::OkStatus();
}

Deferred<RedisReply> RedisProtocol::send(absl::Span<const absl::string_view> args, Kind kind,
                                         int64_t expected, const char* step) {
  if (absl::Status s = notWritable(); !s.ok()) return fail<RedisReply>(std::move(s));
  AppendCommand(&out_, args);
  if (!batching_ && !receiving_) flush();
  Pending p{kind, Deferred<RedisReply>(), step, expected, {}};
  Deferred<RedisReply> d = p.done;
  pending_.push_back(std::move(p));
  return d;
}

Deferred<RedisReply> RedisProtocol::command(const std::vector<std::string>& args) {
  std::vector<absl::string_view> views(args.begin(), args.end());
  return command(absl::MakeConstSpan(views));
}

Deferred<RedisReply> RedisProtocol::command(absl::Span<const absl::string_view> args) {
  if (args.empty()) {
    return fail<RedisReply>(absl::InvalidArgumentError("redis: empty command"));
  }
  const std::string name = Upper(args[0]);
  if (name == "SUBSCRIBE") return subscribe(args.subspan(1));
  if (name == "PSUBSCRIBE") return psubscribe(args.subspan(1));
  if (name == "UNSUBSCRIBE") return unsubscribe(args.subspan(1));
  if (name == "PUNSUBSCRIBE") return punsubscribe(args.subspan(1));
  if (!options_.resp3 && (server_subscriptions_ > 0 || !channels_.empty() || !patterns_.empty()) &&
      name != "PING" && name != "QUIT" && name != "RESET") {
    return fail<RedisReply>(absl::FailedPreconditionError(absl::StrCat(
        "redis: ", name,
        " on a RESP2 connection with subscriptions: only (P)SUBSCRIBE, (P)UNSUBSCRIBE, PING, "
        "QUIT and RESET are allowed there (use another connection, or resp3)")));
  }
  return send(args, Kind::kCommand, 1);
}

Deferred<RedisReply> RedisProtocol::subscribe(absl::Span<const absl::string_view> channels) {
  return pubsub("SUBSCRIBE", channels);
}
Deferred<RedisReply> RedisProtocol::psubscribe(absl::Span<const absl::string_view> patterns) {
  return pubsub("PSUBSCRIBE", patterns);
}
Deferred<RedisReply> RedisProtocol::unsubscribe(absl::Span<const absl::string_view> channels) {
  return pubsub("UNSUBSCRIBE", channels);
}
Deferred<RedisReply> RedisProtocol::punsubscribe(absl::Span<const absl::string_view> patterns) {
  return pubsub("PUNSUBSCRIBE", patterns);
}

Deferred<RedisReply> RedisProtocol::pubsub(absl::string_view verb,
                                           absl::Span<const absl::string_view> names) {
  const bool patterns = verb[0] == 'P';
  const bool adding = absl::StrContains(verb, "UNSUB") == false;
  if (adding && names.empty()) {
    return fail<RedisReply>(
        absl::InvalidArgumentError(absl::StrCat("redis: ", verb, " needs a name")));
  }
  if (absl::Status s = notWritable(); !s.ok()) return fail<RedisReply>(std::move(s));
  absl::flat_hash_set<std::string>& set = patterns ? patterns_ : channels_;
  // Redis confirms each name given, even twice; with none, each one
  // subscribed, or once (with a null name) when there is none.
  int64_t expected = static_cast<int64_t>(names.size());
  if (names.empty()) {
    expected = std::max<int64_t>(1, static_cast<int64_t>(set.size()));
    set.clear();
  }
  for (absl::string_view n : names) {
    if (adding) {
      set.insert(std::string(n));
    } else {
      set.erase(n);
    }
  }
  std::vector<absl::string_view> args;
  args.reserve(names.size() + 1);
  args.push_back(verb);
  args.insert(args.end(), names.begin(), names.end());
  return send(args, Kind::kPubSub, expected);
}

void RedisProtocol::flush() {
  if (out_.empty() || lost_ || transport() == nullptr) return;
  std::string out = std::move(out_);
  out_.clear();
  transport()->write(out);
}

void RedisProtocol::connectionMade() {
  peer_ = transport()->getPeer().ToString();
  // HELLO 3 [AUTH user pass], or AUTH [user] pass; then SELECT.
  const std::string user = options_.username.empty() ? "default" : options_.username;
  const std::string db = absl::StrCat(options_.db);
  const bool batching = batching_;
  batching_ = true;  // the handshake in one write
  if (options_.resp3) {
    if (options_.password.empty()) {
      send({"HELLO", "3"}, Kind::kHandshake, 1, "HELLO 3");
    } else {
      send({"HELLO", "3", "AUTH", user, options_.password}, Kind::kHandshake, 1, "HELLO 3 AUTH");
    }
    ++handshake_left_;
  } else if (!options_.password.empty()) {
    if (options_.username.empty()) {
      send({"AUTH", options_.password}, Kind::kHandshake, 1, "AUTH");
    } else {
      send({"AUTH", options_.username, options_.password}, Kind::kHandshake, 1, "AUTH");
    }
    ++handshake_left_;
  }
  if (options_.db != 0) {
    send({"SELECT", db}, Kind::kHandshake, 1, "SELECT");
    ++handshake_left_;
  }
  batching_ = batching;
  flush();
  if (handshake_left_ == 0) handshakeDone(absl::OkStatus());
}

void RedisProtocol::dataReceived(absl::string_view data) {
  if (lost_ || !failure_.ok()) return;
  parser_.append(data);
  // Commands the callbacks issue go out in one write, after the loop.
  const bool outer = !receiving_;
  receiving_ = true;
  handleReplies();
  if (outer) {
    receiving_ = false;
    if (!batching_) flush();
  }
}

void RedisProtocol::handleReplies() {
  while (!lost_ && failure_.ok()) {
    absl::StatusOr<std::optional<RedisReply>> r = parser_.next();
    if (!r.ok()) {
      failConnection(r.status());
      transport()->abortConnection();
      return;
    }
    if (!r->has_value()) return;
    handle(std::move(**r));
  }
}

bool RedisProtocol::handlePubSub(RedisReply& reply) {
  const bool push = reply.type == RedisReply::Type::kPush;
  if (!push && reply.type != RedisReply::Type::kArray) return false;
  const bool subscribed_mode =
      push || server_subscriptions_ > 0 ||
      (!pending_.empty() && pending_.front().kind == Kind::kPubSub);
  if (!subscribed_mode || reply.elements.empty() || !reply.elements[0].isString()) {
    if (push) redis_internal::CallSlot(on_push_, callbacks_gen_, reply);
    return push;
  }
  const std::string& kind = reply.elements[0].str;
  const size_t n = reply.elements.size();
  if (kind == "message" && n == 3 && (push || server_subscriptions_ > 0)) {
    redis_internal::CallSlot(on_message_, callbacks_gen_,
                             RedisMessage{reply.elements[1].str, reply.elements[2].str, ""});
    return true;
  }
  if (kind == "pmessage" && n == 4 && (push || server_subscriptions_ > 0)) {
    redis_internal::CallSlot(
        on_message_, callbacks_gen_,
        RedisMessage{reply.elements[2].str, reply.elements[3].str, reply.elements[1].str});
    return true;
  }
  if (IsConfirmation(kind) && n == 3 && !pending_.empty() &&
      pending_.front().kind == Kind::kPubSub) {
    if (reply.elements[2].type == RedisReply::Type::kInteger) {
      server_subscriptions_ = reply.elements[2].integer;
    }
    Pending& p = pending_.front();
    p.confirmations.push_back(std::move(reply));
    if (--p.expected == 0) {
      Pending done = std::move(p);
      pending_.pop_front();
      done.done.callback(RedisReply::Array(std::move(done.confirmations))).IgnoreError();
    }
    return true;
  }
  if (push) {
    redis_internal::CallSlot(on_push_, callbacks_gen_, reply);
    return true;
  }
  return false;
}

void RedisProtocol::handle(RedisReply reply) {
  if (handlePubSub(reply)) return;
  if (pending_.empty()) {
    failConnection(absl::InvalidArgumentError(absl::StrCat(
        "redis protocol error: a reply with no command waiting for it: ",
        reply.DebugString().substr(0, 100))));
    transport()->abortConnection();
    return;
  }
  Pending p = std::move(pending_.front());
  pending_.pop_front();
  switch (p.kind) {
    case Kind::kHandshake:
      handshakeStepDone(p, reply);
      return;
    case Kind::kPubSub:
      // Something else than a confirmation (an error, say, such as NOPERM).
    case Kind::kCommand:
      if (reply.isError()) {
        p.done.errback(RedisError(reply.str)).IgnoreError();
      } else {
        p.done.callback(std::move(reply)).IgnoreError();
      }
      return;
  }
}

void RedisProtocol::handshakeStepDone(Pending& p, const RedisReply& reply) {
  if (reply.isError()) {
    const bool auth = absl::string_view(p.step) != "SELECT";
    absl::Status why(auth ? absl::StatusCode::kUnauthenticated
                          : absl::StatusCode::kFailedPrecondition,
                     absl::StrCat("redis handshake with ", peer_, " failed: ", p.step,
                                  auth ? "" : absl::StrCat(" ", options_.db), ": ", reply.str));
    failConnection(why);
    transport()->loseConnection();
    handshakeDone(why);
    return;
  }
  if (--handshake_left_ == 0) handshakeDone(absl::OkStatus());
}

void RedisProtocol::handshakeDone(const absl::Status& status) {
  if (status.ok()) ready_ = true;
  // Once: taken out of its slot before the call.
  absl::AnyInvocable<void(const absl::Status&)> cb = std::move(on_ready_);
  on_ready_ = nullptr;
  if (cb) cb(status);
}

void RedisProtocol::failConnection(absl::Status why) {
  if (failure_.ok()) failure_ = std::move(why);
}

void RedisProtocol::connectionLost(const absl::Status& reason) {
  lost_ = true;
  absl::Status why = failure_;
  if (why.ok()) {
    why = reason.ok() ? absl::UnavailableError("closed") : reason;
  }
  std::deque<Pending> pending = std::move(pending_);
  pending_.clear();
  const size_t n = pending.size();
  for (Pending& p : pending) {
    // A handshake failure is what the commands behind it fail with; any
    // other end is UNAVAILABLE, with its cause.
    absl::Status s = !failure_.ok() && !absl::IsInvalidArgument(failure_)
                         ? failure_
                         : absl::UnavailableError(absl::StrCat(
                               "redis connection to ", peer_, " lost with ", n,
                               n == 1 ? " command" : " commands",
                               " in flight (each may or may not have run): ", why.message()));
    p.done.errback(std::move(s)).IgnoreError();
  }
  if (!ready_) handshakeDone(why);
  if (on_lost_) {
    auto cb = std::move(on_lost_);
    on_lost_ = nullptr;
    cb(why);
  }
}

}  // namespace twist
