#include "framework/errors.h"

#include <string.h>

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

}  // namespace twist
