#!/usr/bin/env bash
# CI must run exactly what the README tells users to run: the README's test
# command (the "./tools/bazel test //..." line of "Two commands") must be
# .ci/run's command, character for character.
set -euo pipefail
readme="$TEST_SRCDIR/$TEST_WORKSPACE/README.md"
ci="$TEST_SRCDIR/$TEST_WORKSPACE/.ci/run"
want=$(grep -m1 '^\./tools/bazel test ' "$readme") || {
  echo "README.md has no ./tools/bazel test line" >&2; exit 1; }
got=$(grep -v '^\s*#' "$ci" | tail -n 1)
if [ "$got" != "$want" ]; then
  echo "CI's command differs from the README's:" >&2
  echo "  README.md: $want" >&2
  echo "  .ci/run:   $got" >&2
  exit 1
fi
echo "CI runs the README's test command: $got"
