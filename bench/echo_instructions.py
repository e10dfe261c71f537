#!/usr/bin/env python3
"""User-space instructions the echo server spends per echoed message.

Runs bazel-bin/examples/echo_server under callgrind twice, once echoing
`--small` messages and once `--large` messages (echo_client, one connection,
one message at a time), and divides the difference in instructions by the
difference in messages: start-up and shutdown cancel out. Instruction counts
are repeatable where seconds are not, so this is the figure to compare
before and after a change to the reactor or the transport.

  ./tools/bazel build //examples:echo_server //examples:echo_client
  python3 bench/echo_instructions.py [--size=64] [--small=2000] [--large=12000]
"""

import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (callgrind_instructions)
from run import ROOT  # noqa: E402


def instructions(server, client, messages, size, connections):
    def drive(port):
        subprocess.run(
            [client, f"--port={port}", f"--connections={connections}",
             f"--messages={messages // connections}", f"--size={size}"],
            check=True, stdout=subprocess.DEVNULL, timeout=600)
    return run.callgrind_instructions([server, "--port=0"], drive)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=64, help="bytes per message")
    p.add_argument("--small", type=int, default=2000, help="messages in the short run")
    p.add_argument("--large", type=int, default=12000, help="messages in the long run")
    p.add_argument("--connections", type=int, default=1, help="connections at once")
    p.add_argument("--bin", default=os.path.join(ROOT, "bazel-bin", "examples"),
                   help="where echo_server and echo_client are")
    a = p.parse_args()
    server = os.path.join(a.bin, "echo_server")
    client = os.path.join(a.bin, "echo_client")
    for f in (server, client):
        if not os.access(f, os.X_OK):
            sys.exit(f"echo_instructions: {f} is missing: build //examples first")
    small = instructions(server, client, a.small, a.size, a.connections)
    large = instructions(server, client, a.large, a.size, a.connections)
    per = (large - small) / (a.large - a.small)
    print(f"instructions per echoed message: {per:.0f} "
          f"({a.size}-byte messages, {a.connections} connection(s); "
          f"{small} for {a.small}, {large} for {a.large})")


if __name__ == "__main__":
    main()
