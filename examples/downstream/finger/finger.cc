#include "finger/finger.h"

#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace tutorial {

FingerProtocol::FingerProtocol(twist::ReactorTime* reactor)
    : TimeoutMixin(reactor) {
  setMaxLength(kMaxLine);
  // RFC 1288 ends the request with CRLF; `echo NAME | nc` sends a bare LF.
  // Split on LF and drop the CR in lineReceived() to take both.
  setDelimiter("\n");
}

void FingerProtocol::connectionMade() {
  // One deadline for the whole request, never reset by partial input: a
  // client sending a byte at a time cannot hold the connection open.
  setTimeout(factoryAs<FingerFactory>()->timeout());
}

void FingerProtocol::lineReceived(absl::string_view line) {
  absl::ConsumeSuffix(&line, "\r");
  cancelTimeout();
  transport()->write(
      absl::StrCat(factoryAs<FingerFactory>()->getUser(line), "\r\n"));
  transport()->loseConnection();
}

void FingerProtocol::connectionLost(const absl::Status& reason) {
  cancelTimeout();
  LineReceiver::connectionLost(reason);
}

std::unique_ptr<twist::Protocol> FingerFactory::buildProtocol(
    const twist::Address& addr) {
  return std::make_unique<FingerProtocol>(reactor_);
}

std::string FingerFactory::getUser(absl::string_view user) const {
  auto it = users_.find(user);
  return it == users_.end() ? "No such user" : it->second;
}

absl::StatusOr<UserTable> ParseUsers(absl::string_view spec) {
  UserTable users;
  if (spec.empty()) return users;
  for (absl::string_view entry : absl::StrSplit(spec, ',')) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(entry, absl::MaxSplits('=', 1));
    if (!absl::StrContains(entry, '=') || kv.first.empty() ||
        absl::StrContains(kv.first, ' ')) {
      return absl::InvalidArgumentError(absl::StrCat(
          "bad --users entry '", entry, "': expected NAME=TEXT, NAME without spaces"));
    }
    if (!users.emplace(kv.first, kv.second).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("--users names '", kv.first, "' twice"));
    }
  }
  return users;
}

}  // namespace tutorial
