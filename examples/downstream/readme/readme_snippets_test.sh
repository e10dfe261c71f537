#!/usr/bin/env bash
# Usage: readme_snippets_test.sh README.md
# Checks the README's marked code blocks against this workspace's files (see
# readme/BUILD.bazel). Runs in the workspace's runfiles, where FILE is at FILE.
set -euo pipefail
readme="$1"
prefix="examples/downstream/"
checked=0
failed=0
while IFS= read -r hit; do
  line="${hit%%:*}"
  marker="${hit#*:}"
  kind="$(sed -E 's/^<!-- (same as|part of) .*/\1/' <<<"$marker")"
  path="$(sed -E 's/^<!-- (same as|part of) ([^ ]+) -->$/\2/' <<<"$marker")"
  file="${path#"$prefix"}"
  # The fenced block that starts on the next line, without its fences.
  block="$(awk -v start=$((line + 1)) '
    NR == start { if ($0 !~ /^```/) exit 3; inside = 1; next }
    inside && /^```$/ { found = 1; exit }
    inside { print }
    END { if (!found) exit 3 }' "$readme")" || {
    echo "README.md:$line: '$marker' is not followed by a fenced code block" >&2
    failed=$((failed + 1)); continue
  }
  if [ ! -f "$file" ]; then
    echo "README.md:$line: $path does not exist (is it in the test's data?)" >&2
    failed=$((failed + 1)); continue
  fi
  content="$(cat "$file")"
  if [ "$kind" = "same as" ] && [ "$block" != "$content" ]; then
    echo "README.md:$line: the block differs from $path:" >&2
    diff <(printf '%s\n' "$block") "$file" >&2 || true
    failed=$((failed + 1))
  elif [ "$kind" = "part of" ] && [[ "$content" != *"$block"* ]]; then
    echo "README.md:$line: the block is not in $path:" >&2
    printf '%s\n' "$block" >&2
    failed=$((failed + 1))
  fi
  checked=$((checked + 1))
done < <(grep -n -E '^<!-- (same as|part of) examples/downstream/[^ ]+ -->$' "$readme")
if [ "$checked" -eq 0 ]; then
  echo "README.md has no <!-- same as/part of examples/downstream/... --> block" >&2
  exit 1
fi
echo "$checked README blocks checked, $failed differ"
[ "$failed" -eq 0 ]
