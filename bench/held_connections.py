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
import resource
import statistics
import sys

from run import ROOT, raise_fd_limit, rss_per_held_connection, start_listening


def one_round(server, n):
    proc, port = start_listening([server, "--port=0"])
    try:
        return rss_per_held_connection(proc.pid, port, n)
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
