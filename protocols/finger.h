#ifndef TWIST_PROTOCOLS_FINGER_H_
#define TWIST_PROTOCOLS_FINGER_H_

// A finger server (RFC 1288), the server Twisted's tutorial grows step by
// step ("The Evolution of Finger"). A client sends one query line and the
// server answers, then closes:
//
//   client: alice          server: the text of PLANS/alice, then close
//   client: (empty line)   server: the users with a plan, one per line
//   client: nobody         server: "No such user"
//
// A plan is read from a file with a blocking read(): the file may be slow
// (a named pipe fed by a program, as .plan files once were, or a network
// file system). So it is read on the reactor's thread pool (deferToThread),
// and the loop keeps serving the other clients meanwhile.

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "framework/defer.h"
#include "framework/protocol.h"
#include "framework/reactor_threads.h"
#include "protocols/basic.h"

namespace twist {

struct FingerOptions {
  /// Directory holding one file per user, named after the user.
  std::string plans_dir;
  /// Longest plan sent, in bytes; the rest is cut.
  size_t max_plan = 64 * 1024;
};

/// The blocking look-ups, callable on any thread. A user name is 1..32
/// characters of [A-Za-z0-9._-] not starting with '.', so a query never
/// names a file outside the directory; symbolic links are not followed.
/// NotFound for an invalid name or a user without a plan.
absl::StatusOr<std::string> ReadPlan(const FingerOptions& options, absl::string_view user);
/// The users with a plan, sorted.
absl::StatusOr<std::vector<std::string>> ListUsers(const FingerOptions& options);

class FingerFactory;

/// One query, answered from the thread pool, then the connection closes.
/// The read under way is cancelled in connectionLost(), so nothing touches
/// the protocol after it (the read itself finishes on its thread and its
/// result is dropped).
class FingerProtocol : public LineReceiver {
 public:
  FingerProtocol(ReactorThreads* reactor, const FingerOptions* options);
  void lineReceived(absl::string_view line) override;
  void connectionLost(const absl::Status& reason) override;

 private:
  void answer(const absl::StatusOr<std::string>& reply);

  ReactorThreads* reactor_;
  const FingerOptions* options_;
  bool asked_ = false;  // one query per connection
  std::optional<Deferred<std::string>> pending_;
};

/// Builds FingerProtocols that read plans on `reactor`'s thread pool. Used
/// by one reactor (buildProtocol on its thread).
class FingerFactory : public Factory {
 public:
  FingerFactory(ReactorThreads* reactor, FingerOptions options)
      : reactor_(reactor), options_(std::move(options)) {}
  std::unique_ptr<Protocol> buildProtocol(const Address& addr) override;

 private:
  ReactorThreads* reactor_;
  const FingerOptions options_;
};

}  // namespace twist

#endif  // TWIST_PROTOCOLS_FINGER_H_
