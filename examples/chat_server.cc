// A chat server on twist: clients connect with nc or telnet, choose a name
// and talk to everyone else connected (see protocols/chat.h).
//
//   ./tools/bazel run //examples:chat_server -- --port=8000
//   nc 127.0.0.1 8000
//
// Several servers (or --workers=N or --threads=N of one, each worker or
// reactor a server of the room) share one room through Redis:
//
//   chat_server --port=8000 --redis=redis://127.0.0.1:6379
//   chat_server --port=8001 --redis=redis://127.0.0.1:6379

#include <stdio.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "examples/listen_flags.h"
#include "examples/server_main.h"
#include "examples/usage.h"
#include "framework/reactor.h"
#include "framework/reactor_pool.h"
#include "gflags/gflags.h"
#include "protocols/chat.h"
#include "protocols/chat_redis.h"
#include "protocols/redis.h"

DEFINE_int64(max_line, 16384,
             "Longest line a client may send, in bytes, without its line "
             "ending; a longer one gets \"Line too long.\" and is disconnected.");

DEFINE_string(redis, "",
              "Share the room with the other chat servers using this Redis: "
              "redis://[[user]:password@]host[:port][/db] (or tcp:HOST:PORT, "
              "unix:PATH). Lets --workers and --threads serve one room, each "
              "worker or reactor a server of it.");
DEFINE_double(redis_expiry, 6,
              "With --redis: seconds a server that dies without a word keeps its "
              "names and stays in /who; its users' leaves reach the others within "
              "4/3 of this. It refreshes them every third of this.");

namespace {

// --redis: one server of the room, on one reactor: its users and its link
// to the other servers. The link goes first (it unsets itself).
struct RoomServer : twist::ChatFactory {
  using ChatFactory::ChatFactory;
  std::unique_ptr<twist::ChatRedisLink> link;
};

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "Chat server: clients choose a name, then every line they send goes to "
      "everyone else.\n"
      "Usage: chat_server [--host=127.0.0.1] [--port=8000] [--reactor=epoll] "
      "[--max_line=16384] [--threads=1]\n"
      "       [--redis=redis://HOST:PORT [--redis_expiry=6] [--workers=N | --threads=N]]\n"
      "       chat_server --listen=ENDPOINT [--listen=ENDPOINT ...] [...]");
  if (absl::Status s = twist::ParseServerFlags(&argc, &argv); !s.ok()) {
    return twist::BadUsage("chat_server", s.message());
  }
  if (FLAGS_max_line < 1) {
    return twist::BadUsage("chat_server", absl::StrCat("invalid --max_line ", FLAGS_max_line,
                                                        ": must be at least 1"));
  }
  // Without Redis, chat's users live in one process's memory: a second
  // process would be a second, separate chat room.
  const bool shared = !FLAGS_redis.empty();
  if (absl::Status s = twist::RefuseWorkers(
          "chat cannot share its users across processes without --redis: "
          "serve it in one process, or give --redis");
      !shared && !s.ok()) {
    return twist::BadUsage("chat_server", s.message());
  }
  twist::RedisClientOptions redis;
  if (shared) {
    absl::StatusOr<twist::RedisOptions> where = twist::ParseRedisAddress(FLAGS_redis);
    if (!where.ok()) {
      return twist::BadUsage("chat_server",
                             absl::StrCat("invalid --redis '", FLAGS_redis, "': ",
                                          where.status().message()));
    }
    static_cast<twist::RedisOptions&>(redis) = *where;
  }
  // Checked with or without --redis, like every flag.
  if (!(FLAGS_redis_expiry >= 0.1 && FLAGS_redis_expiry <= 86400)) {
    return twist::BadUsage("chat_server", absl::StrCat("invalid --redis_expiry ",
                                                        FLAGS_redis_expiry,
                                                        ": must be 0.1..86400 seconds"));
  }
  twist::ChatOptions options;
  options.max_line = static_cast<size_t>(FLAGS_max_line);
  // Without --redis: --threads=1 serves one reactor's room, as ever;
  // --threads=N one room over the pool's reactors, a ChatFactory per
  // reactor (ChatPoolFactory, protocols/chat.h).
  twist::ChatFactory factory(options);
  std::unique_ptr<twist::ChatPoolFactory> pooled;  // outlives the pool
  twist::PoolFactory pool_factory = [&](twist::ReactorPool* pool) {
    pooled = std::make_unique<twist::ChatPoolFactory>(pool, options);
    return pooled.get();
  };
  // --redis: every reactor is a server of the room of its own, whether it
  // is this process's only one, a --workers worker's or one of --threads'
  // pool: its own ChatFactory and ChatRedisLink (own server id, Redis
  // connection and heartbeat), made once the reactor exists and served in
  // place of `factory` (with --threads, each reactor its own, through a
  // PerReactorFactory). Users of two reactors of one process meet through
  // Redis, as users of two workers do: no room shared between threads.
  twist::WrapFactory wrap = nullptr;
  if (shared) {
    pool_factory = nullptr;
    wrap = [&](twist::Reactor* reactor, twist::Factory*) -> std::unique_ptr<twist::Factory> {
      twist::ChatRedisOptions link_options;
      link_options.redis = redis;
      link_options.expiry = absl::Seconds(FLAGS_redis_expiry);
      link_options.log = [where = redis.describe()](absl::string_view what) {
        fprintf(stderr, "chat_server: redis at %s %.*s\n", where.c_str(),
                static_cast<int>(what.size()), what.data());
      };
      auto server = std::make_unique<RoomServer>(options);
      RoomServer* s = server.get();
      s->link = std::make_unique<twist::ChatRedisLink>(reactor, s, std::move(link_options));
      // It leaves the room before the reactor closes its connections, and
      // goes with the reactor's "after shutdown", on the reactor's thread
      // while the reactor still exists.
      reactor->callWhenRunning([s] { s->link->start(); });
      reactor->addSystemEventTrigger(twist::EventPhase::kBefore, "shutdown",
                                     [s] { return s->link->leaveRoom(); });
      reactor->addSystemEventTrigger(twist::EventPhase::kAfter, "shutdown",
                                     [s] { s->link.reset(); });
      return server;
    };
  }
  return twist::ServeForever("chat_server", &factory, std::move(wrap), std::move(pool_factory));
}
