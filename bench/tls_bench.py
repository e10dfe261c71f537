#!/usr/bin/env python3
"""TLS: twist's TLS echo against plain TCP and against a baseline on OpenSSL.

Makes a throwaway CA and server certificate (EC P-256) with the openssl CLI,
then measures bazel-bin/examples/echo_server on tcp: and ssl: endpoints and
bazel-bin/bench/baseline_tls_echo_server (the same epoll loop as
bench/baseline_echo_server, written directly on OpenSSL, with twist's
TlsContext settings). The client is always bazel-bin/examples/echo_client
(TLS 1.3, a new connection and a full handshake each time: neither side
resumes sessions).

--parts picks what runs (all by default):

  memory    memory per idle held connection: growth of the server's VmRSS
            over --held connections (Python clients that each echo one
            byte), divided by their number; tcp, tls and the baseline.
  rates     tcp against tls on echo_server, unpinned, the median of --rounds
            (each with a fresh server): connections (handshakes) per second
            and bulk echo MB/s.
  compare   twist's ssl: echo_server against the baseline, server pinned to
            core 1 and client to core 0 (taskset), alternating who goes
            first each round: bulk echo MB/s (8 connections, 64 KiB
            messages) and full handshakes per second (--handshakes
            connections, one 16-byte echo each), and the server's own CPU
            time per MB and per handshake (/proc/PID/schedstat), which a
            loaded machine disturbs less than seconds; the ratio twist /
            baseline per round, and the medians.
  callgrind the servers' user-space instructions per handshake and per MB
            echoed, under valgrind's callgrind: two runs of different sizes,
            difference over difference, so start-up and shutdown cancel out.
            Repeatable where seconds are not.

  ./tools/bazel build //examples:echo_server //examples:echo_client \\
      //bench:baseline_tls_echo_server
  python3 bench/tls_bench.py [--rounds=5] [--parts=compare,callgrind]
"""

import argparse
import os
import re
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile

from run import (ROOT, callgrind_instructions, pinned, proc_cpu_ns, raise_fd_limit,
                 rss_per_held_connection, start_listening)

BIN = os.path.join(ROOT, "bazel-bin")
ECHO_SERVER = os.path.join(BIN, "examples", "echo_server")
ECHO_CLIENT = os.path.join(BIN, "examples", "echo_client")
BASELINE = os.path.join(BIN, "bench", "baseline_tls_echo_server")


def make_certs(d):
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run = lambda *a: subprocess.run(["openssl", *a], cwd=d, check=True, capture_output=True)
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=bench CA")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    with open(os.path.join(d, "ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext")


class Servers:
    """The argv of each server measured, given the certificates in d."""

    def __init__(self, d):
        key, cert = os.path.join(d, "server.key"), os.path.join(d, "server.pem")
        self.ca = os.path.join(d, "ca.pem")
        # The handshake runs connect --handshakes clients at once: with the
        # servers' default backlog (511) the kernel's accept queue overflows
        # before the first accept, and each dropped connection waits for a
        # 1 s SYN-ACK retransmission, which then decides the rate (whoever
        # drops more loses). A backlog that holds the burst measures the
        # handshakes; measured() reports any overflow that still happens.
        backlog = "--backlog=%d" % BACKLOG
        self.argv = {
            "tcp": [ECHO_SERVER, "--listen=tcp:0:interface=127.0.0.1", backlog],
            "twist": [ECHO_SERVER, "--listen=ssl:0:interface=127.0.0.1:privateKey=%s:certKey=%s"
                      % (key, cert), backlog],
            "baseline": [BASELINE, "--port=0", "--tls_cert=" + cert, "--tls_key=" + key, backlog],
        }

    def connect(self, name, port):
        if name == "tcp":
            return "--connect=tcp:host=127.0.0.1:port=%d" % port
        return "--connect=tls:host=localhost:port=%d:caCertsFile=%s" % (port, self.ca)


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    return proc.communicate(timeout=300)


def echo_client(connect, args, pin=False):
    out = subprocess.run(pinned(0, [ECHO_CLIENT, connect, "--timeout=120", *args], pin),
                         capture_output=True, text=True, timeout=900)
    m = re.search(r"messages=(\d+) bytes=(\d+) errors=(\d+) seconds=([\d.]+)", out.stdout)
    if out.returncode != 0 or not m or m.group(3) != "0":
        sys.exit("tls_bench: echo_client failed: " + out.stdout + out.stderr)
    return int(m.group(1)), int(m.group(2)), float(m.group(4))


BACKLOG = 4096  # the kernel's default somaxconn, which caps it
BULK = ["--connections=8", "--messages=400", "--size=65536"]


def handshake_args(n):
    return ["--connections=%d" % n, "--messages=1", "--size=16"]


def held_bytes(servers, name, n):
    wrap = None
    if name != "tcp":
        tls_ctx = ssl.create_default_context(cafile=servers.ca)
        wrap = lambda s: tls_ctx.wrap_socket(s, server_hostname="localhost")
    proc, port = start_listening(servers.argv[name], name)
    try:
        return rss_per_held_connection(proc.pid, port, n, wrap)
    finally:
        stop(proc)


def listen_overflows():
    """The kernel's count of connections dropped because an accept queue
    was full (TcpExt ListenOverflows, machine-wide)."""
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            return int(dict(zip(names.split(), values.split()))["ListenOverflows"])
    return 0


def measured(servers, name, args, pin):
    """(messages, bytes, seconds, server CPU seconds) of one echo_client run
    against a fresh server."""
    proc, port = start_listening(pinned(1, servers.argv[name], pin), name)
    try:
        before = proc_cpu_ns(proc.pid)
        dropped = listen_overflows()
        n, nbytes, secs = echo_client(servers.connect(name, port), args, pin)
        cpu = (proc_cpu_ns(proc.pid) - before) / 1e9
        dropped = listen_overflows() - dropped
        if dropped:
            print("tls_bench: %s: %d connections overflowed an accept queue during this "
                  "run (each waited for a 1 s retransmission): its rate is not the server's"
                  % (name, dropped), file=sys.stderr)
    finally:
        stop(proc)
    return n, nbytes, secs, cpu


def callgrind_total(servers, name, args):
    return callgrind_instructions(
        servers.argv[name], lambda port: echo_client(servers.connect(name, port), args), name)


def per_unit(servers, name, small_args, large_args, units):
    """Instructions per unit: (large run - small run) / (units between them)."""
    return (callgrind_total(servers, name, large_args) -
            callgrind_total(servers, name, small_args)) / units


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--held", type=int, default=2000)
    p.add_argument("--handshakes", type=int, default=1000)
    p.add_argument("--parts", default="memory,rates,compare,callgrind")
    p.add_argument("--no_pin", action="store_true", help="do not taskset (one core)")
    a = p.parse_args()
    parts = set(a.parts.split(","))
    for f in (ECHO_SERVER, ECHO_CLIENT, BASELINE):
        if not os.access(f, os.X_OK):
            sys.exit("tls_bench: %s is missing: build it first (see --help)" % f)
    raise_fd_limit(a.held + a.handshakes + 500)
    print("load average at the start: %s" % load_average())
    with tempfile.TemporaryDirectory() as d:
        make_certs(d)
        servers = Servers(d)

        if "memory" in parts:
            print("\n| server | memory per idle held connection |")
            print("|---|---|")
            for name, title in (("tcp", "echo_server tcp:"), ("twist", "echo_server ssl:"),
                                ("baseline", "baseline_tls_echo_server")):
                print("| %s | %.0f B |" % (title, held_bytes(servers, name, a.held)),
                      flush=True)

        if "rates" in parts:
            print("\n| echo_server endpoint | connections (handshakes) per s "
                  "| bulk echo MB/s (8 conns, 64 KiB messages) |")
            print("|---|---|---|")
            for name in ("tcp", "twist"):
                hs, bulk = [], []
                for _ in range(a.rounds):
                    n, _, secs, _ = measured(servers, name, handshake_args(a.handshakes), False)
                    hs.append(n / secs)
                    _, nbytes, secs, _ = measured(servers, name, BULK, False)
                    bulk.append(nbytes / secs / 1e6)
                print("| %s | %.0f | %.0f |" % ("tcp:" if name == "tcp" else "ssl:",
                                                statistics.median(hs),
                                                statistics.median(bulk)), flush=True)

        if "compare" in parts:
            pin = not a.no_pin
            print("\ntwist (echo_server ssl:) against baseline_tls_echo_server, %s, "
                  "%d rounds:" % ("server on core 1, client on core 0" if pin else "unpinned",
                                  a.rounds))
            print("| round | first | bulk MB/s twist / baseline (ratio) "
                  "| handshakes/s twist / baseline (ratio) "
                  "| server CPU ms per MB twist / baseline "
                  "| server CPU us per handshake twist / baseline | load average |")
            print("|---|---|---|---|---|---|---|")
            figures = {k: [] for k in ("mbs", "hs", "cpu_mb", "cpu_hs", "r_mbs", "r_hs",
                                       "r_cpu_mb", "r_cpu_hs")}
            for r in range(a.rounds):
                order = ("twist", "baseline") if r % 2 == 0 else ("baseline", "twist")
                got = {}
                for name in order:
                    _, nbytes, secs, cpu = measured(servers, name, BULK, pin)
                    mb = nbytes / 1e6
                    n, _, hsecs, hcpu = measured(servers, name,
                                                 handshake_args(a.handshakes), pin)
                    got[name] = (mb / secs, n / hsecs, cpu * 1e3 / mb, hcpu * 1e6 / n)
                t, b = got["twist"], got["baseline"]
                for i, k in enumerate(("mbs", "hs", "cpu_mb", "cpu_hs")):
                    figures[k].append((t[i], b[i]))
                    figures["r_" + k].append(t[i] / b[i])
                print("| %d | %s | %.0f / %.0f (%.2f) | %.0f / %.0f (%.2f) | %.2f / %.2f "
                      "| %.0f / %.0f | %s |" % (r + 1, order[0], t[0], b[0], t[0] / b[0],
                                                t[1], b[1], t[1] / b[1], t[2], b[2], t[3],
                                                b[3], load_average()), flush=True)
            med = lambda k, i: statistics.median(x[i] for x in figures[k])
            print("| median | | %.0f / %.0f (%.2f) | %.0f / %.0f (%.2f) | %.2f / %.2f (%.2f) "
                  "| %.0f / %.0f (%.2f) | |" % (
                      med("mbs", 0), med("mbs", 1), statistics.median(figures["r_mbs"]),
                      med("hs", 0), med("hs", 1), statistics.median(figures["r_hs"]),
                      med("cpu_mb", 0), med("cpu_mb", 1), statistics.median(figures["r_cpu_mb"]),
                      med("cpu_hs", 0), med("cpu_hs", 1),
                      statistics.median(figures["r_cpu_hs"])))
            print("(ratios are medians of the per-round ratios; for CPU per unit, "
                  "lower is better and twist / baseline > 1 means twist spends more)")

        if "callgrind" in parts:
            print("\n| server | instructions per handshake | instructions per MB echoed |")
            print("|---|---|---|")
            for name, title in (("twist", "echo_server ssl:"),
                                ("baseline", "baseline_tls_echo_server")):
                hs = per_unit(servers, name, handshake_args(20), handshake_args(120), 100)
                mb = per_unit(servers, name, ["--messages=20", "--size=65536"],
                              ["--messages=120", "--size=65536"], 100 * 65536 / 1e6)
                print("| %s | %.0f | %.0f |" % (title, hs, mb), flush=True)
    print("\nload average at the end: %s" % load_average())


if __name__ == "__main__":
    main()
