// The seed texts' "10086" menu bot on twist: every caller gets the menu and
// its own conversation, all on one reactor thread (the seed gives each
// client a thread of its own). See protocols/menu_bot.h.
//
//   ./tools/bazel run //examples:menu_bot            # 127.0.0.1:8002, as the seed
//   nc 127.0.0.1 8002

#include <memory>

#include "absl/strings/str_cat.h"
#include "examples/listen_flags.h"
#include "examples/server_main.h"
#include "examples/usage.h"
#include "framework/protocol.h"
#include "gflags/gflags.h"
#include "protocols/menu_bot.h"

DEFINE_double(flush_delay, 0.2,
              "Seconds of silence after which input without a line ending is "
              "taken as a whole message (the seed's client sends none); 0: each "
              "read is a message.");

int main(int argc, char** argv) {
  constexpr char kProgram[] = "menu_bot";
  gflags::SetUsageMessage(
      "The seeds' 10086 menu bot: 0 for an operator, exit to hang up.\n"
      "Usage: menu_bot [--host=127.0.0.1] [--port=8002] [--reactor=epoll] "
      "[--flush_delay=0.2]\n"
      "       menu_bot --listen=ENDPOINT [--listen=ENDPOINT ...] [...]");
  // The seed's port, unless the command line says otherwise.
  gflags::SetCommandLineOptionWithMode("port", "8002", gflags::SET_FLAGS_DEFAULT);
  if (absl::Status s = twist::ParseServerFlags(&argc, &argv); !s.ok()) {
    return twist::BadUsage(kProgram, s.message());
  }
  if (!(FLAGS_flush_delay >= 0) || FLAGS_flush_delay > 3600) {
    return twist::BadUsage(kProgram, absl::StrCat("invalid --flush_delay ", FLAGS_flush_delay,
                                                  ": must be 0..3600 seconds"));
  }
  twist::MenuBotOptions options;
  options.flush_delay = absl::Seconds(FLAGS_flush_delay);
  // The bot's flush timers need the reactor, which ServeForever makes: it
  // builds a factory for each (the placeholder is never used).
  twist::Factory placeholder;
  return twist::ServeForever(
      kProgram, &placeholder,
      [&](twist::Reactor* reactor, twist::Factory*) -> std::unique_ptr<twist::Factory> {
        return std::make_unique<twist::MenuBotFactory>(reactor, options);
      });
}
