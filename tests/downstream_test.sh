#!/usr/bin/env bash
# examples/downstream is a Bazel workspace of its own that depends on twist
# the way a user's workspace does (README.md, "Using twist from your own
# workspace"). This test builds and tests it, and builds every library of
# twist as the external repository @twist, so that `./tools/bazel test //...`
# (the README's test command, and all CI runs) covers twist as others use it.
#
# It runs a second Bazel on that workspace, from the source tree this test's
# data links to (the test is tagged "local": no sandbox), with the Bazel
# cache of the user who runs the tests, as the README's own commands would.
set -euo pipefail

runfiles="${RUNFILES_DIR:-$0.runfiles}"
marker="$runfiles/twist/README.md"
if [ ! -e "$marker" ]; then
  echo "downstream_test: cannot find README.md in the runfiles ($marker)" >&2
  exit 1
fi
root="$(dirname "$(readlink -f "$marker")")"
if [ ! -f "$root/examples/downstream/WORKSPACE" ] || [ ! -x "$root/tools/bazel" ]; then
  echo "downstream_test: $root is not a twist source tree" >&2
  exit 1
fi

# Bazel runs tests with a reduced environment: give the inner Bazel the
# user's home (its cache lives there) and drop the outer test's variables.
home="$(getent passwd "$(id -u)" | cut -d: -f6 || true)"
export HOME="${home:-${HOME:-/tmp}}"
unset TEST_TMPDIR TEST_SRCDIR TEST_WORKSPACE RUNFILES_DIR JAVA_RUNFILES PYTHON_RUNFILES

cd "$root/examples/downstream"
# --symlink_prefix=/ : no bazel-* links written into the source tree.
"$root/tools/bazel" test --symlink_prefix=/ \
  //... @twist//framework/... @twist//protocols/...
