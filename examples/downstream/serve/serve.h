#ifndef DOWNSTREAM_SERVE_SERVE_H_
#define DOWNSTREAM_SERVE_SERVE_H_

#include "absl/strings/string_view.h"
#include "framework/protocol.h"
#include "framework/reactor.h"

namespace tutorial {

/// What a twist server's main() does once it has its reactor and factory
/// (Twisted's `reactor.listenTCP(port, factory); reactor.run()`): stops the
/// reactor on SIGINT or SIGTERM, listens on host:port with `factory`, prints
/// "listening on HOST:PORT" on stdout and runs until stopped. Returns the exit
/// status: 0 after a clean stop, 1 after printing "PROGRAM: problem" on stderr.
int ListenAndRun(absl::string_view program, twist::Reactor& reactor,
                 twist::Factory& factory, absl::string_view host, int port);

/// Prints "PROGRAM: message" on stderr and returns 1, for main().
int Fail(absl::string_view program, absl::string_view message);

}  // namespace tutorial

#endif  // DOWNSTREAM_SERVE_SERVE_H_
