#!/usr/bin/env python3
"""Echo round-trip latency with N idle connections open, per reactor backend.

Shows the seed texts' claim with numbers: select and poll hand the kernel the
whole descriptor set on every wait, so one active connection pays for every
idle one; epoll's cost follows the active connections only.

    python3 bench/pollers.py                 # the full table, 5 rounds
    python3 bench/pollers.py --rounds 1 --idle 0,100 --messages 2000   # quick

The echo server runs pinned to CPU 1 and the client to CPU 0 (taskset). Each
round runs every (reactor, N) pair once, in an order rotated per round, and
the table gives the median over rounds of each run's p50 and p99 in
microseconds.
"""

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (pinned, start_listening, raise_fd_limit)
from run import ROOT  # noqa: E402

REACTORS = ["epoll", "poll", "select"]


def build():
    out = subprocess.run(
        ["./tools/bazel", "build", "-c", "opt", "//examples:echo_server",
         "//bench:idle_latency"],
        cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("pollers.py: the build failed:\n" + out.stderr)
    # Copies: bazel-bin follows the last build's configuration, and a build
    # during the run must not swap the binaries under it.
    tmp = tempfile.mkdtemp(prefix="twist-pollers-")
    bins = []
    for rel in ("examples/echo_server", "bench/idle_latency"):
        dst = os.path.join(tmp, os.path.basename(rel))
        shutil.copy(os.path.join(ROOT, "bazel-bin", rel), dst)
        bins.append(dst)
    return bins


def run_once(server_bin, client_bin, reactor, idle, messages, size, pin):
    server, port = run.start_listening(
        run.pinned(1, [server_bin, "--port=0", "--reactor=" + reactor,
                       "--backlog=8192"], pin), "echo_server",
        stderr=subprocess.PIPE)
    client_cmd = run.pinned(0, [client_bin, "--idle=%d" % idle,
                                "--messages=%d" % messages, "--size=%d" % size,
                                "--port=%d" % port], pin)
    try:
        out = subprocess.run(client_cmd, capture_output=True, text=True,
                             timeout=600)
        if out.returncode != 0:
            return None, out.stderr.strip()
        fields = dict(kv.split("=") for kv in out.stdout.split())
        if int(fields["established"]) != idle:
            return None, "only %s of %d idle connections accepted" % (
                fields["established"], idle)
        return (float(fields["p50_us"]), float(fields["p99_us"])), None
    finally:
        server.terminate()
        server.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--idle", default="0,100,1000,5000")
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--no-pin", action="store_true",
                    help="do not pin with taskset (single-CPU machines)")
    args = ap.parse_args()
    idles = [int(n) for n in args.idle.split(",")]
    run.raise_fd_limit(max(idles) + 100)
    server_bin, client_bin = build()

    pairs = [(r, n) for n in idles for r in REACTORS]
    results = {p: [] for p in pairs}
    errors = {}
    for rnd in range(args.rounds):
        order = pairs[rnd % len(pairs):] + pairs[:rnd % len(pairs)]
        for reactor, idle in order:
            res, err = run_once(server_bin, client_bin, reactor, idle,
                                args.messages, args.size, not args.no_pin)
            if res is None:
                errors[(reactor, idle)] = err
            else:
                results[(reactor, idle)].append(res)
            print("round %d %-6s idle=%-5d %s" % (
                rnd + 1, reactor, idle, res if res else err), file=sys.stderr)

    def cell(reactor, idle, k):
        runs = results[(reactor, idle)]
        if not runs:
            e = errors.get((reactor, idle), "")
            return "n/a (FD_SETSIZE)" if "differs or the server closed" in e \
                or "accepted" in e else "failed"
        return "%.1f" % statistics.median(r[k] for r in runs)

    print("Echo round trip of one active connection (%d-byte messages, %d per "
          "run), median of %d rounds, in microseconds; %s; %s, %d CPUs; %s." % (
              args.size, args.messages, args.rounds,
              "server on CPU 1, client on CPU 0" if not args.no_pin else "unpinned",
              platform.platform(), os.cpu_count(), time.strftime("%Y-%m-%d")))
    print()
    print("| idle connections | " + " | ".join(
        "%s p50 | %s p99" % (r, r) for r in REACTORS) + " |")
    print("|---:|" + "---:|" * (2 * len(REACTORS)))
    for idle in idles:
        print("| %d | " % idle + " | ".join(
            "%s | %s" % (cell(r, idle, 0), cell(r, idle, 1))
            for r in REACTORS) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
