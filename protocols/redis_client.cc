#include "protocols/redis_client.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "framework/reactor.h"

namespace twist {

// Builds the client's protocol for each connection. buildProtocol() does
// not reset the back-off, as ReconnectingClientFactory's does: the client
// resets it once a handshake succeeds, so that a server that takes the
// connection and then refuses the password is retried ever more slowly.
// The client's protocol: it becomes the client's current one in
// connectionMade(), not when built, since a protocol built for a connection
// the reactor then cannot watch is destroyed without connectionMade() or
// connectionLost() (Reactor::startConnection), and the client would keep a
// dangling pointer. connectionMade() runs inside the buildProtocol() call
// that made it (StreamConnection::start), so the client is still there.
class RedisClient::Connection : public RedisProtocol {
 public:
  Connection(RedisClient* client, RedisOptions options)
      : RedisProtocol(std::move(options)), client_(client) {}

  void connectionMade() override {
    client_->protocol_ = this;
    RedisProtocol::connectionMade();
  }

 private:
  RedisClient* client_;
};

class RedisClient::Factory : public ReconnectingClientFactory {
 public:
  explicit Factory(RedisClient* client) : client_(client) {}

  std::unique_ptr<Protocol> buildProtocol(const Address&) override {
    return client_->buildProtocol();
  }
  void clientConnectionFailed(Connector* connector, const absl::Status& reason) override {
    client_->attemptFailed(reason);
    ReconnectingClientFactory::clientConnectionFailed(connector, reason);
  }

 private:
  RedisClient* client_;
};

RedisClient::RedisClient(Reactor* reactor, RedisClientOptions options)
    : reactor_(reactor), options_(std::move(options)), factory_(std::make_unique<Factory>(this)) {
  factory_->initialDelay = options_.initial_delay;
  factory_->maxDelay = options_.max_delay;
}

RedisClient::~RedisClient() { stop(); }

ReconnectingClientFactory& RedisClient::factory() { return *factory_; }

void RedisClient::start() {
  if (started_ || stopped_) return;
  started_ = true;
  if (!options_.unix_path.empty()) {
    reactor_->connectUNIX(options_.unix_path, factory_.get(), options_.connect_timeout);
  } else {
    reactor_->connectTCP(options_.host, options_.port, factory_.get(), options_.connect_timeout);
  }
}

void RedisClient::stop() {
  if (stopped_) return;
  stopped_ = true;
  factory_->stopTrying();
  flush_call_.cancel().IgnoreError();
  if (protocol_ != nullptr) {
    protocol_->flush();
    protocol_->clearCallbacks();
    if (protocol_->transport() != nullptr) protocol_->transport()->loseConnection();
    protocol_ = nullptr;
  }
  const absl::Status cancelled = absl::CancelledError("redis client stopped");
  std::deque<Queued> queue = std::move(queue_);
  queue_.clear();
  std::vector<Waiter> waiters = std::move(waiters_);
  waiters_.clear();
  for (Queued& q : queue) q.done.errback(cancelled).IgnoreError();
  for (Waiter& w : waiters) w.done.errback(cancelled).IgnoreError();
}

void RedisClient::dropConnection() {
  if (protocol_ != nullptr && protocol_->transport() != nullptr) {
    protocol_->transport()->abortConnection();
  }
}

std::unique_ptr<Protocol> RedisClient::buildProtocol() {
  if (stopped_) return nullptr;
  auto p = std::make_unique<Connection>(this, static_cast<const RedisOptions&>(options_));
  RedisProtocol* raw = p.get();
  p->setBatching(true);
  p->setMessageCallback([this](const RedisMessage& m) {
    if (!stopped_) redis_internal::CallSlot(on_message_, callbacks_gen_, m);
  });
  p->setReadyCallback([this, raw](const absl::Status& s) { protocolReady(raw, s); });
  p->setLostCallback([this, raw](const absl::Status& s) { protocolLost(raw, s); });
  return p;
}

void RedisClient::protocolReady(RedisProtocol* p, const absl::Status& status) {
  if (p != protocol_) return;
  if (!status.ok()) {
    // The handshake failed (a wrong password, a bad db): the connection
    // closes and the factory retries, with a growing delay.
    report(false, status);
    return;
  }
  factory_->resetDelay();
  ++connections_;
  // The queue first, in order, then the subscriptions: commands issued
  // before a subscribe were meant to run before it, and on RESP2 they could
  // not run after it (a subscribed connection takes pub/sub commands only).
  while (!queue_.empty() && protocol_ == p && p->ready()) {
    Queued q = std::move(queue_.front());
    queue_.pop_front();
    p->command(q.args).chainDeferred(q.done);
  }
  if (protocol_ != p) return;  // a callback stopped the client
  std::vector<Waiter> waiters = std::move(waiters_);
  waiters_.clear();
  for (bool patterns : {false, true}) {
    const absl::flat_hash_set<std::string>& set = patterns ? patterns_ : channels_;
    std::vector<Deferred<RedisReply>> mine;
    for (Waiter& w : waiters) {
      if (w.patterns == patterns) mine.push_back(w.done);
    }
    if (set.empty()) {
      // Unsubscribed again before a connection was ready.
      for (auto& d : mine) d.callback(RedisReply::Array({})).IgnoreError();
      continue;
    }
    std::vector<absl::string_view> names(set.begin(), set.end());
    Deferred<RedisReply> d = patterns ? p->psubscribe(names) : p->subscribe(names);
    d.addBoth([mine = std::move(mine)](absl::StatusOr<RedisReply> r) mutable {
      for (auto& w : mine) {
        if (r.ok()) {
          w.callback(*r).IgnoreError();
        } else {
          w.errback(r.status()).IgnoreError();
        }
      }
      return r;
    });
    // A failure here reaches the waiters (if any) and the connection
    // callback; it is not an unhandled error.
    d.addErrback([](absl::Status) { return RedisReply::Null(); });
  }
  p->flush();
  if (protocol_ == p) report(true, absl::OkStatus());
}

void RedisClient::scheduleFlush() {
  if (flush_call_.active()) return;
  flush_call_ = reactor_->callLater(absl::ZeroDuration(), [this] {
    if (protocol_ != nullptr) protocol_->flush();
  });
}

void RedisClient::protocolLost(RedisProtocol* p, const absl::Status& reason) {
  if (p != protocol_) return;
  protocol_ = nullptr;
  report(false, reason.ok() ? absl::UnavailableError(absl::StrCat(
                                  "redis connection to ", options_.describe(), " closed"))
                            : reason);
}

void RedisClient::attemptFailed(const absl::Status& reason) { report(false, reason); }

void RedisClient::report(bool up, const absl::Status& why) {
  if (stopped_ || reported_up_ == up) return;
  reported_up_ = up;
  redis_internal::CallSlot(on_connection_, callbacks_gen_, up ? absl::OkStatus() : why);
}

absl::Status RedisClient::queueFull() const {
  return absl::ResourceExhaustedError(absl::StrCat(
      "redis: ", queued(), " commands already wait for a connection to ",
      options_.describe(), " (max_queued)"));
}

Deferred<RedisReply> RedisClient::command(const std::vector<std::string>& args) {
  std::vector<absl::string_view> views(args.begin(), args.end());
  return command(absl::MakeConstSpan(views));
}

Deferred<RedisReply> RedisClient::command(absl::Span<const absl::string_view> args) {
  if (stopped_) return fail<RedisReply>(absl::CancelledError("redis client stopped"));
  if (args.empty()) return fail<RedisReply>(absl::InvalidArgumentError("redis: empty command"));
  const std::string name = absl::AsciiStrToUpper(args[0]);
  if (name == "SUBSCRIBE") return subscription(false, true, args.subspan(1));
  if (name == "PSUBSCRIBE") return subscription(true, true, args.subspan(1));
  if (name == "UNSUBSCRIBE") return subscription(false, false, args.subspan(1));
  if (name == "PUNSUBSCRIBE") return subscription(true, false, args.subspan(1));
  if (ready() && queue_.empty()) {
    scheduleFlush();
    return protocol_->command(args);
  }
  if (queued() >= options_.max_queued) return fail<RedisReply>(queueFull());
  Queued q{std::vector<std::string>(args.begin(), args.end()), Deferred<RedisReply>()};
  Deferred<RedisReply> d = q.done;
  queue_.push_back(std::move(q));
  return d;
}

Deferred<RedisReply> RedisClient::subscribe(absl::Span<const absl::string_view> channels) {
  return subscription(false, true, channels);
}
Deferred<RedisReply> RedisClient::psubscribe(absl::Span<const absl::string_view> patterns) {
  return subscription(true, true, patterns);
}
Deferred<RedisReply> RedisClient::unsubscribe(absl::Span<const absl::string_view> channels) {
  return subscription(false, false, channels);
}
Deferred<RedisReply> RedisClient::punsubscribe(absl::Span<const absl::string_view> patterns) {
  return subscription(true, false, patterns);
}

Deferred<RedisReply> RedisClient::subscription(bool patterns, bool adding,
                                               absl::Span<const absl::string_view> names) {
  if (stopped_) return fail<RedisReply>(absl::CancelledError("redis client stopped"));
  absl::flat_hash_set<std::string>& set = patterns ? patterns_ : channels_;
  if (adding) {
    if (names.empty()) {
      return fail<RedisReply>(absl::InvalidArgumentError("redis: subscribe needs a name"));
    }
    if (!ready() && queued() >= options_.max_queued) return fail<RedisReply>(queueFull());
    for (absl::string_view n : names) set.insert(std::string(n));
    if (ready()) {
      scheduleFlush();
      return patterns ? protocol_->psubscribe(names) : protocol_->subscribe(names);
    }
    Waiter w{patterns, Deferred<RedisReply>()};
    Deferred<RedisReply> d = w.done;
    waiters_.push_back(std::move(w));
    return d;
  }
  if (names.empty()) {
    set.clear();
  } else {
    for (absl::string_view n : names) set.erase(n);
  }
  if (ready()) {
    scheduleFlush();
    return patterns ? protocol_->punsubscribe(names) : protocol_->unsubscribe(names);
  }
  return succeed(RedisReply::Array({}));
}

}  // namespace twist
