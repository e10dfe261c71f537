#ifndef TWIST_EXAMPLES_LISTEN_FLAGS_H_
#define TWIST_EXAMPLES_LISTEN_FLAGS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "framework/endpoints.h"

namespace twist {

/// The flags every example server shares to say where it listens:
/// --listen=ENDPOINT, repeatable (--listen=tcp:8000 --listen=unix:/tmp/e.sock),
/// and --host/--port, the short form of one endpoint (tcp, or udp for a
/// datagram server); with --tls_cert=CERT.pem --tls_key=KEY.pem that
/// endpoint is TLS (ssl:), in servers that link //protocols:tls_endpoints.
/// Bad usage is one line on stderr and exit 2: one of the two TLS flags
/// without the other, either file unreadable, not PEM or not a matching
/// pair (for ssl: endpoints of --listen too), or with --listen.

/// gflags::ParseCommandLineFlags, after taking every --listen out of argv
/// (gflags keeps only a flag's last value); they are kept in order. Left-
/// over arguments are an error.
absl::Status ParseServerFlags(int* argc, char*** argv);

/// The endpoints the command line names, in order: every --listen, or else
/// the one --host and --port name. `datagram`: the server serves udp:
/// endpoints only, else stream ones (tcp:, tcp6:, unix:, ssl:) only. A bad one
/// is InvalidArgument naming the flag: "--listen=tpc:8000: unknown endpoint
/// type 'tpc' ...", "invalid --port 70000: must be 0..65535",
/// "--tls_key needs --tls_cert: ...".
absl::StatusOr<std::vector<ServerEndpointSpec>> ListenSpecs(bool datagram);

/// Prints "listening on WHERE" for each port, in the order given, and
/// flushes: before any other output of the server.
void PrintListening(const std::vector<ListeningPort>& ports);

}  // namespace twist

#endif  // TWIST_EXAMPLES_LISTEN_FLAGS_H_
