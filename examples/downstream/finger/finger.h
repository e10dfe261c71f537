#ifndef DOWNSTREAM_FINGER_FINGER_H_
#define DOWNSTREAM_FINGER_FINGER_H_

// Twisted's finger tutorial ("The Evolution of Finger"), ported to twist: a
// LineReceiver reads one user name, answers from its factory's table and
// closes. TimeoutMixin (Twisted's policies.TimeoutMixin) closes a client
// that does not send its request in time.

#include <memory>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "framework/address.h"
#include "framework/protocol.h"
#include "framework/reactor_time.h"
#include "protocols/basic.h"
#include "protocols/policies.h"

namespace tutorial {

using UserTable = absl::flat_hash_map<std::string, std::string>;

/// One finger connection.
class FingerProtocol : public twist::LineReceiver, public twist::TimeoutMixin {
 public:
  /// A request line is a user name; longer lines close the connection.
  static constexpr size_t kMaxLine = 256;

  /// Only the reactor's time is needed (TimeoutMixin): a Reactor, or a
  /// task::Clock in a test.
  explicit FingerProtocol(twist::ReactorTime* reactor);
  void connectionMade() override;
  void lineReceived(absl::string_view line) override;
  void connectionLost(const absl::Status& reason) override;
};

/// Builds a FingerProtocol per connection and holds what they share: the
/// users and the time a client has to send its request (Twisted's
/// FingerFactory, whose protocols call self.factory.getUser()).
class FingerFactory : public twist::Factory {
 public:
  FingerFactory(twist::ReactorTime* reactor, UserTable users,
                absl::Duration timeout)
      : reactor_(reactor), users_(std::move(users)), timeout_(timeout) {}
  std::unique_ptr<twist::Protocol> buildProtocol(
      const twist::Address& addr) override;

  /// The user's entry, or "No such user" (as in Twisted's tutorial).
  std::string getUser(absl::string_view user) const;
  absl::Duration timeout() const { return timeout_; }

 private:
  twist::ReactorTime* reactor_;
  UserTable users_;
  absl::Duration timeout_;
};

/// Parses --users: "NAME=TEXT" entries separated by commas, e.g.
/// "moshez=Happy and well,alice=Out to lunch". Names are unique, non-empty,
/// without spaces.
absl::StatusOr<UserTable> ParseUsers(absl::string_view spec);

}  // namespace tutorial

#endif  // DOWNSTREAM_FINGER_FINGER_H_
