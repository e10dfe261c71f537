#ifndef TWIST_PROTOCOLS_REDIS_CLIENT_H_
#define TWIST_PROTOCOLS_REDIS_CLIENT_H_

// A Redis connection that stays up (issue 17): reconnects with back-off,
// re-subscribes after reconnecting, and bounds what it holds while the
// server is away. Built on RedisProtocol (protocols/redis.h) and
// ReconnectingClientFactory (framework/client_factory.h).

#include <cstddef>
#include <deque>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "framework/client_factory.h"
#include "framework/defer.h"
#include "framework/delayed_call.h"
#include "protocols/redis.h"
#include "protocols/resp.h"

namespace twist {

class Reactor;

struct RedisClientOptions : RedisOptions {
  /// Commands held while no connection is ready (before the first connect,
  /// and between a loss and the next handshake). A command beyond this
  /// fails at once with RESOURCE_EXHAUSTED: nothing grows without bound
  /// while the server is away.
  size_t max_queued = 1024;
  /// Back-off between attempts: the first retry waits initial_delay times
  /// the factory's factor (e), then each one that factor more, at most
  /// max_delay, with Twisted's jitter.
  absl::Duration initial_delay = absl::Milliseconds(100);
  absl::Duration max_delay = absl::Seconds(10);
  absl::Duration connect_timeout = absl::Seconds(5);
};

/// One logical connection to a Redis server that outlives the TCP
/// connections under it:
///
///   RedisClient redis(&reactor, *ParseRedisAddress("redis://:pw@127.0.0.1:6379/1"));
///   redis.start();
///   redis.command({"SET", "k", "v"}).addCallback([](RedisReply r) { ... });
///   redis.setMessageCallback([](const RedisMessage& m) { ... });
///   redis.subscribe({"room"});
///
/// - While a connection is ready (connected, handshake done), commands go
///   straight to it, pipelined. When it is lost, those in flight fail with
///   UNAVAILABLE ("... lost with N commands in flight (each may or may not
///   have run): WHY"): they are not re-sent, since a command may have run.
/// - While none is ready, commands wait in a queue of at most max_queued,
///   sent in order once the next connection's handshake is done; beyond
///   that they fail at once with RESOURCE_EXHAUSTED.
/// - Subscriptions are remembered: after a reconnection the client sends
///   what was queued, then SUBSCRIBE and PSUBSCRIBE for all of them.
///   Messages published while no connection was up are lost (Redis
///   pub/sub keeps nothing).
/// - Reconnection uses ReconnectingClientFactory; the delay resets once a
///   handshake succeeds (not merely on connect, so a wrong password backs
///   off too).
///
/// Everything runs on the reactor's thread. The client must not be
/// destroyed from inside one of its own callbacks; destroying it otherwise
/// closes its connection and fails what is queued (CANCELLED).
class RedisClient {
 public:
  RedisClient(Reactor* reactor, RedisClientOptions options);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  /// Starts connecting (once; later calls do nothing).
  void start();
  /// Stops reconnecting and closes the connection (commands in flight fail
  /// as for a loss); queued commands and subscription waits fail with
  /// CANCELLED. Nothing more is called back after it returns except the
  /// Deferreds failing.
  void stop();

  Deferred<RedisReply> command(absl::Span<const absl::string_view> args);
  Deferred<RedisReply> command(const std::vector<std::string>& args);
  /// command({"SET", key, value}): a braced list picks this one.
  Deferred<RedisReply> command(std::initializer_list<absl::string_view> args) {
    return command(absl::Span<const absl::string_view>(args.begin(), args.size()));
  }

  /// Remembers the channels (patterns) and subscribes on the current
  /// connection, or on the next one: the Deferred fires once Redis has
  /// confirmed them (as RedisProtocol's does), or fails if the connection
  /// carrying them is lost first (they stay remembered and are sent again).
  Deferred<RedisReply> subscribe(absl::Span<const absl::string_view> channels);
  Deferred<RedisReply> psubscribe(absl::Span<const absl::string_view> patterns);
  /// Abandons the current connection as if it were lost (its commands in
  /// flight fail, the connection callback is told, the client reconnects
  /// with back-off): for a caller whose own deadline says the server has
  /// stopped answering while TCP has not noticed (a network partition
  /// sends no reset). Nothing happens without a connection.
  void dropConnection();

  /// Forgets them; unsubscribes on the current connection if there is one
  /// (else fires at once with an empty array).
  Deferred<RedisReply> unsubscribe(absl::Span<const absl::string_view> channels);
  Deferred<RedisReply> punsubscribe(absl::Span<const absl::string_view> patterns);

  void setMessageCallback(absl::AnyInvocable<void(const RedisMessage&)> cb) {
    on_message_ = std::move(cb);
    ++callbacks_gen_;
  }
  /// Called when a connection becomes ready (OK) and when the client goes
  /// from ready (or starting) to not ready (why): once per change, not per
  /// failed attempt.
  void setConnectionCallback(absl::AnyInvocable<void(const absl::Status&)> cb) {
    on_connection_ = std::move(cb);
    ++callbacks_gen_;
  }

  /// A connection is ready now.
  bool ready() const { return protocol_ != nullptr && protocol_->ready(); }
  size_t queued() const { return queue_.size() + waiters_.size(); }
  /// Commands sent on the ready connection and not answered yet (0 when
  /// none is ready): what a caller bounds to keep a slow server from
  /// making it buffer without bound.
  size_t inFlight() const { return protocol_ != nullptr ? protocol_->inFlight() : 0; }
  /// Connections that became ready so far.
  int connections() const { return connections_; }
  const absl::flat_hash_set<std::string>& channels() const { return channels_; }
  const absl::flat_hash_set<std::string>& patterns() const { return patterns_; }
  /// The back-off policy (initialDelay, factor, maxDelay, maxRetries...).
  ReconnectingClientFactory& factory();
  const RedisClientOptions& options() const { return options_; }

 private:
  class Connection;
  class Factory;
  struct Queued {
    std::vector<std::string> args;
    Deferred<RedisReply> done;
  };
  // A subscription asked for while no connection was ready: fires when the
  // next connection's re-subscription is confirmed.
  struct Waiter {
    bool patterns;
    Deferred<RedisReply> done;
  };

  std::unique_ptr<Protocol> buildProtocol();
  void protocolReady(RedisProtocol* p, const absl::Status& status);
  void protocolLost(RedisProtocol* p, const absl::Status& reason);
  void attemptFailed(const absl::Status& reason);
  void report(bool up, const absl::Status& why);
  absl::Status queueFull() const;
  // Writes what the protocol gathered at the end of this turn: a burst of
  // commands goes out in one write.
  void scheduleFlush();
  Deferred<RedisReply> subscription(bool patterns, bool adding,
                                    absl::Span<const absl::string_view> names);

  Reactor* reactor_;
  RedisClientOptions options_;
  std::unique_ptr<Factory> factory_;
  // The current connection's, from its connectionMade() until its loss.
  RedisProtocol* protocol_ = nullptr;
  std::deque<Queued> queue_;
  std::vector<Waiter> waiters_;
  absl::flat_hash_set<std::string> channels_;
  absl::flat_hash_set<std::string> patterns_;
  absl::AnyInvocable<void(const RedisMessage&)> on_message_;
  absl::AnyInvocable<void(const absl::Status&)> on_connection_;
  uint64_t callbacks_gen_ = 0;
  std::optional<bool> reported_up_;
  DelayedCall flush_call_;
  bool started_ = false;
  bool stopped_ = false;
  int connections_ = 0;
};

}  // namespace twist

#endif  // TWIST_PROTOCOLS_REDIS_CLIENT_H_
