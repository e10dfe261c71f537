#!/usr/bin/env bash
# CI's check that the benchmarks still work: bench/run.py --smoke runs every
# scenario briefly against twist's echo_server and the baseline, and
# bench/models.py --smoke every server model (twist on each poller, a thread
# and a process per connection) at 10 and 20 connections; both fail on any
# verification error or lost connection, models.py also on a wrong count of
# threads or processes under load or a child left behind. Neither judges
# speed.
set -euo pipefail
root="${TEST_SRCDIR:?}/${TEST_WORKSPACE:-twist}"
# Debian's python3: the runner needs nothing beyond the standard library.
python=/usr/bin/python3
[ -x "$python" ] || python=python3
"$python" "$root/bench/run.py" --smoke --bin_dir="$root"
exec "$python" "$root/bench/models.py" --smoke --bin_dir="$root"
