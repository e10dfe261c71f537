#ifndef TWIST_EXAMPLES_USAGE_H_
#define TWIST_EXAMPLES_USAGE_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace twist {

/// How every example program stops on a problem: one line "PROGRAM:
/// problem" on stderr, and the exit status to return from main.

/// Bad usage (a bad flag or flag value): returns 2.
int BadUsage(absl::string_view program, absl::string_view problem);

/// Anything else that keeps the program from running (a port in use, no
/// connection made): returns 1.
int Fail(absl::string_view program, absl::string_view problem);

/// gflags::ParseCommandLineFlags with the rules above: an unknown flag, or
/// a value the flag cannot take ("--port=abc"), is bad usage, returned
/// here for the caller's BadUsage (gflags itself would exit 1 with its own
/// message); --help and --helpshort print the usage message and the
/// program's own flags (not gflags' internal ones) and exit 0.
/// Arguments that are not flags stay in argv.
absl::Status ParseFlags(int* argc, char*** argv);

}  // namespace twist

#endif  // TWIST_EXAMPLES_USAGE_H_
