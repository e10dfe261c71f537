#!/usr/bin/env python3
"""User-space instructions and system calls per HTTP request, twist and nginx.

Runs a server under callgrind (instructions) or strace -c (system calls)
twice, once answering --small and once --large keep-alive requests on one
connection (`GET / HTTP/1.1`, one at a time, or --depth requests per write),
and divides the difference by the difference in requests, so start-up and
shutdown cancel out. Counts are repeatable where seconds are not: these are
the figures to compare before and after a change to the HTTP hot path.

  ./tools/bazel build -c opt //examples:hello_http
  python3 bench/http_instructions.py                  # twist, depth 1 and 16
  python3 bench/http_instructions.py --server=nginx   # nginx, same requests
  python3 bench/http_instructions.py --syscalls       # strace -c instead

nginx is Debian's nginx-light as bench/http.py runs it (return 200 "Hello,
World", access log off), here without its master process (one process to
measure).
"""

import argparse
import collections
import os
import signal
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nginx_conf  # noqa: E402  (nginx's configuration, shared)
import run  # noqa: E402  (free_port, connect_when_listening, callgrind)
from run import ROOT  # noqa: E402


def connect(port, proc):
    s = run.connect_when_listening(port, proc, timeout=60)
    if s is None:
        sys.exit(f"http_instructions: the server is not listening on {port}")
    s.settimeout(30)
    return s


def drive(port, proc, requests, depth):
    """`requests` GETs on one keep-alive connection, `depth` per write."""
    s = connect(port, proc)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # What wrk sends.
    req = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port
    buf = b""
    done = 0
    while done < requests:
        s.sendall(req * depth)
        got = 0
        while got < depth:
            chunk = s.recv(65536)
            if not chunk:
                sys.exit("http_instructions: the server closed the connection")
            buf += chunk
            while True:
                i = buf.find(b"Hello, World")
                if i < 0:
                    break
                buf = buf[i + 12:]
                got += 1
        done += depth
    s.close()


def run_server(args, requests, tmp):
    """Starts the server under the tool, drives it, returns the tool's output."""
    out = os.path.join(tmp, "tool.out")
    if args.syscalls:
        tool = ["strace", "-f", "-c", "-o", out]
    else:
        tool = run.callgrind(out)
    port = run.free_port()
    if args.server == "twist":
        argv = [args.bin, f"--port={port}"]
    else:
        argv = nginx_conf.command(tmp, port, args.nginx, master_process=False,
                                  worker_connections=1024, rlimit_nofile=None,
                                  backlog=None)
    proc = subprocess.Popen(tool + argv, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        drive(port, proc, requests, args.depth)
    finally:
        # valgrind runs the server in its own process; strace does not pass
        # SIGTERM on, so its child (the server) is signalled.
        target = proc.pid
        if args.syscalls:
            with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
                kids = f.read().split()
            if kids:
                target = int(kids[0])
        os.kill(target, signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    if args.syscalls:
        with open(out) as f:
            return f.read()
    return err


def count(args, requests, tmp):
    text = run_server(args, requests, tmp)
    if args.syscalls:
        calls = collections.Counter()
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                calls[parts[-1]] = int(parts[3])
        return calls
    return run.callgrind_total(text)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", choices=("twist", "nginx"), default="twist")
    p.add_argument("--depth", type=int, default=0,
                   help="requests per write (default: 1, then 16)")
    p.add_argument("--small", type=int, default=2000, help="requests in the short run")
    p.add_argument("--large", type=int, default=12000, help="requests in the long run")
    p.add_argument("--syscalls", action="store_true",
                   help="count system calls (strace -c) instead of instructions")
    p.add_argument("--bin", default=os.path.join(ROOT, "bazel-bin", "examples", "hello_http"))
    p.add_argument("--nginx", default="/usr/sbin/nginx")
    a = p.parse_args()
    exe = a.bin if a.server == "twist" else a.nginx
    if not os.access(exe, os.X_OK):
        sys.exit(f"http_instructions: {exe} is missing (build //examples:hello_http -c opt)")
    depths = [a.depth] if a.depth > 0 else [1, 16]
    for depth in depths:
        a.depth = depth
        small_n = a.small // depth * depth
        large_n = a.large // depth * depth
        with tempfile.TemporaryDirectory() as tmp:
            small = count(a, small_n, tmp)
        with tempfile.TemporaryDirectory() as tmp:
            large = count(a, large_n, tmp)
        n = large_n - small_n
        if a.syscalls:
            per = {k: (large[k] - small.get(k, 0)) / n for k in large}
            per = {k: v for k, v in sorted(per.items()) if v >= 0.01}
            text = ", ".join(f"{k} {v:.2f}" for k, v in per.items())
            print(f"{a.server}: system calls per request, {depth} per write: "
                  f"{sum(per.values()):.2f} ({text})")
        else:
            print(f"{a.server}: instructions per request, {depth} per write: "
                  f"{(large - small) / n:.0f} ({small} for {small_n}, {large} for {large_n})")


if __name__ == "__main__":
    main()
