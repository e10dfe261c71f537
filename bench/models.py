#!/usr/bin/env python3
"""The seed texts' server models, measured side by side with twist.

    python3 bench/models.py            # build (-c opt), run, table and PNGs

Models: twist's examples/echo_server on --reactor=select, poll and epoll;
bench/thread_per_conn_echo_server (a thread per connection, blocking I/O: the
seeds' ThreadingTCPServer); bench/process_per_conn_echo_server (a process per
connection: ForkingTCPServer); twist with --threads=N, once echo_server
has that flag (until then its rows say so); and twist with --workers=N
(worker processes sharing the parent's listening socket). For 100, 1000 and 10000
connections, each echoing one 64-byte message at a time (bench/loadgen,
every byte checked), every round starts a fresh server pinned to core 1 and
the load generator on core 0, as bench/run.py does (its helpers are used
here). While the load runs the server is sampled from /proc: memory (VmRSS,
and Pss from smaps_rollup, summed over the server and all its children),
its threads and processes, and its CPU time (schedstat of every thread of
every process) over most of the measured window. Each figure is the median over the rounds.

A model that cannot run at a size says why instead of a figure: a process
or thread per connection needs that many tasks (pid_max, threads-max), and
select cannot watch descriptor 1024 or above (FD_SETSIZE).

Writes bench/models.json (every round's figures) and, with Debian's
python3-matplotlib, bench/models_throughput.png, models_p99.png,
models_cpu.png, models_rss.png and the idle-connections plot of bench/pollers.md
(bench/pollers_idle_latency.png). --replot redraws them from the JSON
without measuring. --smoke is CI's check: tiny loads, one round, no pinning,
no files written; it fails on any verification error or a lost connection,
a wrong count of threads or processes, or a child left behind, never on
speed.
"""

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (bench/run.py: build, servers, pinning, parsing)

BENCH = os.path.join(run.ROOT, "bench")
JSON_PATH = os.path.join(BENCH, "models.json")
POLLERS_MD = os.path.join(BENCH, "pollers.md")
TWIST = "examples/echo_server"


class Model:
    def __init__(self, key, title, binary, flags=(), per_conn=None,
                 needs_flag=None, threads=1, workers=0):
        self.key = key
        self.title = title
        self.binary = binary
        self.flags = list(flags)
        self.per_conn = per_conn  # "thread" or "process": a task per conn
        self.needs_flag = needs_flag  # a flag the binary must know
        self.threads = threads  # reactor threads: the cores it is given
        self.workers = workers  # --workers=N: N worker processes + parent

    def cores(self, share="rest"):
        """The server's cores. "rest": 1..threads, leaving core 0 to the
        loadgen; on a machine with fewer, all but core 0 (on 2 cores
        --threads=2 shares core 1: what it costs, not how it scales).
        "all": every core, the loadgen's included, for every model alike
        (a server as it runs in production; on 2 cores --threads=2 then
        gets the time the loadgen leaves on core 0)."""
        ncpu = os.cpu_count() or 2
        if share == "all":
            return f"0-{ncpu - 1}"
        last = max(1, min(self.threads, ncpu - 1))
        return "1" if last == 1 else f"1-{last}"


def models(twist_threads, twist_workers=()):
    out = [Model(f"twist_{r}", f"twist, {r}", TWIST, [f"--reactor={r}"])
           for r in ("select", "poll", "epoll")]
    # The hook for issue 13's reactor pool: rows for --threads=N that are
    # measured as soon as echo_server knows the flag, "not yet" until then.
    # --twist_threads=1,2 gives the 1-against-2 comparison (server
    # CPU per message, throughput); on a larger machine 1,2,4,8 shows the
    # scaling, each server on cores 1..N.
    for n in twist_threads:
        out.append(Model(f"twist_epoll_t{n}", f"twist, epoll, --threads={n}",
                         TWIST, ["--reactor=epoll", f"--threads={n}"],
                         needs_flag="threads", threads=n))
    # Issue 13's worker processes: --workers=N forks N processes that share
    # the parent's listening socket, each with its own reactor; given cores
    # 1..N like --threads=N.
    for n in twist_workers:
        out.append(Model(f"twist_epoll_w{n}", f"twist, epoll, --workers={n}",
                         TWIST, ["--reactor=epoll", f"--workers={n}"],
                         needs_flag="workers", threads=n, workers=n))
    out.append(Model("thread", "thread per connection",
                     "bench/thread_per_conn_echo_server", per_conn="thread"))
    out.append(Model("process", "process per connection",
                     "bench/process_per_conn_echo_server",
                     per_conn="process"))
    return out


# ---------------------------------------------------------------- /proc

def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:  # the task has just ended
        return ""


def children(pid):
    """The server's child processes (all of them are the server's)."""
    text = read(f"/proc/{pid}/task/{pid}/children")
    if text or os.path.exists(f"/proc/{pid}/task/{pid}/children"):
        return [int(c) for c in text.split()]
    out = []  # kernels without CONFIG_PROC_CHILDREN: scan /proc
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = read(f"/proc/{entry}/stat")
            if stat and int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def status_field(text, name):
    m = re.search(rf"^{name}:\s+(\d+)", text, re.M)
    return int(m.group(1)) if m else 0


def cpu_ns(pids):
    """{task id: CPU time in ns} of every thread of these processes:
    schedstat is exact where utime/stime are sampled at the clock tick (and
    a child that runs for microseconds at a time may never be seen
    running)."""
    out = {}
    for p in pids:
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue  # ended
        for t in tids:
            text = read(f"/proc/{p}/task/{t}/schedstat")
            if text:
                out[int(t)] = int(text.split()[0])
    return out


def sample(pid, memory=True):
    """The server and its children now: processes, threads, CPU time and
    (if memory) the sums of VmRSS and Pss in KiB."""
    t0 = time.monotonic()
    pids = [pid] + children(pid)
    out = {"processes": len(pids), "cpu": cpu_ns(pids)}
    out["t"] = (t0 + time.monotonic()) / 2  # reading 10000 files takes a while
    if memory:
        threads = rss = pss = 0
        for p in pids:
            st = read(f"/proc/{p}/status")
            threads += status_field(st, "Threads")
            rss += status_field(st, "VmRSS")
            pss += status_field(read(f"/proc/{p}/smaps_rollup"), "Pss")
        out.update(threads=threads, rss_kib=rss, pss_kib=pss)
    return out


def tasks_in_use():
    """Threads and processes on the whole machine (/proc/loadavg)."""
    return int(read("/proc/loadavg").split()[3].split("/")[1])


def int_from(path, default):
    try:
        return int(read(path).split()[0])
    except (IndexError, ValueError):
        return default


def cannot_run(model, connections, bin_dir):
    """Why this model cannot be measured at this size, or None. select's
    limit is not checked here: the run shows what happens."""
    if model.needs_flag:
        helptext = subprocess.run(
            [os.path.join(bin_dir, model.binary), "--helpfull"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True).stdout
        if f"-{model.needs_flag} " not in helptext:
            return (f"not yet: {model.binary} has no --{model.needs_flag} "
                    "(issue 13)")
    if model.per_conn:
        limit = min(int_from("/proc/sys/kernel/pid_max", 32768),
                    int_from("/proc/sys/kernel/threads-max", 1 << 30))
        free = limit - tasks_in_use()
        if connections + 500 > free:
            return (f"needs {connections} {model.per_conn}s; pid_max/"
                    f"threads-max {limit} with {limit - free} tasks running")
        if model.per_conn == "thread":
            maps = int_from("/proc/sys/vm/max_map_count", 65530)
            if 2 * connections + 1000 > maps:
                return (f"{connections} thread stacks need "
                        f"{2 * connections} mappings; vm.max_map_count {maps}")
    return None


# ---------------------------------------------------------------- a run

def run_once(model, connections, args, bin_dir):
    """One measurement on a fresh server: loadgen figures plus samples."""
    err = tempfile.TemporaryFile(mode="w+")
    server = run.Server(model.key, bin_dir, args.pin, binary=model.binary,
                        flags=model.flags + ["--backlog=4096"], stderr=err,
                        cores=model.cores(args.server_cores))
    loadgen = run.pinned(0, [
        os.path.join(bin_dir, run.LOADGEN), f"--port={server.port}",
        "--mode=pingpong", f"--connections={connections}", "--size=64",
        f"--duration={args.duration}", f"--warmup={args.warmup}",
        f"--timeout={args.setup_timeout:g}", "--announce"], args.pin)
    result = {}
    try:
        gen = subprocess.Popen(loadgen, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        first = run.read_line(gen.stdout, args.setup_timeout + 60, "loadgen")
        if first.startswith("connected"):
            # The load runs now: warm-up, then the measured window.
            start = time.monotonic()
            time.sleep(args.warmup + 0.05 * args.duration)
            s1 = sample(server.proc.pid, memory=False)
            time.sleep(max(0.0, start + args.warmup + 0.75 * args.duration
                           - time.monotonic()))
            s2 = sample(server.proc.pid)
            # Reading 10000 tasks' files takes seconds: a sample that ended
            # after the measured window, or lost a task that was there at
            # the first (its CPU time leaves the sum), measures something
            # else, so that round has no server figures.
            lost = len(s1["cpu"].keys() - s2["cpu"].keys())
            late = s2["t"] > start + args.warmup + args.duration
            if lost or late:
                result["unsampled"] = (f"{lost} tasks ended between the samples"
                                       if lost else "sampled after the window")
            else:
                result.update({k: s2[k] for k in
                               ("processes", "threads", "rss_kib", "pss_kib")})
                result["server_cpu_ns_per_s"] = \
                    sum(s2["cpu"].values()) - sum(s1["cpu"].values())
                result["server_cpu_ns_per_s"] /= max(1e-9, s2["t"] - s1["t"])
        out, problems = gen.communicate(timeout=600)
        lines = (first + "\n" + out).strip().splitlines()
        result.update(run.parse(lines[-1]))
        result["returncode"] = gen.returncode
        result["loadgen_stderr"] = problems.strip().splitlines()[:3]
        if "server_cpu_ns_per_s" in result and result.get("msgs_per_s"):
            result["cpu_ns_per_msg"] = (result["server_cpu_ns_per_s"]
                                        / result["msgs_per_s"])
        if server.proc.poll() is not None:
            run.fail(f"{model.key}: died with {connections} connections")
        if args.smoke:
            check_smoke(model, connections, result, server.proc.pid)
    finally:
        server.stop()
        err.seek(0)
        result["server_stderr"] = err.read().strip().splitlines()[:3]
        err.close()
    return result


SMOKE_PROBLEMS = []


def check_stop_while_serving(model, connections, bin_dir):
    """--smoke: SIGTERM to a baseline server while it holds connections must
    end every thread or child and exit 0 (the load runs leave nothing open
    by the time they stop the server, so they never test this)."""
    server = run.Server(model.key, bin_dir, False, binary=model.binary)
    gen = subprocess.Popen(
        [os.path.join(bin_dir, run.LOADGEN), f"--port={server.port}",
         "--mode=hold", f"--connections={connections}"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True)
    try:
        held = run.parse(run.read_line(gen.stdout, 60, "loadgen"))
        kids = children(server.proc.pid)
        tasks = sample(server.proc.pid)
        server.stop()
        if held.get("established") != connections:
            SMOKE_PROBLEMS.append(f"{model.key}: held {held} connections")
        what = "threads" if model.per_conn == "thread" else "processes"
        if tasks[what] not in tasks_allowed(connections + 1, what):
            SMOKE_PROBLEMS.append(f"{model.key}: {tasks} while holding "
                                  f"{connections} connections")
        if server.proc.returncode != 0:
            SMOKE_PROBLEMS.append(f"{model.key}: exit status "
                                  f"{server.proc.returncode} on SIGTERM")
        left = [p for p in kids if os.path.exists(f"/proc/{p}")]
        if left:
            SMOKE_PROBLEMS.append(f"{model.key}: children {left[:5]} still "
                                  "there after it exited")
    finally:
        gen.communicate(timeout=60)  # closes stdin: the loadgen lets go


def tasks_allowed(expected, what):
    """One more thread is allowed: TSan's runtime starts a background thread
    once the program starts its first one."""
    return (expected, expected + 1) if what == "threads" else (expected,)


def check_smoke(model, connections, result, pid):
    """What --smoke asserts beyond the loadgen's own checks: counts only."""
    want = {"thread": ("threads", connections + 1),
            "process": ("processes", connections + 1)}.get(model.per_conn)
    if model.workers:
        want = ("processes", model.workers + 1)  # the workers and the parent
    if want and result.get(want[0]) not in tasks_allowed(want[1], want[0]):
        SMOKE_PROBLEMS.append(f"{model.key}: {result.get(want[0])} "
                              f"{want[0]} under load, expected {want[1]}")
    if model.per_conn == "process":
        # Every child ends with its connection and must be reaped, soon.
        deadline = time.monotonic() + 10
        while children(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if children(pid):
            SMOKE_PROBLEMS.append(f"{model.key}: {len(children(pid))} "
                                  "children not reaped 10 s after the load")


def failure(result, connections):
    """Why a run does not count, or None. A run in which no echo came back
    within the window does count: its memory and tasks were measured, and
    the table says that it echoed nothing in time."""
    if not result.get("errors") and not result.get("returncode"):
        return None
    est = int(result.get("established", 0))
    said = (result.get("server_stderr") or [""])[0]
    why = f"{est} of {connections} connections served"
    if said:
        why += f"; server: {said}"
    elif result.get("loadgen_stderr"):
        said = result["loadgen_stderr"][0].replace("loadgen: ", "", 1)
        why += f"; loadgen: {said}"
    return why


# ---------------------------------------------------------------- output

def summarize(all_models, sizes, results, notes):
    """{(size, key): {figure: median or None, ...}}: medians over the rounds
    that served every connection; latency and CPU per message only over
    those that echoed something within the window."""
    rows = {}
    for c in sizes:
        base = {r["round"]: r for r in results.get((c, "twist_epoll"), [])}
        for m in all_models:
            rs = results.get((c, m.key), [])
            ok = [r for r in rs if failure(r, c) is None]
            echoed = [r for r in ok if r.get("msgs_per_s", 0) > 0]
            row = {"note": notes.get((c, m.key)), "rounds": len(rs),
                   "ok": len(ok), "rates": [r.get("msgs_per_s", 0)
                                            for r in ok],
                   "unsampled": [r["unsampled"] for r in ok
                                 if r.get("unsampled")]}
            for k, among in (("msgs_per_s", ok), ("p99_us", echoed),
                             ("cpu_ns_per_msg", echoed), ("rss_kib", ok),
                             ("pss_kib", ok), ("server_cpu_ns_per_s", ok),
                             ("threads", ok), ("processes", ok)):
                vals = [r[k] for r in among if k in r]
                row[k] = statistics.median(vals) if vals else None
            ratios = [run.ratio(r.get("msgs_per_s", 0),
                                base[r["round"]].get("msgs_per_s", 0))
                      for r in ok if r["round"] in base]
            row["vs_epoll"] = statistics.median(ratios) if ratios else None
            rows[(c, m.key)] = row
    return rows


def cell(v, fmt):
    return "" if v is None else fmt(v)


def table(all_models, sizes, rows, window):
    out = ["| connections | model | messages/s | × twist epoll | p99 ms "
           "| server RSS MiB | server PSS MiB | server CPU µs/msg "
           "| server CPU % | threads | processes |",
           "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in sizes:
        for m in all_models:
            row = rows[(c, m.key)]
            if not row["ok"]:
                out.append(f"| {c} | {m.title} | n/a: "
                           f"{row.get('note') or 'not run'} | | | | | | | | |")
                continue
            zeros = row["rates"].count(0)
            late = (f"no echo came back within the {window:g} s of warm-up "
                    "and measuring (all did later, every byte right)")
            if row["msgs_per_s"] == 0:
                others = [f"{v:,.0f}" for v in row["rates"] if v]
                rate = (f"0: in {zeros} of {row['ok']} rounds {late}" +
                        (f"; the others: {', '.join(others)}" if others
                         else ""))
            else:
                rate = f"{row['msgs_per_s']:,.0f}" + (
                    f" (in {zeros} of {row['ok']} rounds {late})"
                    if zeros else "")
            if row.get("note"):
                rate += (f"; figures from {row['ok']} of {row['rounds']} "
                         f"rounds, then n/a: {row['note']}")
            if row.get("unsampled"):
                rate += (f"; server figures from {row['ok'] - len(row['unsampled'])}"
                         f" of {row['ok']} rounds (the others: "
                         f"{row['unsampled'][0]}, ...)")
            p99 = (f"> {window * 1000:,.0f}" if row["p99_us"] is None
                   else f"{row['p99_us'] / 1000:,.1f}")
            out.append(
                f"| {c} | {m.title} | {rate} | "
                f"{cell(row.get('vs_epoll'), lambda v: f'{v:.2f}')} | "
                f"{p99} | "
                f"{cell(row.get('rss_kib'), lambda v: f'{v / 1024:,.1f}')} | "
                f"{cell(row.get('pss_kib'), lambda v: f'{v / 1024:,.1f}')} | "
                f"{cell(row.get('cpu_ns_per_msg'), lambda v: f'{v / 1000:.1f}')}"
                " | "
                f"{cell(row.get('server_cpu_ns_per_s'), lambda v: f'{v / 1e7:.0f}')}"
                f" | {cell(row.get('threads'), lambda v: f'{v:.0f}')} | "
                f"{cell(row.get('processes'), lambda v: f'{v:.0f}')} |")
    return "\n".join(out)


def plots(all_models, sizes, rows):
    """The PNGs; returns the paths written, or None without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    written = []
    shown = [m for m in all_models
             if any(rows[(c, m.key)].get("msgs_per_s") for c in sizes)]
    width = 0.8 / max(1, len(shown))
    figures = [
        ("models_throughput.png", "msgs_per_s", 1e3,
         "echoed messages/s (thousands)", False),
        ("models_p99.png", "p99_us", 1e3, "p99 round trip (ms, log)", True),
        ("models_cpu.png", "cpu_ns_per_msg", 1e3,
         "server CPU per echoed message (µs, log;\nthe steadiest figure "
         "on a shared machine)", True),
        ("models_rss.png", "rss_kib", 1024,
         "server RSS (MiB, log; process model: sum over children;\n"
         "black tick: PSS, shared pages counted once)", True),
    ]
    for name, key, scale, ylabel, log in figures:
        fig, ax = plt.subplots(figsize=(9, 4.8))
        for i, m in enumerate(shown):
            xs, ys, missing = [], [], []
            for j, c in enumerate(sizes):
                x = j + (i - (len(shown) - 1) / 2) * width
                v = rows[(c, m.key)].get(key)
                if v:
                    xs.append(x)
                    ys.append(v / scale)
                    if key == "rss_kib" and rows[(c, m.key)].get("pss_kib"):
                        ax.plot([x - width / 2, x + width / 2],
                                [rows[(c, m.key)]["pss_kib"] / scale] * 2,
                                color="black", linewidth=1.5)
                else:
                    missing.append((x, "0" if v == 0 else "n/a"))
            bars = ax.bar(xs, ys, width, label=m.title)
            for x, what in missing:
                ax.text(x, 0.02, what, rotation=90, ha="center",
                        va="bottom", fontsize=7, transform=ax.get_xaxis_transform(),
                        color=bars.patches[0].get_facecolor()
                        if bars.patches else "gray")
        ax.set_xticks(range(len(sizes)))
        ax.set_xticklabels([f"{c} connections" for c in sizes])
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale("log")
        ax.set_title("Echo servers, 64-byte ping-pong, median of rounds "
                     "(2 shared cores: compare ratios)", fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        path = os.path.join(BENCH, name)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    written.append(pollers_plot(plt))
    return written


def pollers_table():
    """bench/pollers.md's idle-connections table: {reactor: [(idle, p50,
    p99)]}, rows the reactor could not serve left out."""
    with open(POLLERS_MD) as f:
        lines = [l.strip() for l in f if l.startswith("| ")]
    head = [h.strip() for h in lines[0].strip("|").split("|")]
    out = {}
    for line in lines[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if not cells[0].isdigit():
            continue
        for k in range(1, len(head), 2):
            reactor = head[k].split()[0]
            try:
                p50, p99 = float(cells[k]), float(cells[k + 1])
            except ValueError:
                continue  # n/a (FD_SETSIZE)
            out.setdefault(reactor, []).append((int(cells[0]), p50, p99))
    return out


def pollers_plot(plt):
    data = pollers_table()
    fig, axes = plt.subplots(1, 2, figsize=(9, 4), sharey=True)
    for ax, idx, what in ((axes[0], 1, "p50"), (axes[1], 2, "p99")):
        for reactor, pts in data.items():
            ax.plot([p[0] for p in pts], [p[idx] for p in pts], marker="o",
                    label=reactor)
        ax.set_xscale("symlog", linthresh=100)
        ax.set_yscale("log")
        ax.set_xlabel("idle connections")
        ax.set_title(f"{what} round trip of one active connection",
                     fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("µs (log)")
    axes[1].legend(title="reactor (select: none\nat 5000, FD_SETSIZE)",
                   fontsize=8, title_fontsize=8)
    fig.suptitle("bench/pollers.md: echo latency with idle connections",
                 fontsize=10)
    fig.tight_layout()
    path = os.path.join(BENCH, "pollers_idle_latency.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def report(data, all_models, sizes):
    rows = summarize(all_models, sizes,
                     {(int(k.split("/")[0]), k.split("/")[1]): v
                      for k, v in data["results"].items()},
                     {(int(k.split("/")[0]), k.split("/")[1]): v
                      for k, v in data["notes"].items()},
                     )
    print(f"\nResults {data['date'][:16].replace('T', ' ')} UTC, "
          f"{data['machine']}; median of {data['rounds']} round(s) of "
          f"{data['duration']:g} s"
          f"{pinning(data)}"
          ".\n")
    print(table(all_models, sizes, rows,
                data.get("warmup", 0.3) + data["duration"]))
    return rows


def pinning(data):
    """How the run pinned the processes, for the table's heading."""
    if not data["pin"]:
        return ""
    if data.get("server_cores") == "all":
        return ", servers on every core, loadgen on core 0"
    return ", server on cores 1..N, loadgen on core 0"


# ---------------------------------------------------------------- main

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    run.add_run_flags(p, rounds=3)
    p.add_argument("--connections", default="100,1000,10000",
                   help="comma-separated sizes (default 100,1000,10000)")
    p.add_argument("--setup_timeout", type=float, default=120,
                   help="seconds the loadgen may take to set up its "
                        "connections (and to drain at the end); a model that "
                        "needs longer is reported n/a (default 120)")
    p.add_argument("--only", default="",
                   help="comma-separated model keys (default all)")
    p.add_argument("--twist_threads", default="2",
                   help="comma-separated N for rows of twist with "
                        "--threads=N, measured once echo_server has the "
                        "flag (default 2; '' for none)")
    p.add_argument("--twist_workers", default="2",
                   help="comma-separated N for rows of twist with "
                        "--workers=N (default 2; '' for none)")
    p.add_argument("--server_cores", choices=("rest", "all"), default="rest",
                   help="rest: the server on cores 1..N, the loadgen alone on "
                        "core 0 (default); all: every server on every core, "
                        "sharing core 0 with the loadgen")
    p.add_argument("--json", default=JSON_PATH,
                   help="where every round's figures go (default "
                        "bench/models.json)")
    p.add_argument("--replot", action="store_true",
                   help="measure nothing: table and PNGs from --json")
    p.add_argument("--smoke", action="store_true",
                   help="CI: 10 and 20 connections, one short round, no "
                        "pinning, no files; fails on errors, never on speed")
    args = p.parse_args()
    twist_threads = [int(n) for n in args.twist_threads.split(",") if n]
    twist_workers = [int(n) for n in args.twist_workers.split(",") if n]
    all_models = models(twist_threads, twist_workers)
    if args.only:
        keys = set(args.only.split(","))
        unknown = keys - {m.key for m in all_models}
        if unknown:
            run.fail(f"--only: unknown model(s) {', '.join(sorted(unknown))}"
                     f"; known: {', '.join(m.key for m in all_models)}")
        all_models = [m for m in all_models if m.key in keys]
    sizes = [int(c) for c in args.connections.split(",")]
    if args.smoke:
        sizes = [10, 20]
        args.rounds = 1
        args.duration = min(args.duration, 0.2)
        args.warmup = min(args.warmup, 0.05)
        args.pin = False

    if args.replot:
        with open(args.json) as f:
            data = json.load(f)
        sizes = data["sizes"]
        rows = report(data, all_models, sizes)
        return draw(all_models, sizes, rows)

    run.check_pinning(args, "models.py")
    bin_dir = args.bin_dir or run.build([
        "//examples:echo_server", "//bench:thread_per_conn_echo_server",
        "//bench:process_per_conn_echo_server", "//bench:loadgen"])
    run.raise_fd_limit(max(sizes) + 100)
    started = datetime.datetime.now(datetime.timezone.utc)
    machine = run.machine()
    results, notes = {}, {}
    for c in sizes:
        for m in all_models:
            why = cannot_run(m, c, bin_dir)
            if why:
                notes[(c, m.key)] = why
        todo = [m for m in all_models if (c, m.key) not in notes]
        for rnd in range(args.rounds):
            k = rnd % max(1, len(todo))
            for m in todo[k:] + todo[:k]:  # a different order each round
                if (c, m.key) in notes:
                    continue  # failed in an earlier round: says why once
                r = run_once(m, c, args, bin_dir)
                r["round"] = rnd
                why = failure(r, c)
                print(f"[{c} conns round {rnd + 1}/{args.rounds} {m.key}] "
                      + (f"n/a: {why}" if why else
                         " ".join(f"{k}={r.get(k, 0):g}" for k in
                                  ("msgs_per_s", "p99_us", "rss_kib",
                                   "pss_kib", "cpu_ns_per_msg", "threads",
                                   "processes"))),
                      file=sys.stderr, flush=True)
                if why:
                    notes[(c, m.key)] = why
                    if args.smoke:
                        SMOKE_PROBLEMS.append(f"{m.key} at {c}: {why}")
                results.setdefault((c, m.key), []).append(r)

    data = {"date": started.isoformat(), "machine": machine,
            "rounds": args.rounds, "duration": args.duration,
            "warmup": args.warmup,
            "pin": args.pin, "server_cores": args.server_cores,
            "sizes": sizes,
            "command": " ".join(["python3", "bench/models.py"] + sys.argv[1:]),
            "results": {f"{c}/{k}": v for (c, k), v in results.items()},
            "notes": {f"{c}/{k}": v for (c, k), v in notes.items()}}
    rows = report(data, all_models, sizes)
    if args.smoke:
        for m in all_models:
            if m.per_conn:
                check_stop_while_serving(m, 10, bin_dir)
        print("\n(smoke run: tiny loads, unpinned; the figures mean nothing)")
        for problem in SMOKE_PROBLEMS:
            print(f"models.py: {problem}", file=sys.stderr)
        return 1 if SMOKE_PROBLEMS else 0
    with open(args.json, "w") as f:
        json.dump(data, f, indent=1)
    if os.path.abspath(args.json) != os.path.abspath(JSON_PATH):
        # The PNGs show bench/models.json's table (bench/README.md); a side
        # run (--only, --server_cores=all ...) must not replace them.
        print(f"\nmodels.py: no plots drawn for {args.json} (they are drawn "
              "for bench/models.json only)")
        return 0
    return draw(all_models, sizes, rows)


def draw(all_models, sizes, rows):
    written = plots(all_models, sizes, rows)
    if written is None:
        print(f"\nmodels.py: no matplotlib for {sys.executable}: no plots "
              "drawn (Debian's python3-matplotlib, from tools/setup.sh, is "
              "for /usr/bin/python3)")
    else:
        print("\nPlots: " + ", ".join(os.path.relpath(w, run.ROOT)
                                     for w in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
