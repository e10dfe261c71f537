#ifndef TWIST_PROTOCOLS_REDIS_H_
#define TWIST_PROTOCOLS_REDIS_H_

// A Redis client protocol on twist (issue 17): one connection, commands
// pipelined and their replies matched in order, pub/sub, and the AUTH /
// SELECT (or HELLO 3) handshake. protocols/redis_client.h builds the
// reconnecting connection object on it; protocols/resp.h is the wire format.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "framework/defer.h"
#include "framework/protocol.h"
#include "protocols/resp.h"

namespace twist {

namespace redis_internal {
// Calls the function in `slot`, if any, so that it may replace or clear
// its own slot (or the owner's others) while it runs: it is moved out for
// the call and put back only if no setter ran meanwhile (`gen` counts
// them).
template <class Sig, class... A>
void CallSlot(absl::AnyInvocable<Sig>& slot, const uint64_t& gen, A&&... args) {
  if (!slot) return;
  absl::AnyInvocable<Sig> running = std::move(slot);
  slot = nullptr;
  const uint64_t before = gen;
  running(std::forward<A>(args)...);
  if (gen == before) slot = std::move(running);
}
}  // namespace redis_internal

/// Where a Redis server is and how to open a session with it.
struct RedisOptions {
  /// TCP host (a name or a numeric address) and port; or, when
  /// `unix_path` is set, that Unix socket instead.
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string unix_path;
  /// AUTH [username] password after connecting; empty password: no AUTH.
  std::string username;
  std::string password;
  /// SELECT db after connecting, unless 0.
  int db = 0;
  /// HELLO 3: RESP3 replies (maps, sets, doubles, pushes) and pub/sub on
  /// the same connection as ordinary commands.
  bool resp3 = false;
  RespLimits limits;

  /// "host:port" or "unix:PATH", for messages.
  std::string describe() const;
};

/// Reads `spec` as a Redis URL or a twist client endpoint string:
///
///   redis://[[username]:password@]host[:port][/db]   (port 6379, db 0)
///   redis://[::1]:6380/2                            (IPv6 in brackets)
///   tcp:host=H:port=P  or  tcp:H:P  or  unix:PATH    (framework/endpoints.h)
///
/// The password may be percent-encoded (%40 for '@'). Errors are
/// INVALID_ARGUMENT naming the bad part. Other fields of `base` (resp3,
/// limits; password and db for an endpoint string) are kept.
absl::StatusOr<RedisOptions> ParseRedisAddress(absl::string_view spec,
                                               RedisOptions base = {});

/// A message a subscription delivered.
struct RedisMessage {
  std::string channel;
  std::string payload;
  /// The pattern that matched (PSUBSCRIBE), else empty.
  std::string pattern;
};

/// One connection to a Redis server, as a twist Protocol. Commands may be
/// issued as soon as connectionMade() has run: each is written at once
/// (pipelined: no waiting for earlier replies) and its Deferred fires with
/// its reply, in the order sent. An error reply fails the Deferred with a
/// RedisError status (IsRedisError), never a crash; an error inside an
/// aggregate (EXEC's) stays a kError element.
///
/// On connect it sends the handshake first (HELLO 3, AUTH, SELECT as the
/// options say); commands issued before it completes queue behind it on
/// the wire. If the handshake fails the connection is closed and every
/// command fails with that status (UNAUTHENTICATED for AUTH/HELLO,
/// FAILED_PRECONDITION for SELECT).
///
/// When the connection ends, every command still waiting fails with
/// UNAVAILABLE, "redis connection to HOST:PORT lost with N commands in
/// flight (each may or may not have run): WHY"; commands issued after that
/// fail at once with UNAVAILABLE too. A reply the parser rejects
/// (protocols/resp.h) aborts the connection.
///
/// Pub/sub: subscribe() and friends; messages go to the message callback.
/// On a RESP2 connection with subscriptions, Redis takes only the pub/sub
/// commands, PING, QUIT and RESET: others fail here at once with
/// FAILED_PRECONDITION. With resp3 there is no such restriction.
class RedisProtocol : public Protocol {
 public:
  explicit RedisProtocol(RedisOptions options = {});
  ~RedisProtocol() override;

  /// Sends a command: AppendCommand's array of bulk strings. SUBSCRIBE,
  /// PSUBSCRIBE, UNSUBSCRIBE and PUNSUBSCRIBE given here go to the methods
  /// below.
  Deferred<RedisReply> command(absl::Span<const absl::string_view> args);
  Deferred<RedisReply> command(const std::vector<std::string>& args);
  /// command({"SET", key, value}): a braced list picks this one.
  Deferred<RedisReply> command(std::initializer_list<absl::string_view> args) {
    return command(absl::Span<const absl::string_view>(args.begin(), args.size()));
  }

  /// The pub/sub commands. Each fires once Redis confirmed every channel
  /// (or pattern) it names, with an array of those confirmations
  /// (["subscribe", channel, count], ...); with no arguments, the
  /// unsubscribes cover every channel (pattern) subscribed.
  Deferred<RedisReply> subscribe(absl::Span<const absl::string_view> channels);
  Deferred<RedisReply> psubscribe(absl::Span<const absl::string_view> patterns);
  Deferred<RedisReply> unsubscribe(absl::Span<const absl::string_view> channels = {});
  Deferred<RedisReply> punsubscribe(absl::Span<const absl::string_view> patterns = {});

  /// Called with each message of a subscription.
  void setMessageCallback(absl::AnyInvocable<void(const RedisMessage&)> cb) {
    on_message_ = std::move(cb);
    ++callbacks_gen_;
  }
  /// Called with RESP3 pushes that are not pub/sub messages (client-side
  /// caching invalidations, say).
  void setPushCallback(absl::AnyInvocable<void(const RedisReply&)> cb) {
    on_push_ = std::move(cb);
    ++callbacks_gen_;
  }
  /// Called once: OK when the handshake is done (at once from
  /// connectionMade() when there is none), or why it failed.
  void setReadyCallback(absl::AnyInvocable<void(const absl::Status&)> cb) {
    on_ready_ = std::move(cb);
    ++callbacks_gen_;
  }
  /// Called from connectionLost(), after the commands in flight failed.
  void setLostCallback(absl::AnyInvocable<void(const absl::Status&)> cb) {
    on_lost_ = std::move(cb);
    ++callbacks_gen_;
  }
  /// Forgets every callback above (their owner is going away).
  void clearCallbacks();

  /// Writing: by default each command is written at once, except that
  /// commands issued from inside a reply's callbacks go out together when
  /// the received data has been handled. With batching on, commands gather
  /// until flush(): one write for a whole pipeline instead of one each
  /// (RedisClient flushes at the end of the reactor's turn).
  void setBatching(bool on) { batching_ = on; }
  void flush();

  /// The handshake is done and the connection still up.
  bool ready() const { return ready_ && !lost_; }
  /// Commands (and handshake steps) sent and not answered yet.
  size_t inFlight() const { return pending_.size(); }
  /// Channels and patterns subscribed, as sent (what the server will have
  /// once it has read everything written).
  const absl::flat_hash_set<std::string>& channels() const { return channels_; }
  const absl::flat_hash_set<std::string>& patterns() const { return patterns_; }
  const RedisOptions& options() const { return options_; }

  void connectionMade() override;
  void dataReceived(absl::string_view data) override;
  void connectionLost(const absl::Status& reason) override;

 private:
  enum class Kind { kCommand, kHandshake, kPubSub };
  struct Pending {
    Kind kind;
    Deferred<RedisReply> done;
    const char* step = "";   // a handshake step's name, for its error
    int64_t expected = 1;    // pub/sub: confirmations still to come
    std::vector<RedisReply> confirmations;
  };

  // Writes the command and queues its entry; or fails it at once.
  Deferred<RedisReply> send(absl::Span<const absl::string_view> args, Kind kind,
                            int64_t expected, const char* step = "");
  Deferred<RedisReply> pubsub(absl::string_view verb, absl::Span<const absl::string_view> names);
  absl::Status notWritable() const;
  void handleReplies();
  void handle(RedisReply reply);
  // A pub/sub message or confirmation, or another push: true if consumed.
  bool handlePubSub(RedisReply& reply);
  void handshakeStepDone(Pending& p, const RedisReply& reply);
  // The handshake ended (OK, or why not): ready_, and the ready callback.
  void handshakeDone(const absl::Status& status);
  void failConnection(absl::Status why);

  RedisOptions options_;
  RespParser parser_;
  std::deque<Pending> pending_;
  absl::flat_hash_set<std::string> channels_;
  absl::flat_hash_set<std::string> patterns_;
  int64_t server_subscriptions_ = 0;  // the count in the last confirmation
  int handshake_left_ = 0;
  std::string out_;         // commands not written yet
  bool batching_ = false;
  bool receiving_ = false;  // inside dataReceived
  bool ready_ = false;
  bool lost_ = false;
  absl::Status failure_;  // why we closed it (handshake, protocol error)
  std::string peer_;
  absl::AnyInvocable<void(const RedisMessage&)> on_message_;
  absl::AnyInvocable<void(const RedisReply&)> on_push_;
  absl::AnyInvocable<void(const absl::Status&)> on_ready_;
  absl::AnyInvocable<void(const absl::Status&)> on_lost_;
  uint64_t callbacks_gen_ = 0;  // setters and clearCallbacks() so far
};

}  // namespace twist

#endif  // TWIST_PROTOCOLS_REDIS_H_
