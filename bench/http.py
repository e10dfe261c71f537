#!/usr/bin/env python3
"""hello_http against nginx and twisted.web, measured with wrk.

    python3 bench/http.py              # build (-c opt), run, print the table

Each server answers every request with the 12 bytes "Hello, World"
(Content-Type: text/plain):
  twist        examples/hello_http (built -c opt), one reactor;
  nginx        Debian's nginx, one worker, `return 200 "Hello, World"`,
               access log off (the server people would pick instead: the bar);
  twisted.web  a Resource returning the same bytes (/usr/bin/python3).
Every server is pinned to core 1 and wrk to core 0 (taskset), so they get
the same core on the same machine. Scenarios: keep-alive with 1, 100 and
1000 connections, and pipelined (100 connections, a wrk Lua script that
sends 16 requests per write). The servers alternate within each round and
swap order every round; figures are medians over the rounds, ratios are
twist / nginx from the same run. Results: bench/README.md, "HTTP".

--smoke is a check that the script works: short runs, one round, no
pinning, twisted.web left out; it never judges speed.
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nginx_conf  # noqa: E402  (nginx's configuration, shared)
import run  # noqa: E402  (build, pinning, machine(), fd limit, servers)

PIPELINE_LUA = """
-- 16 requests in one write; wrk counts each response.
init = function(args)
  local r = {}
  for i = 1, 16 do r[i] = wrk.format(nil, "/") end
  req = table.concat(r)
end
request = function() return req end
"""

TWISTED_WEB = """
import sys
from twisted.internet import epollreactor
epollreactor.install()
from twisted.internet import reactor
from twisted.web import resource, server

class Hello(resource.Resource):
    isLeaf = True
    def render(self, request):
        request.setHeader(b"content-type", b"text/plain")
        return b"Hello, World"

site = server.Site(Hello())
site.noisy = False
site.log = lambda request: None  # no access log, like nginx's
port = reactor.listenTCP(0, site, backlog=1024, interface="127.0.0.1")
print(f"listening on 127.0.0.1:{port.getHost().port}", flush=True)
reactor.run()
"""

class Scenario:
    def __init__(self, key, title, connections, pipelined=False):
        self.key = key
        self.title = title
        self.connections = connections
        self.pipelined = pipelined


def scenarios(smoke):
    return [
        Scenario("c1", "keep-alive, 1 conn", 1),
        Scenario("c100", "keep-alive, 100 conns", 10 if smoke else 100),
        Scenario("c1000", "keep-alive, 1000 conns", 20 if smoke else 1000),
        Scenario("pipe16", "pipelined x16, 100 conns", 10 if smoke else 100,
                 pipelined=True),
    ]


class Server:
    """One server of the comparison, started fresh for one measurement."""

    def __init__(self, name, bin_dir, pin, workdir):
        self.name = name
        self.proc = None
        if name == "twist":
            self.proc, self.port = run.start_listening(
                run.pinned(1, [os.path.join(bin_dir, "examples/hello_http"),
                               "--port=0", "--backlog=1024"], pin), name)
        elif name == "twisted":
            self.proc, self.port = run.start_listening(
                run.pinned(1, ["/usr/bin/python3", "-c", TWISTED_WEB], pin),
                name)
        elif name == "nginx":
            self.port = run.free_port()
            self.proc = subprocess.Popen(
                run.pinned(1, nginx_conf.command(workdir, self.port), pin),
                stdout=subprocess.DEVNULL)
            run.wait_listening(self.port, self.proc, "nginx")
        else:
            raise ValueError(name)

    def stop(self):
        # nginx stops quickly on SIGQUIT (graceful) or SIGTERM (fast).
        run.terminate(self.proc)


def parse_wrk(text):
    """Requests/s and the 99th percentile latency (ms) from wrk --latency."""
    rps = p99 = None
    errors = 0
    for line in text.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            rps = float(parts[1])
        elif len(parts) == 2 and parts[0] == "99%":
            p99 = to_ms(parts[1])
        elif line.strip().startswith("Socket errors:"):
            # connect N, read N, write N, timeout N
            nums = [int(x.rstrip(",")) for x in parts if x.rstrip(",").isdigit()]
            errors += sum(nums)
        elif line.strip().startswith("Non-2xx or 3xx responses:"):
            errors += int(parts[-1])
    if rps is None or p99 is None:
        run.fail(f"cannot read wrk's output:\n{text}")
    return {"rps": rps, "p99_ms": p99, "errors": errors}


def to_ms(value):
    for suffix, scale in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if value.endswith(suffix):
            return float(value[:-len(suffix)]) * scale
    return float(value)


def run_once(scenario, name, args, bin_dir, workdir, lua):
    server = Server(name, bin_dir, args.pin, workdir)
    try:
        url = f"http://127.0.0.1:{server.port}/"
        argv = ["wrk", "-t1", f"-c{scenario.connections}",
                f"-d{max(1, round(args.duration))}s", "--latency", "--timeout", "5s"]
        if scenario.pipelined:
            argv += ["-s", lua]
        if args.warmup > 0:
            subprocess.run(run.pinned(0, argv[:3] + [f"-d{max(1, round(args.warmup))}s", url],
                                      args.pin),
                           stdout=subprocess.DEVNULL, check=False)
        out = subprocess.run(run.pinned(0, argv + [url], args.pin),
                             stdout=subprocess.PIPE, text=True, check=False)
        if out.returncode != 0:
            run.fail(f"wrk against {name} failed: {out.stdout}")
        result = parse_wrk(out.stdout)
        if server.proc.poll() is not None:
            run.fail(f"{name} died during {scenario.key}")
        return result
    finally:
        server.stop()


def check_response(name, bin_dir, workdir):
    """Every server must say exactly Hello, World as text/plain."""
    server = Server(name, bin_dir, False, workdir)
    try:
        with socket.create_connection(("127.0.0.1", server.port), 5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200") or body != b"Hello, World" \
                or b"text/plain" not in head.lower():
            run.fail(f"{name}: unexpected response {data!r}")
    finally:
        server.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    run.add_run_flags(p, rounds=5)
    p.set_defaults(duration=5.0, warmup=1.0)
    p.add_argument("--smoke", action="store_true",
                   help="a quick check that everything runs (no figures)")
    p.add_argument("--servers", default="twist,nginx,twisted",
                   help="which servers, comma-separated (default all three)")
    p.add_argument("--scenarios", default="",
                   help="which scenarios by key (c1,c100,c1000,pipe16)")
    args = p.parse_args()
    if args.smoke:
        args.rounds, args.duration, args.warmup, args.pin = 1, 1, 0, False
    run.check_pinning(args, "http.py")
    if shutil.which("wrk") is None:
        run.fail("no wrk: tools/setup.sh installs Debian's wrk")
    run.raise_fd_limit(4096)
    names = [n for n in args.servers.split(",") if n]
    if args.smoke and "twisted" in names:
        names.remove("twisted")
    bin_dir = args.bin_dir or run.build(["//examples:hello_http"])
    scens = [s for s in scenarios(args.smoke)
             if not args.scenarios or s.key in args.scenarios.split(",")]
    print(run.machine())
    results = {}  # (scenario, server) -> [result]
    with tempfile.TemporaryDirectory(prefix="twist-http-bench-") as workdir:
        lua = os.path.join(workdir, "pipeline.lua")
        with open(lua, "w") as f:
            f.write(PIPELINE_LUA)
        for name in names:
            check_response(name, bin_dir, workdir)
        for r in range(args.rounds):
            order = names if r % 2 == 0 else list(reversed(names))
            for s in scens:
                for name in order:
                    res = run_once(s, name, args, bin_dir, workdir, lua)
                    results.setdefault((s.key, name), []).append(res)
                    print(f"round {r + 1} {s.key:7} {name:8} "
                          f"{res['rps']:10.0f} req/s  p99 {res['p99_ms']:.2f} ms"
                          f"  errors {res['errors']}", flush=True)
    bad = [(k, v) for k, v in results.items() if any(x["errors"] for x in v)]
    print()
    header = "| scenario |" + "".join(f" {n} req/s | {n} p99 ms |" for n in names)
    if "twist" in names and "nginx" in names:
        header += " twist/nginx |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for s in scens:
        row = f"| {s.title} |"
        med = {}
        for n in names:
            v = results[(s.key, n)]
            med[n] = statistics.median(x["rps"] for x in v)
            row += (f" {med[n]:.0f} |"
                    f" {statistics.median(x['p99_ms'] for x in v):.2f} |")
        if "twist" in med and "nginx" in med:
            row += f" {med['twist'] / med['nginx']:.2f} |"
        print(row)
    if bad:
        for (key, name), _ in bad:
            print(f"http.py: {name} had socket errors or non-2xx responses in "
                  f"{key}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
