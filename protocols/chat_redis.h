#ifndef TWIST_PROTOCOLS_CHAT_REDIS_H_
#define TWIST_PROTOCOLS_CHAT_REDIS_H_

// One chat room over several chat servers, through Redis (issue 17):
// ChatRedisLink is the ChatLink (protocols/chat.h) of one server's
// ChatFactory. Keys and channel, with P the prefix ("twist:chat:"):
//
//   P channel          pub/sub: "SERVER-ID LINE" for every line said
//   P servers          set of the ids of the servers in the room
//   P server:ID        "1", expiring: the server is alive (heartbeat)
//   P users:ID         set of the names of that server's users
//   P name:NAME        ID of the server whose user holds NAME, expiring
//   P gone:ID          "1" for an hour after another server removed ID
//
// Each server refreshes its server key and its names every expiry/3; any
// server that finds another's server key gone removes that server, frees
// its names and publishes "* NAME has left" for each of its users. So a
// server that dies without a word is gone from /who within `expiry`, and
// its users' leaves reach the others and its names are free within
// 4/3 * expiry (docs/design.md, "Chat across servers").

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "framework/defer.h"
#include "framework/delayed_call.h"
#include "protocols/chat.h"
#include "protocols/redis_client.h"

namespace twist {

class Reactor;

struct ChatRedisOptions {
  /// Where Redis is, and the client's back-off and queue.
  RedisClientOptions redis;
  /// Prefix of every key and of the channel.
  std::string prefix = "twist:chat:";
  /// How long a server's names and its presence outlive its last
  /// heartbeat (one every expiry/3).
  absl::Duration expiry = absl::Seconds(6);
  /// PUBLISHes (and other commands) sent and not answered, past which a
  /// line is not published but dropped and counted: a Redis that does not
  /// keep up never makes the server buffer without bound.
  size_t max_in_flight = 4096;
  /// This server's id in the room; empty: 16 random hex digits.
  std::string server_id;
  /// Told of changes of Redis's reachability ("unreachable: WHY",
  /// "reachable"), for the program's log.
  absl::AnyInvocable<void(absl::string_view)> log;
};

/// Shares `factory`'s room (a ChatFactory(options), one reactor) with the
/// other servers using the same Redis and prefix. Made before the reactor
/// runs, it sets itself as the factory's link; start() connects. Runs on
/// the reactor's thread; must be destroyed while the reactor exists (its
/// RedisClient holds a connection), before the factory.
///
/// - A line said here is published (origin: this server's id) once Redis
///   is reachable; the others deliver it to their users, and skip their
///   own lines, which their users got directly. While Redis is
///   unreachable, or more than max_in_flight commands wait, a line is not
///   published (droppedLines counts it): it is never sent late.
/// - Names: SET name NX PX expiry, with the user's name in the server's
///   set, in one script; released (if still this server's) on leave.
/// - Redis lost (the connection closed, or a heartbeat unanswered for
///   `expiry`, as in a network partition): the users here are told
///   kChatOthersAway once; they go on
///   chatting among themselves and names are decided here. When a
///   connection is ready again: kChatOthersBack, and this server registers
///   again with the names it has now (re-claiming them; publishing leaves
///   and joins for what changed since Redis last knew). A name claimed
///   elsewhere meanwhile stays there: the user here is told so and
///   disconnected (evict).
class ChatRedisLink : public ChatLink {
 public:
  ChatRedisLink(Reactor* reactor, ChatFactory* factory, ChatRedisOptions options);
  ~ChatRedisLink() override;
  ChatRedisLink(const ChatRedisLink&) = delete;
  ChatRedisLink& operator=(const ChatRedisLink&) = delete;

  /// Connects (reconnecting by itself from then on).
  void start();
  /// Leaves the room cleanly, for a server that stops: one script removes
  /// this server, frees its names and publishes "* NAME has left" for its
  /// users. Fires when Redis answered, at once if it is unreachable, and
  /// after at most `wait` otherwise. Nothing is sent afterwards.
  Deferred<Unit> leaveRoom(absl::Duration wait = absl::Seconds(1));

  const std::string& serverId() const { return id_; }
  /// Lines not published (Redis unreachable or behind, or a PUBLISH lost).
  uint64_t droppedLines() const { return dropped_; }
  /// Lines from other servers delivered here.
  uint64_t receivedLines() const { return received_; }
  /// Users here disconnected because their name was taken elsewhere while
  /// Redis was unreachable.
  uint64_t evictions() const { return evictions_; }

  /// Reachable, or not known yet: until the first connection attempt has
  /// ended, claims and /who wait for it (so that a server's first users
  /// are not told Redis is away while it is only being reached).
  bool up() const override { return !closed_ && (up_ || starting_); }
  void publish(absl::string_view line) override;
  void claim(absl::string_view name,
             absl::AnyInvocable<void(absl::StatusOr<bool>)> done) override;
  void rename(absl::string_view old_name, absl::string_view new_name,
              absl::AnyInvocable<void(absl::StatusOr<bool>)> done) override;
  void release(absl::string_view name) override;
  void names(absl::AnyInvocable<void(absl::StatusOr<std::vector<std::string>>)> done) override;

 private:
  void connectionChanged(const absl::Status& status);
  // Before the first connection attempt has ended: keeps `then`, run with
  // whether Redis is up once it has, and returns true; else false.
  bool hold(absl::AnyInvocable<void(bool)> then);
  void messageReceived(const RedisMessage& m);
  // Registers this server with the names of the users here now.
  void registerServer();
  void heartbeat();
  // EVAL `script` with ARGV = prefix, id, then `args`.
  Deferred<RedisReply> eval(absl::string_view script, std::vector<std::string> args);
  void log(absl::string_view what);

  Reactor* reactor_;
  ChatFactory* factory_;
  ChatRedisOptions options_;
  std::string id_;
  std::string channel_;
  std::string ttl_ms_;
  RedisClient client_;
  DelayedCall heartbeat_call_;
  DelayedCall stop_call_;  // leaveRoom(): stops the client after the answer
  DelayedCall wait_call_;  // leaveRoom(): its bound
  bool up_ = false;
  bool starting_ = true;  // the first connection attempt has not ended
  std::vector<absl::AnyInvocable<void(bool)>> held_;  // waiting for it
  bool told_away_ = false;  // the users here were told kChatOthersAway
  bool heartbeat_in_flight_ = false;
  absl::Time heartbeat_sent_;
  bool closed_ = false;  // leaveRoom() or destroyed: nothing more is sent
  uint64_t dropped_ = 0;
  uint64_t received_ = 0;
  uint64_t evictions_ = 0;
};

}  // namespace twist

#endif  // TWIST_PROTOCOLS_CHAT_REDIS_H_
