#include "examples/usage.h"

#include <stdio.h>
#include <stdlib.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gflags/gflags.h"

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

absl::Status ParseFlags(int* argc, char*** argv) {
  // Each flag is checked the way gflags reads it ("--name=value",
  // "--name value", "--name" and "--noname" for a bool, one dash or two)
  // before gflags parses them all, so that gflags never meets an error.
  for (int i = 1; i < *argc; ++i) {
    absl::string_view arg = (*argv)[i];
    if (arg == "--") break;
    if (arg.size() < 2 || arg[0] != '-') continue;  // not a flag
    arg.remove_prefix(arg[1] == '-' ? 2 : 1);
    const size_t eq = arg.find('=');
    const std::string name(arg.substr(0, eq));
    if (name == "help" || name == "helpshort") {
      // The program's own flags: those defined under examples/.
      gflags::ShowUsageWithFlagsRestrict((*argv)[0], "examples/");
      exit(0);
    }
    gflags::CommandLineFlagInfo info;
    if (!gflags::GetCommandLineFlagInfo(name.c_str(), &info)) {
      if (eq == absl::string_view::npos && absl::StartsWith(name, "no") &&
          gflags::GetCommandLineFlagInfo(name.c_str() + 2, &info) && info.type == "bool") {
        continue;  // --noflag
      }
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    std::string value;
    if (eq != absl::string_view::npos) {
      value = std::string(arg.substr(eq + 1));
    } else if (info.type == "bool") {
      continue;
    } else if (i + 1 < *argc) {
      value = (*argv)[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
    }
    // Sets it as gflags' parse would; empty when the value does not fit.
    if (gflags::SetCommandLineOption(name.c_str(), value.c_str()).empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, "=", value, ": not a valid ", info.type));
    }
  }
  gflags::ParseCommandLineFlags(argc, argv, true);
  return absl::OkStatus();
}

}  // namespace twist
