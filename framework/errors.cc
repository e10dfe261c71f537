#include "framework/errors.h"

#include <errno.h>
#include <string.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

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
// A refused connect and an unreachable one are both UNAVAILABLE, as
// Twisted's are both ConnectError; the start of the message tells them
// apart. No payload: a printed status (ToString, operator<<) reads like
// the others.
constexpr absl::string_view kRefused = "connection refused by ";
constexpr absl::string_view kNoRoute = "no route to ";
}  // namespace

absl::Status ConnectError(int error_number, absl::string_view destination) {
  absl::string_view what = "cannot connect to ";
  switch (error_number) {
    case ECONNREFUSED:
    case ENOENT:  // a Unix socket path with no file: nobody listens there either
      what = kRefused;
      break;
    case ENETUNREACH:
    case EHOSTUNREACH:
    case EHOSTDOWN:
      what = kNoRoute;
      break;
    default:
      break;
  }
  return absl::UnavailableError(
      absl::StrCat(what, destination, ": ", strerror(error_number)));
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

constexpr absl::string_view kNoProtocol = " but the factory built no protocol";

absl::Status NoProtocol(absl::string_view destination) {
  return absl::FailedPreconditionError(absl::StrCat("connected to ", destination, kNoProtocol));
}

bool IsNoProtocol(const absl::Status& s) {
  // Not every FAILED_PRECONDITION ("the reactor is stopping" is one).
  return absl::IsFailedPrecondition(s) && absl::EndsWith(s.message(), kNoProtocol);
}

bool IsConnectionRefused(const absl::Status& s) {
  return absl::IsUnavailable(s) && absl::StartsWith(s.message(), kRefused);
}

bool IsNoRoute(const absl::Status& s) {
  return absl::IsUnavailable(s) && absl::StartsWith(s.message(), kNoRoute);
}

}  // namespace twist
