#ifndef TWIST_FRAMEWORK_ERRORS_H_
#define TWIST_FRAMEWORK_ERRORS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace twist {

// Why a connection ended, as passed to Protocol::connectionLost. Twisted has
// three failures; twist encodes them in absl::Status:
//   ConnectionDone     clean close (either side)         -> OK
//   ConnectionLost     reset, broken pipe, timeout, ...   -> UNAVAILABLE + cause
//   ConnectionAborted  abortConnection() on our side      -> ABORTED

inline absl::Status ConnectionDone() { return absl::OkStatus(); }
absl::Status ConnectionLost(int error_number);
absl::Status ConnectionLost(absl::string_view why);
absl::Status ConnectionAborted();

inline bool IsConnectionDone(const absl::Status& s) { return s.ok(); }
inline bool IsConnectionLost(const absl::Status& s) {
  return absl::IsUnavailable(s);
}
inline bool IsConnectionAborted(const absl::Status& s) {
  return absl::IsAborted(s);
}

}  // namespace twist

#endif  // TWIST_FRAMEWORK_ERRORS_H_
