#!/usr/bin/env bash
# CI's check that the benchmarks still work: bench/run.py --smoke runs every
# scenario briefly against twist's echo_server and the baseline and fails on
# any verification error or lost connection. It never judges speed.
set -euo pipefail
root="${TEST_SRCDIR:?}/${TEST_WORKSPACE:-twist}"
# Debian's python3: the runner needs nothing beyond the standard library.
python=/usr/bin/python3
[ -x "$python" ] || python=python3
exec "$python" "$root/bench/run.py" --smoke --bin_dir="$root"
