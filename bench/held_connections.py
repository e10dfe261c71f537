#!/usr/bin/env python3
"""Server memory per idle held echo connection.

Starts bazel-bin/examples/echo_server, opens --connections connections to it
(each echoes one byte, so it is accepted and set up), and reports the growth
of the server's VmRSS divided by the number of connections. The median of
--rounds rounds, each with a fresh server.

  ./tools/bazel build //examples:echo_server
  python3 bench/held_connections.py [--connections=10000] [--rounds=3]
"""

import argparse
import os
import re
import resource
import socket
import statistics
import subprocess
import sys

from run import ROOT, raise_fd_limit, rss_per_held_connection


def one_round(server, n):
    proc = subprocess.Popen([server, "--port=0"], stdout=subprocess.PIPE, text=True)
    try:
        m = re.match(r"listening on (.*):(\d+)$", proc.stdout.readline().strip())
        if not m:
            sys.exit("held_connections: the server did not say where it listens")
        addr = ("127.0.0.1", int(m.group(2)))
        def connect():
            s = socket.create_connection(addr)
            s.sendall(b"x")
            if s.recv(1) != b"x":
                sys.exit("held_connections: a connection did not echo")
            return s
        return rss_per_held_connection(proc.pid, connect, n)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--connections", type=int, default=10000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--server", default=os.path.join(ROOT, "bazel-bin", "examples", "echo_server"))
    a = p.parse_args()
    need = a.connections + 200
    raise_fd_limit(need)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard < need:
        sys.exit(f"held_connections: needs {need} descriptors, the limit is {hard}")
    per = [one_round(a.server, a.connections) for _ in range(a.rounds)]
    print(f"server memory per held echo connection: {statistics.median(per):.0f} B "
          f"(median of {a.rounds} rounds of {a.connections}: "
          f"{', '.join(f'{x:.0f}' for x in per)})")


if __name__ == "__main__":
    main()
