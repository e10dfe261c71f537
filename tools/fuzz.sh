#!/usr/bin/env bash
# Builds every libFuzzer target in fuzz/ with clang
# (-fsanitize=fuzzer,address,undefined) and runs each for SECONDS (default
# 60), starting from its seed corpus in fuzz/corpus/<target>/.
#
#   tools/fuzz.sh [SECONDS] [TARGET...]     targets: line int32 netstring chat http resp
#
# Exits non-zero if any target finds a crash, a leak or a violated invariant
# (the input is saved as fuzz-out/<target>/crash-*: add it to the corpus and
# name a regression test in fuzz/fuzz_test.cc). New corpus entries go to
# fuzz-out/<target>/corpus, never into the checked-in seeds. Builds with
# clang++ directly against Debian's Abseil (pkg-config), outside Bazel, so
# Bazel's gcc cache is left alone.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
"$here/setup.sh"

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
  echo "tools/fuzz.sh: SECONDS must be a positive integer, got '$seconds'" >&2
  exit 2
fi
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(line int32 netstring chat http resp)

out="${FUZZ_OUT:-$root/fuzz-out}"
cxx="${CXX_FUZZ:-clang++}"
mkdir -p "$out/obj"

absl_libs=(absl_strings absl_str_format absl_status absl_statusor absl_flat_hash_map
           absl_hash absl_raw_hash_set absl_time absl_synchronization)
# shellcheck disable=SC2207
absl_flags=($(pkg-config --cflags --libs "${absl_libs[@]}"))
flags=(-std=c++17 -g -O1 -fno-omit-frame-pointer -I"$root"
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
       -fno-sanitize=vptr)
# Every library source of framework/ and protocols/ (a list written out here
# once went stale when a class moved between files): what a target does not
# use costs link time only.
shopt -s nullglob
sources=()
for src in "$root"/framework/*.cc "$root"/protocols/*.cc fuzz/framing_fuzz.cc fuzz/chat_fuzz.cc fuzz/http_fuzz.cc fuzz/resp_fuzz.cc; do
  sources+=("${src#"$root"/}")
done
shopt -u nullglob

objects=()
for src in "${sources[@]}"; do
  obj="$out/obj/$(echo "$src" | tr / _).o"
  # -fsanitize=fuzzer on the library objects adds coverage only; main comes
  # from libFuzzer at link time.
  if [ ! -f "$obj" ] || [ "$root/$src" -nt "$obj" ] || \
     [ -n "$(find "$root/framework" "$root/protocols" "$root/fuzz" "$root/tests" -name '*.h' -newer "$obj" -print -quit)" ]; then
    echo "tools/fuzz.sh: compiling $src" >&2
    # The coroutine library (//framework:coro) is C++20, as in Bazel; the
    # rest stays C++17.
    std=()
    if grep -qE '#include (<coroutine>|"framework/(coro|stream)\.h")' "$root/$src"; then
      std=(-std=c++20)
    fi
    # Written aside, then renamed: two runs at once never link a half object.
    "$cxx" "${flags[@]}" "${std[@]}" -c "$root/$src" -o "$obj.$$" $(pkg-config --cflags "${absl_libs[@]}")
    mv -f "$obj.$$" "$obj"
  fi
  objects+=("$obj")
done

status=0
for t in "${targets[@]}"; do
  if [ ! -f "$root/fuzz/${t}_fuzzer.cc" ]; then
    echo "tools/fuzz.sh: no target '$t' (expected fuzz/${t}_fuzzer.cc)" >&2
    exit 2
  fi
  bin="$out/${t}_fuzzer"
  echo "tools/fuzz.sh: linking $bin" >&2
  # OpenSSL: protocols/tls*.cc are among the objects (linked, unused).
  "$cxx" "${flags[@]}" "$root/fuzz/${t}_fuzzer.cc" "${objects[@]}" "${absl_flags[@]}" -lssl -lcrypto -o "$bin.$$"
  mv -f "$bin.$$" "$bin"
  mkdir -p "$out/$t/corpus"
  echo "tools/fuzz.sh: running $t for ${seconds}s" >&2
  if ! (cd "$out/$t" && ASAN_OPTIONS=detect_leaks=1 "$bin" -max_total_time="$seconds" \
          -print_final_stats=1 -artifact_prefix="$out/$t/" corpus "$root/fuzz/corpus/$t"); then
    echo "tools/fuzz.sh: $t FOUND A PROBLEM; see the log above and $out/$t/" >&2
    status=1
  fi
done
exit $status
