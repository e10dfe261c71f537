// Quote of the Day server on twist (Twisted's QOTD tutorial):
//
//   ../../tools/bazel run //qotd:qotd_server -- --port=8007
//   nc 127.0.0.1 8007

#include <memory>

#include "absl/status/statusor.h"
#include "framework/reactor.h"
#include "gflags/gflags.h"
#include "qotd/qotd.h"
#include "serve/serve.h"

DEFINE_string(host, "127.0.0.1", "Interface to listen on (::1 for IPv6).");
DEFINE_int32(port, 8007, "TCP port to listen on; 0 picks a free one.");
DEFINE_string(quote, tutorial::QotdFactory::kDefaultQuote,
              "The quote every client gets.");

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "Quote of the Day server: writes --quote to each client and closes.\n"
      "Usage: qotd_server [--host=127.0.0.1] [--port=8007] [--quote=TEXT]");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  // The factory before the reactor: it outlives the reactor's ports.
  tutorial::QotdFactory factory(FLAGS_quote);
  absl::StatusOr<std::unique_ptr<twist::Reactor>> reactor =
      twist::Reactor::Create();
  if (!reactor.ok()) return tutorial::Fail("qotd_server", reactor.status().message());
  return tutorial::ListenAndRun("qotd_server", **reactor, factory, FLAGS_host,
                                FLAGS_port);
}
