#!/usr/bin/env python3
"""CPU time per HTTP request of the server and of wrk, twist against nginx.

    python3 bench/http_cpu.py [--connections=100] [--rounds=3] \\
        [--twist=new=bazel-bin/examples/hello_http,old=/tmp/old/hello_http]

Each server (one or more hello_http binaries, and nginx as bench/http.py
runs it) is pinned to core 1 and wrk (one thread, keep-alive) to core 0;
the servers alternate, swapping order every round. For each run it divides
the server process's user and system CPU time (/proc/PID/stat) and wrk's
(/usr/bin/time) by the requests wrk completed. Unlike requests per second,
CPU time per request changes little when other work shares the machine, so
it says which side limits the rate: the one that spends more per request on
its own core. Medians over the rounds.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nginx_conf  # noqa: E402  (nginx's configuration, shared)
import run  # noqa: E402  (free_port, wait_listening)
from run import ROOT  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]), int(f[12])  # utime, stime


def measure(binary, conns, duration, tmp):
    port = run.free_port()
    if binary == "nginx":
        proc = subprocess.Popen(["taskset", "-c", "1"] + nginx_conf.command(
            tmp, port, rlimit_nofile=None))
        run.wait_listening(port, proc, "nginx")
        pid = int(subprocess.check_output(["pgrep", "-P", str(proc.pid)]).split()[0])
    else:
        proc = subprocess.Popen(["taskset", "-c", "1", binary, f"--port={port}",
                                 "--backlog=1024"], stdout=subprocess.DEVNULL)
        run.wait_listening(port, proc, binary)
        pid = proc.pid
    try:
        url = f"http://127.0.0.1:{port}/"
        subprocess.run(["taskset", "-c", "0", "wrk", "-t1", f"-c{conns}", "-d1s", url],
                       stdout=subprocess.DEVNULL, check=True)
        u0, s0 = cpu_ticks(pid)
        out = subprocess.run(["/usr/bin/time", "-f", "TIME %U %S", "taskset", "-c", "0", "wrk",
                              "-t1", f"-c{conns}", f"-d{duration}s", url],
                             capture_output=True, text=True, check=True)
        u1, s1 = cpu_ticks(pid)
    finally:
        if binary == "nginx":
            with open(os.path.join(tmp, "nginx.pid")) as f:
                os.kill(int(f.read()), 15)
        else:
            proc.terminate()
        proc.wait()
    reqs = int(re.search(r"(\d+) requests in", out.stdout).group(1))
    wu, ws = map(float, re.search(r"TIME ([\d.]+) ([\d.]+)", out.stderr).groups())
    per = lambda seconds: seconds / reqs * 1e6
    return {"rps": reqs / duration, "server user": per((u1 - u0) / TICK),
            "server sys": per((s1 - s0) / TICK), "wrk user": per(wu), "wrk sys": per(ws)}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--connections", type=int, default=100)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=4, help="seconds per run")
    p.add_argument("--twist", default=f"twist={ROOT}/bazel-bin/examples/hello_http",
                   help="LABEL=PATH of hello_http binaries, comma-separated")
    a = p.parse_args()
    servers = [tuple(x.split("=", 1)) for x in a.twist.split(",") if x] + [("nginx", "nginx")]
    results = {label: [] for label, _ in servers}
    with tempfile.TemporaryDirectory(prefix="twist-http-cpu-") as tmp:
        for r in range(a.rounds):
            for label, binary in (servers if r % 2 == 0 else servers[::-1]):
                results[label].append(measure(binary, a.connections, a.duration, tmp))
    print(f"keep-alive, {a.connections} connections, {a.rounds} rounds, load average "
          f"{os.getloadavg()[0]:.1f}; CPU microseconds per request (medians)")
    for label, _ in servers:
        m = {k: statistics.median(x[k] for x in results[label]) for k in results[label][0]}
        print(f"{label:8} {m['rps']:9.0f} req/s   server user {m['server user']:5.2f} "
              f"sys {m['server sys']:5.2f} total {m['server user'] + m['server sys']:5.2f}"
              f"   wrk user {m['wrk user']:5.2f} sys {m['wrk sys']:5.2f} "
              f"total {m['wrk user'] + m['wrk sys']:5.2f}")


if __name__ == "__main__":
    main()
