#ifndef TWIST_EXAMPLES_SERVER_MAIN_H_
#define TWIST_EXAMPLES_SERVER_MAIN_H_

#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "framework/protocol.h"
#include "framework/reactor.h"

namespace twist {

/// A program's own wrapper around the factory it serves, for a policy that
/// needs the reactor (ThrottlingFactory its time, the finger server its
/// thread pool, an HTTP Site its clock): given a reactor and the factory,
/// returns the factory to serve on that reactor instead. ServeForever owns
/// it and keeps it past the reactor. Called once per reactor: with
/// --threads=N, N times (one factory per reactor, PerReactorFactory), so
/// what must be shared by all (a room, a total) is made outside it.
using WrapFactory =
    absl::AnyInvocable<std::unique_ptr<Factory>(Reactor* reactor, Factory* factory)>;

class ReactorPool;

/// For --threads > 1, a program whose factory must know the pool's reactors
/// (chat_server: one room over all of them, a ChatFactory per reactor):
/// given the pool before it runs, returns the factory its listeners share
/// instead of ServeForever's `factory`. It must outlive ServeForever.
using PoolFactory = absl::AnyInvocable<Factory*(ReactorPool* pool)>;

/// The start-up and shutdown every example stream server shares. Reads the
/// flags (already parsed by ParseServerFlags, examples/listen_flags.h):
/// every --listen, or --host and --port; --reactor and --backlog; the
/// policies --max_connections, --idle_timeout and --accept_rate; --threads
/// and --spread (--threads=N > 1 serves on a ReactorPool of N reactors,
/// the factory shared by all: it must be thread-safe, see Factory; `wrap`
/// and --idle_timeout are made per reactor). Listens on
/// each endpoint with `factory`, prints "listening on WHERE" for each, in
/// order, as the first lines on stdout, and runs until SIGINT or SIGTERM,
/// after which it closes the connections and returns 0. A bad flag prints
/// one line "PROGRAM: problem" on stderr and returns 2; a failed listen
/// likewise, returning 1.
/// `wrap`, if given, wraps `factory` once the reactor exists, inside the
/// policies above.
/// `pool_factory`, if given, makes the factory for --threads > 1 (see
/// PoolFactory); `factory` is then for --threads=1 only.
/// --workers=N (N > 1): the parent binds every endpoint and prints the
/// lines, then N forked workers serve them, each with its own reactor,
/// `wrap` and policies, supervised by the parent until SIGINT or SIGTERM
/// (framework/process_supervisor.h; docs/design.md, "Worker processes").
/// --threads and --workers together are bad usage.
int ServeForever(absl::string_view program, Factory* factory, WrapFactory wrap = nullptr,
                 PoolFactory pool_factory = nullptr);

/// For a server whose state lives in one process (chat's users): OK unless
/// --workers asks for more than one process, else INVALID_ARGUMENT
/// "--workers=N: WHY", for the program to report as bad usage.
absl::Status RefuseWorkers(absl::string_view why);

}  // namespace twist

#endif  // TWIST_EXAMPLES_SERVER_MAIN_H_
