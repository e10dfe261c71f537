#include "framework/errors.h"

#include <errno.h>
#include <string.h>


#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/types/optional.h"

namespace twist {

absl::Status ConnectionLost(int error_number) {
  return ConnectionLost(strerror(error_number));
}

absl::Status ConnectionLost(absl::string_view why) {
  return absl::UnavailableError(absl::StrCat("connection lost: ", why));
}

absl::Status ConnectionAborted() {
  return absl::AbortedError("connection aborted");
}

namespace {
// The payload that tells a refused connect from an unreachable one: both
// are UNAVAILABLE, as Twisted's are both ConnectError.
constexpr absl::string_view kConnectKind = "twist/connect-error-kind";

bool HasKind(const absl::Status& s, absl::string_view kind) {
  absl::optional<absl::Cord> p = s.GetPayload(kConnectKind);
  return p.has_value() && *p == kind;
}
}  // namespace

absl::Status ConnectError(int error_number, absl::string_view destination) {
  absl::string_view kind = "connect";
  absl::string_view what = "cannot connect to";
  switch (error_number) {
    case ECONNREFUSED:
      kind = "refused";
      what = "connection refused by";
      break;
    case ENETUNREACH:
    case EHOSTUNREACH:
    case EHOSTDOWN:
      kind = "no-route";
      what = "no route to";
      break;
    default:
      break;
  }
  absl::Status s = absl::UnavailableError(
      absl::StrCat(what, " ", destination, ": ", strerror(error_number)));
  s.SetPayload(kConnectKind, absl::Cord(kind));
  return s;
}

absl::Status ConnectTimeoutError(absl::string_view destination,
                                 absl::Duration timeout) {
  return absl::DeadlineExceededError(absl::StrCat(
      "connect to ", destination, " timed out after ", absl::FormatDuration(timeout)));
}

absl::Status DNSLookupError(absl::string_view host, absl::string_view why) {
  return absl::NotFoundError(absl::StrCat("cannot resolve '", host, "': ", why));
}

absl::Status ConnectCancelled(absl::string_view destination) {
  return absl::CancelledError(
      absl::StrCat("connecting to ", destination, " was cancelled"));
}

bool IsConnectionRefused(const absl::Status& s) {
  return absl::IsUnavailable(s) && HasKind(s, "refused");
}

bool IsNoRoute(const absl::Status& s) {
  return absl::IsUnavailable(s) && HasKind(s, "no-route");
}

}  // namespace twist
