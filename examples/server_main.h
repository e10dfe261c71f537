#ifndef TWIST_EXAMPLES_SERVER_MAIN_H_
#define TWIST_EXAMPLES_SERVER_MAIN_H_

#include "absl/strings/string_view.h"
#include "framework/protocol.h"

namespace twist {

/// The start-up and shutdown every example server shares. Reads the flags
/// --host, --port, --reactor and --backlog (already parsed by gflags), and
/// the policies --max_connections, --idle_timeout and --accept_rate;
/// listens with `factory`, prints "listening on HOST:PORT" ("[::1]:PORT"
/// for IPv6) as the first line on stdout, and runs until SIGINT or SIGTERM,
/// after which it closes the connections and returns 0. A bad flag or a failed listen prints one line
/// "PROGRAM: problem" on stderr and returns 1.
int ServeForever(absl::string_view program, Factory* factory);

}  // namespace twist

#endif  // TWIST_EXAMPLES_SERVER_MAIN_H_
