#ifndef TWIST_EXAMPLES_USAGE_H_
#define TWIST_EXAMPLES_USAGE_H_

#include "absl/strings/string_view.h"

namespace twist {

/// How every example program stops on a problem: one line "PROGRAM:
/// problem" on stderr, and the exit status to return from main.

/// Bad usage (a bad flag or flag value): returns 2.
int BadUsage(absl::string_view program, absl::string_view problem);

/// Anything else that keeps the program from running (a port in use, no
/// connection made): returns 1.
int Fail(absl::string_view program, absl::string_view problem);

}  // namespace twist

#endif  // TWIST_EXAMPLES_USAGE_H_
