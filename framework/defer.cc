#include "framework/defer.h"

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"

namespace twist {

absl::Status CancelledError() {
  return absl::CancelledError("CancelledError: the Deferred was cancelled");
}

absl::Status AlreadyCalledError(const char* first, const char* second) {
  return absl::FailedPreconditionError(absl::StrCat(
      "AlreadyCalledError: ", second, " on a Deferred already fired by ", first));
}

absl::Status FirstError(const absl::Status& error, size_t index) {
  return absl::Status(error.code(),
                      absl::StrCat("FirstError[#", index, ", ", error.message(), "]"));
}

namespace defer_internal {

void LogUnhandledError(const absl::Status& error) {
  std::string line = absl::StrCat("twist: Unhandled error in Deferred: ",
                                  error.ToString(), "\n");
  fputs(line.c_str(), stderr);
}

absl::Status MissingValueError() {
  return absl::InternalError(
      "a callback returned an OK absl::Status where its Deferred needed a value");
}

absl::Status SelfChainError() {
  return absl::InternalError("a callback returned the Deferred it was added to");
}

}  // namespace defer_internal
}  // namespace twist
