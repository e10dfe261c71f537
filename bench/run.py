#!/usr/bin/env python3
"""Runs twist's echo benchmarks against a plain epoll baseline, side by side.

    python3 bench/run.py              # build (-c opt), run, print the table

Builds //examples:echo_server, //bench:baseline_echo_server and
//bench:loadgen with `./tools/bazel build -c opt`, then for every scenario
and every round starts a fresh server pinned to one core (taskset -c 1) and
the load generator on the other (taskset -c 0). twist and the baseline
alternate within each round (and swap who goes first each round), so both
see the same machine. Each figure is the median over the rounds; the ratio
is twist / baseline from the same run. See bench/README.md for what each
figure means.

--smoke is CI's check that the benchmarks still work: tiny loads, one round,
no pinning, and a non-zero exit on any verification error or lost
connection. It never judges speed.
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The servers a run can compare: --twist names the one measured, --baseline
# the one it is measured against (by default twist's echo server against the
# hand-written epoll loop; --twist=coro --baseline=echo compares the
# coroutine echo server with the callback one).
SERVERS = {
    "echo": "examples/echo_server",
    "coro": "examples/coro_echo_server",
    "epoll": "bench/baseline_echo_server",
}
ROLES = {"twist": "echo", "baseline": "epoll"}  # set from the flags
LOADGEN = "bench/loadgen"
# The bench scripts import this module for its helpers: fail() names the
# script that was run.
PROGRAM = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "run.py"


class Scenario:
    def __init__(self, key, title, mode, connections, size=64, depth=1,
                 chunk=65536, throughput_target=0.95, p99_target=1.1):
        self.key = key
        self.title = title
        self.mode = mode
        self.connections = connections
        self.size = size
        self.depth = depth
        self.chunk = chunk
        self.throughput_target = throughput_target
        self.p99_target = p99_target

    def loadgen_args(self):
        return [f"--mode={self.mode}", f"--connections={self.connections}",
                f"--size={self.size}", f"--depth={self.depth}",
                f"--chunk={self.chunk}"]


def scenarios(smoke):
    """The fixed matrix of the issue; --smoke shrinks the connection counts."""
    k = (lambda full, small: small) if smoke else (lambda full, small: full)
    return [
        Scenario("latency", "latency: 1 conn, 64 B", "pingpong", 1),
        Scenario("c100", "100 conns, 64 B", "pingpong", k(100, 10)),
        Scenario("c1000", "1000 conns, 64 B", "pingpong", k(1000, 20)),
        Scenario("pipelined", "pipelined: 50 conns, depth 16, 64 B",
                 "pingpong", k(50, 5), depth=16),
        Scenario("bulk", "bulk: 10 conns, 64 KiB chunks", "bulk", 10,
                 throughput_target=0.9),
        Scenario("pp16k_1", "ping-pong 16 KiB, 1 conn", "pingpong", 1,
                 size=16384),
        Scenario("pp16k_10", "ping-pong 16 KiB, 10 conns", "pingpong", 10,
                 size=16384),
        Scenario("pp16k_100", "ping-pong 16 KiB, 100 conns", "pingpong",
                 k(100, 10), size=16384),
        Scenario("pp16k_1000", "ping-pong 16 KiB, 1000 conns", "pingpong",
                 k(1000, 20), size=16384),
        Scenario("hold", f"{k(10000, 200)} held conns", "hold",
                 k(10000, 200)),
    ]


def fail(message):
    print(f"{PROGRAM}: {message}", file=sys.stderr)
    sys.exit(1)


def build(targets=("//examples:echo_server", "//examples:coro_echo_server",
                   "//bench:baseline_echo_server", "//bench:loadgen")):
    targets = list(targets)
    bazel = os.path.join(ROOT, "tools", "bazel")
    r = subprocess.run([bazel, "build", "-c", "opt"] + targets, cwd=ROOT)
    if r.returncode != 0:
        fail("build failed")
    out = subprocess.run([bazel, "info", "-c", "opt", "bazel-bin"], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True, check=True)
    return out.stdout.strip()


def raise_fd_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if soft < needed:
        print(f"{PROGRAM}: warning: open-files limit {soft} < {needed}; "
              "connections beyond it will fail", file=sys.stderr)


def pinned(core, argv, pin):
    return (["taskset", "-c", str(core)] + argv) if pin else argv


def proc_cpu_ns(pid):
    """Nanoseconds the process has run on a CPU (/proc/PID/schedstat)."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def proc_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def rss_per_held_connection(pid, port, n, wrap=None, warm=100):
    """Growth of `pid`'s VmRSS in bytes per connection over n connections
    to the echo server on 127.0.0.1:port (each wrapped by wrap(socket), e.g.
    in TLS, and echoing one byte, so that the server has set it up), after
    `warm` of them have grown the server's tables once."""
    def connect():
        s = socket.create_connection(("127.0.0.1", port))
        if wrap is not None:
            s = wrap(s)
        s.sendall(b"x")
        if s.recv(1) != b"x":
            fail("a connection did not echo")
        return s

    warmed = [connect() for _ in range(warm)]
    before = proc_rss_kib(pid)
    held = [connect() for _ in range(n)]
    after = proc_rss_kib(pid)
    for s in held + warmed:
        s.close()
    return (after - before) * 1024 / n


def read_line(stream, timeout, what):
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        fail(f"{what}: no output within {timeout} s")
    line = stream.readline()
    if not line:
        fail(f"{what}: exited before printing its first line")
    return line.strip()


def parse(line):
    out = {}
    for item in line.split():
        key, _, value = item.partition("=")
        try:
            out[key] = float(value)
        except ValueError:
            out[key] = value
    return out


LISTENING = re.compile(r"listening on (.*):(\d+)$")


def start_listening(argv, what=None, timeout=20, **popen):
    """Starts argv, a server that prints "listening on HOST:PORT" first
    (twist's programs and the baselines do, given --port=0); returns the
    process and the port. Fails, naming `what` (default: the program), if
    it says anything else or nothing within `timeout` seconds. popen: more
    subprocess.Popen arguments (stderr=...)."""
    what = what or os.path.basename(argv[0])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, **popen)
    try:
        line = read_line(proc.stdout, timeout, what)
        m = LISTENING.match(line)
        if not m:
            fail(f"{what}: unexpected first line {line!r}")
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc, int(m.group(2))


def free_port():
    """A loopback port free now, for a server that cannot take --port=0
    (nginx) or must be told its port before it starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect_when_listening(port, proc=None, timeout=20):
    """A connection to 127.0.0.1:port once a server started on that port
    accepts there; None if `proc` exits first or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=1)
        except OSError:
            if (proc is not None and proc.poll() is not None) or \
                    time.monotonic() > deadline:
                return None
            time.sleep(0.05)


def wait_listening(port, proc=None, what="the server", timeout=20):
    """Returns once something listens on 127.0.0.1:port; fails if `proc`
    exits first or `timeout` seconds pass."""
    s = connect_when_listening(port, proc, timeout)
    if s is None:
        if proc is not None and proc.poll() is not None:
            fail(f"{what} exited with status {proc.returncode}")
        fail(f"{what}: not listening on port {port} within {timeout} s")
    s.close()


def callgrind(out_file):
    """The prefix that runs a program under valgrind's callgrind, its
    profile written to out_file."""
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}"]


def callgrind_total(stderr):
    """The instructions callgrind counted, from its stderr."""
    m = re.search(r"Collected : (\d+)", stderr)
    if not m:
        fail(f"no callgrind total in: {stderr[-500:]}")
    return int(m.group(1))


def callgrind_instructions(argv, drive, what=None):
    """User-space instructions the server argv (which prints "listening on
    HOST:PORT" first) executes under callgrind from its start to SIGTERM,
    with drive(port) run against it in between."""
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_listening(
            callgrind(os.path.join(tmp, "callgrind.out")) + list(argv),
            what or os.path.basename(argv[0]), timeout=120,
            stderr=subprocess.PIPE)
        try:
            drive(port)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=300)
        return callgrind_total(err)


def terminate(proc, timeout=20):
    """SIGTERM, and SIGKILL if proc has not exited within timeout seconds."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Server:
    """A fresh server on core 1 that printed "listening on 127.0.0.1:PORT".
    binary (a path under bin_dir) and flags default to the server the role
    `name` names (ROLES) alone;
    stderr, if given, is where the server's stderr goes; cores, a taskset
    list, replaces core 1 (for a server with several threads)."""

    def __init__(self, name, bin_dir, pin, binary=None, flags=(),
                 stderr=None, cores="1"):
        self.name = name
        argv = pinned(cores, [os.path.join(
            bin_dir, binary or SERVERS[ROLES.get(name, name)]), "--port=0"]
            + list(flags), pin)
        self.proc, self.port = start_listening(argv, name, stderr=stderr)

    def stop(self):
        terminate(self.proc)
        if self.proc.returncode not in (0, -signal.SIGTERM):
            fail(f"{self.name}: exited with status {self.proc.returncode}")


def run_once(scenario, server_name, args, bin_dir):
    """One measurement on a fresh server; returns the loadgen's figures."""
    server = Server(server_name, bin_dir, args.pin)
    loadgen = pinned(0, [os.path.join(bin_dir, LOADGEN),
                         f"--port={server.port}"] + scenario.loadgen_args(),
                     args.pin)
    try:
        if scenario.mode == "hold":
            rss_before = proc_rss_kib(server.proc.pid)
            gen = subprocess.Popen(loadgen, stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True)
            line = read_line(gen.stdout, 120, "loadgen")
            result = parse(line)
            time.sleep(0.1)  # let the server finish its last turn
            rss_after = proc_rss_kib(server.proc.pid)
            gen.communicate(timeout=60)  # closes stdin: the loadgen lets go
            if server.proc.poll() is not None:
                fail(f"{server_name}: died during {scenario.key}")
            held = max(1.0, result.get("established", 0))
            result["rss_before_kib"] = rss_before
            result["rss_after_kib"] = rss_after
            result["rss_per_conn_b"] = (rss_after - rss_before) * 1024 / held
            result["returncode"] = gen.returncode
        else:
            cpu_before = proc_cpu_ns(server.proc.pid)
            gen = subprocess.run(
                loadgen + [f"--duration={args.duration}",
                           f"--warmup={args.warmup}"],
                stdout=subprocess.PIPE, text=True, timeout=300)
            cpu_ns = proc_cpu_ns(server.proc.pid) - cpu_before
            if server.proc.poll() is not None:
                fail(f"{server_name}: died during {scenario.key}")
            lines = gen.stdout.strip().splitlines()
            if not lines:
                fail(f"loadgen printed nothing for {scenario.key} "
                     f"against {server_name}")
            result = parse(lines[-1])
            # The server's CPU time over the whole load (warm-up and drain
            # included) per message or per MB echoed in that time: what the
            # server itself spends, whichever side was the bottleneck.
            result["cpu_ns_per_msg"] = cpu_ns / max(
                1, result.get("total_messages", 0))
            result["cpu_us_per_mb"] = cpu_ns / 1e3 / max(
                1e-9, result.get("total_bytes", 0) / 1e6)
            # ~100% means the server's core was the limit.
            result["server_cpu_pct"] = 100 * cpu_ns / 1e9 / max(
                1e-9, args.duration + args.warmup)
            result["returncode"] = gen.returncode
    finally:
        server.stop()
    return result


def median(results, key):
    return statistics.median(r.get(key, 0) for r in results)


def paired_ratios(twist, baseline, key):
    """twist/baseline within each round: the two ran back to back, so a busy
    moment on a shared machine hits both."""
    return [ratio(t.get(key, 0), b.get(key, 0))
            for t, b in zip(twist, baseline)]


def ratio(a, b):
    return a / b if b else float("nan")


def fmt(value, digits=0):
    if value != value:
        return "n/a"
    if value >= 1e6 and digits == 0:
        return f"{value / 1e6:.2f} M"
    return f"{value:,.{digits}f}"


def table(results, scens, rounds):
    """Markdown: one row per figure, medians of the rounds, twist/baseline."""
    rows = []
    verdicts = []

    def row(title, key, digits, target=None, higher_is_better=True):
        tw = results[(scen.key, "twist")]
        bl = results[(scen.key, "baseline")]
        t = median(tw, key)
        b = median(bl, key)
        ratios = paired_ratios(tw, bl, key)
        r = statistics.median(ratios)
        spread = f"{min(ratios):.2f}–{max(ratios):.2f}"
        verdict = ""
        if target is not None:
            ok = r >= target if higher_is_better else r <= target
            verdict = ("ok" if ok else "**miss**")
            verdicts.append(ok)
            goal = f"{'≥' if higher_is_better else '≤'} {target:g}×"
        else:
            goal = ""
        rows.append(f"| {scen.title} | {title} | {fmt(t, digits)} | "
                    f"{fmt(b, digits)} | {r:.3f} | {spread} | "
                    f"{goal} {verdict} |")

    for scen in scens:
        if scen.mode == "hold":
            t = median(results[(scen.key, "twist")], "rss_per_conn_b")
            b = median(results[(scen.key, "baseline")], "rss_per_conn_b")
            te = median(results[(scen.key, "twist")], "established")
            be = median(results[(scen.key, "baseline")], "established")
            rows.append(f"| {scen.title} | established | {te:.0f} | {be:.0f} "
                        f"| {ratio(te, be):.3f} | | = {scen.connections} "
                        f"{'ok' if te == scen.connections else '**miss**'} |")
            verdicts.append(te == scen.connections)
            ok = t <= 2048
            verdicts.append(ok)
            rows.append(f"| {scen.title} | server RSS per conn (B) | {t:.0f} "
                        f"| {b:.0f} | {ratio(t, b):.3f} | | twist ≤ 2048 B "
                        f"{'ok' if ok else '**miss**'} |")
        elif scen.mode == "bulk":
            row("MB/s echoed", "mb_per_s", 1, scen.throughput_target)
            row("server CPU µs per MB", "cpu_us_per_mb", 0)
            row("server CPU %", "server_cpu_pct", 0)
        else:
            if scen.size >= 16384:
                row("MB/s echoed", "mb_per_s", 1, scen.throughput_target)
            else:
                row("messages/s", "msgs_per_s", 0, scen.throughput_target)
            if scen.key == "latency":
                row("p50 µs", "p50_us", 1)
            row("p99 µs", "p99_us", 1, scen.p99_target, higher_is_better=False)
            if scen.key == "latency":
                row("p99.9 µs", "p999_us", 1)
            if scen.size >= 16384:
                row("server CPU µs per MB", "cpu_us_per_mb", 0)
            else:
                row("server CPU ns per msg", "cpu_ns_per_msg", 0)
            row("server CPU %", "server_cpu_pct", 0)
    head = [f"| scenario | figure | twist ({SERVERS[ROLES['twist']]}) "
            f"| baseline ({SERVERS[ROLES['baseline']]}) | twist/baseline "
            "| per-round ratios | target |",
            "|---|---|---:|---:|---:|---:|---|"]
    return "\n".join(head + rows), verdicts


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{model}, {os.cpu_count()} CPUs, Linux {platform.release()}, "
            f"load average at start {os.getloadavg()[0]:.2f}")


def add_run_flags(p, rounds):
    """The flags every runner here has: rounds, duration, warm-up, bin_dir,
    no_pin (bench/models.py uses them too)."""
    p.add_argument("--rounds", type=int, default=rounds,
                   help="measurements per scenario and server; medians are "
                        f"reported (default {rounds})")
    p.add_argument("--duration", type=float, default=1.5,
                   help="seconds measured per run (default 1.5)")
    p.add_argument("--warmup", type=float, default=0.3,
                   help="seconds of load before measuring (default 0.3)")
    p.add_argument("--bin_dir", default="",
                   help="where the built binaries are (bazel-bin layout); "
                        "skips the build")
    p.add_argument("--no_pin", dest="pin", action="store_false",
                   help="do not pin the server and the load generator to "
                        "cores 1 and 0 with taskset")


def check_pinning(args, program):
    """Turns pinning off, saying why, where it cannot work."""
    if args.pin and (os.cpu_count() or 1) < 2:
        print(f"{program}: fewer than 2 CPUs: not pinning", file=sys.stderr)
        args.pin = False
    if args.pin and shutil.which("taskset") is None:
        print(f"{program}: no taskset (util-linux): not pinning",
              file=sys.stderr)
        args.pin = False


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_flags(p, rounds=7)
    p.add_argument("--only", default="",
                   help="comma-separated scenario keys to run (default all: "
                        + ",".join(s.key for s in scenarios(False)) + ")")
    p.add_argument("--json", default="",
                   help="also write every round's raw figures here")
    p.add_argument("--twist", default="echo", choices=["echo", "coro"],
                   help="the server measured: examples/echo_server (echo, "
                        "default) or examples/coro_echo_server (coro)")
    p.add_argument("--baseline", default="epoll", choices=["epoll", "echo"],
                   help="what it is measured against: the hand-written epoll "
                        "loop (epoll, default) or twist's echo_server (echo)")
    p.add_argument("--smoke", action="store_true",
                   help="CI: tiny loads, one round, no pinning; fail on any "
                        "verification error, never on speed")
    args = p.parse_args()
    if args.twist == args.baseline:
        fail("--twist and --baseline name the same server")
    ROLES["twist"] = args.twist
    ROLES["baseline"] = args.baseline
    if args.smoke:
        args.rounds = 1
        args.duration = min(args.duration, 0.1)
        args.warmup = min(args.warmup, 0.02)
        args.pin = False
    check_pinning(args, "run.py")

    scens = scenarios(args.smoke)
    if args.only:
        keys = set(args.only.split(","))
        unknown = keys - {s.key for s in scens}
        if unknown:
            fail(f"--only: unknown scenario(s) {', '.join(sorted(unknown))}")
        scens = [s for s in scens if s.key in keys]

    bin_dir = args.bin_dir or build()
    raise_fd_limit(max(s.connections for s in scens) + 100)
    started = datetime.datetime.now(datetime.timezone.utc)
    description = machine()

    results = {}
    errors = []
    for scen in scens:
        for rnd in range(args.rounds):
            order = ["twist", "baseline"] if rnd % 2 == 0 else \
                ["baseline", "twist"]
            for name in order:
                r = run_once(scen, name, args, bin_dir)
                r["round"] = rnd
                results.setdefault((scen.key, name), []).append(r)
                print(f"[{scen.key} round {rnd + 1}/{args.rounds} {name}] "
                      + " ".join(f"{k}={v:g}" if isinstance(v, float) else
                                 f"{k}={v}" for k, v in r.items()
                                 if k in ("msgs_per_s", "mb_per_s", "p99_us",
                                          "established", "rss_per_conn_b",
                                          "server_cpu_pct", "cpu_ns_per_msg",
                                          "cpu_us_per_mb", "errors")),
                      file=sys.stderr, flush=True)
                if r.get("errors", 0) or r.get("returncode", 0):
                    errors.append(f"{scen.key} against {name}: "
                                  f"errors={r.get('errors', 0):g} exit "
                                  f"status {r.get('returncode')}")

    md, verdicts = table(results, scens, args.rounds)
    print(f"\nResults {started:%Y-%m-%d %H:%M} UTC, {description}; "
          f"median of {args.rounds} round(s) of {args.duration:g} s"
          f"{', server on core 1, loadgen on core 0' if args.pin else ''}.\n")
    print(md)
    if args.smoke:
        print("\n(smoke run: tiny loads, unpinned; the figures mean nothing, "
              "only the absence of errors does)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"date": started.isoformat(), "machine": description,
                       "results": {f"{k}/{n}": v
                                   for (k, n), v in results.items()}},
                      f, indent=1)
    if errors:
        for e in errors:
            print(f"run.py: verification failed: {e}", file=sys.stderr)
        return 1
    if not args.smoke:
        missed = verdicts.count(False)
        print(f"\n{len(verdicts) - missed} of {len(verdicts)} targets met.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
