#include "examples/usage.h"

#include <stdio.h>

namespace twist {
namespace {

int Say(absl::string_view program, absl::string_view problem, int status) {
  fprintf(stderr, "%.*s: %.*s\n", static_cast<int>(program.size()), program.data(),
          static_cast<int>(problem.size()), problem.data());
  return status;
}

}  // namespace

int BadUsage(absl::string_view program, absl::string_view problem) {
  return Say(program, problem, 2);
}

int Fail(absl::string_view program, absl::string_view problem) {
  return Say(program, problem, 1);
}

}  // namespace twist
