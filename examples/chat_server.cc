// A chat server on twist: clients connect with nc or telnet, choose a name
// and talk to everyone else connected (see protocols/chat.h).
//
//   ./tools/bazel run //examples:chat_server -- --port=8000
//   nc 127.0.0.1 8000

#include <stdio.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "examples/listen_flags.h"
#include "examples/server_main.h"
#include "examples/usage.h"
#include "framework/reactor_pool.h"
#include "gflags/gflags.h"
#include "protocols/chat.h"

DEFINE_int64(max_line, 16384,
             "Longest line a client may send, in bytes, without its line "
             "ending; a longer one gets \"Line too long.\" and is disconnected.");

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "Chat server: clients choose a name, then every line they send goes to "
      "everyone else.\n"
      "Usage: chat_server [--host=127.0.0.1] [--port=8000] [--reactor=epoll] "
      "[--max_line=16384] [--threads=1]\n"
      "       chat_server --listen=ENDPOINT [--listen=ENDPOINT ...] [...]");
  if (absl::Status s = twist::ParseServerFlags(&argc, &argv); !s.ok()) {
    return twist::BadUsage("chat_server", s.message());
  }
  if (FLAGS_max_line < 1) {
    return twist::BadUsage("chat_server", absl::StrCat("invalid --max_line ", FLAGS_max_line,
                                                        ": must be at least 1"));
  }
  // Chat's users live in one process's memory: a second process would be
  // a second, separate chat room.
  if (absl::Status s = twist::RefuseWorkers(
          "chat cannot share its users across processes (until the Redis issue): "
          "serve it in one process");
      !s.ok()) {
    return twist::BadUsage("chat_server", s.message());
  }
  twist::ChatOptions options;
  options.max_line = static_cast<size_t>(FLAGS_max_line);
  // --threads=1: one reactor's room, as ever. --threads=N: one room over
  // the pool's reactors, a ChatFactory per reactor (protocols/chat.h).
  twist::ChatFactory factory(options);
  std::unique_ptr<twist::ChatPoolFactory> pooled;  // outlives the pool
  return twist::ServeForever("chat_server", &factory, nullptr, [&](twist::ReactorPool* pool) {
    pooled = std::make_unique<twist::ChatPoolFactory>(pool, options);
    return pooled.get();
  });
}
