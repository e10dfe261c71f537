#ifndef TWIST_TESTS_ECHOED_CLIENT_H_
#define TWIST_TESTS_ECHOED_CLIENT_H_

#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "framework/address.h"
#include "tests/test_util.h"

namespace twist {
namespace testing {

/// A client of the echo server at `to` that has sent `message` and read it
/// back: its connection is there and served (on whichever reactor, thread
/// or worker process took it). INTERNAL naming what came back otherwise.
inline absl::StatusOr<BlockingClient> EchoedClient(const Address& to,
                                                   absl::string_view message = "ping") {
  absl::StatusOr<BlockingClient> c = BlockingClient::Connect(to);
  if (!c.ok()) return c.status();
  if (absl::Status s = c->SendAll(message); !s.ok()) return s;
  absl::StatusOr<std::string> got = c->ReadExactly(message.size());
  if (!got.ok()) return got.status();
  if (*got != message) {
    return absl::InternalError(absl::StrCat("sent '", message, "', echoed '", *got, "'"));
  }
  return c;
}

/// `n` of them, the i-th sending `message(i)`; the first failure, naming
/// the client.
inline absl::StatusOr<std::vector<BlockingClient>> EchoedClients(
    const Address& to, int n, absl::FunctionRef<std::string(int)> message) {
  std::vector<BlockingClient> clients;
  clients.reserve(n);
  for (int i = 0; i < n; ++i) {
    absl::StatusOr<BlockingClient> c = EchoedClient(to, message(i));
    if (!c.ok()) {
      return absl::Status(c.status().code(), absl::StrCat("client ", i, ": ", c.status().message()));
    }
    clients.push_back(*std::move(c));
  }
  return clients;
}

}  // namespace testing
}  // namespace twist

#endif  // TWIST_TESTS_ECHOED_CLIENT_H_
