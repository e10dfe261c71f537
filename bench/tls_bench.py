#!/usr/bin/env python3
"""TLS against plain TCP, on the same echo_server and echo_client.

Makes a throwaway CA and server certificate (EC P-256) with the openssl CLI,
then for tcp: and ssl: endpoints of bazel-bin/examples/echo_server measures

  - memory per idle held connection: growth of the server's VmRSS over
    --held connections (Python clients that each echo one byte, TLS 1.3),
    divided by their number;
  - handshakes per second: echo_client --connections=--handshakes with one
    16-byte message each (connect, handshake, echo), on one client process;
  - bulk echo throughput: echo_client with 8 connections of 64 KiB messages.

The median of --rounds rounds, each with a fresh server. Client and server
share the machine, so the rates are the pair's, not the server's alone.

  ./tools/bazel build //examples:echo_server //examples:echo_client
  python3 bench/tls_bench.py [--rounds=3] [--held=2000] [--handshakes=2000]
"""

import argparse
import os
import re
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile

from run import ROOT, raise_fd_limit, rss_per_held_connection

BIN = os.path.join(ROOT, "bazel-bin", "examples")


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


def start_server(listen):
    proc = subprocess.Popen([os.path.join(BIN, "echo_server"), "--listen=" + listen],
                            stdout=subprocess.PIPE, text=True)
    m = re.match(r"listening on (.*):(\d+)$", proc.stdout.readline().strip())
    if not m:
        sys.exit("tls_bench: the server did not say where it listens")
    return proc, int(m.group(2))


def held_bytes(listen, tls_ctx, n):
    proc, port = start_server(listen)
    try:
        def connect():
            s = socket.create_connection(("127.0.0.1", port))
            if tls_ctx is not None:
                s = tls_ctx.wrap_socket(s, server_hostname="localhost")
            s.sendall(b"x")
            if s.recv(1) != b"x":
                sys.exit("tls_bench: a connection did not echo")
            return s
        return rss_per_held_connection(proc.pid, connect, n)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def client_run(listen, connect, args):
    proc, port = start_server(listen)
    try:
        out = subprocess.run([os.path.join(BIN, "echo_client"), connect % port, *args],
                             capture_output=True, text=True, timeout=300)
        m = re.search(r"messages=(\d+) bytes=(\d+) errors=(\d+) seconds=([\d.]+)", out.stdout)
        if out.returncode != 0 or not m or m.group(3) != "0":
            sys.exit("tls_bench: echo_client failed: " + out.stdout + out.stderr)
        return int(m.group(1)), int(m.group(2)), float(m.group(4))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--held", type=int, default=2000)
    p.add_argument("--handshakes", type=int, default=2000)
    a = p.parse_args()
    raise_fd_limit(a.held + a.handshakes + 500)
    with tempfile.TemporaryDirectory() as d:
        make_certs(d)
        ca = os.path.join(d, "ca.pem")
        ssl_listen = "ssl:0:interface=127.0.0.1:privateKey=%s:certKey=%s" % (
            os.path.join(d, "server.key"), os.path.join(d, "server.pem"))
        modes = {
            "tcp": ("tcp:0:interface=127.0.0.1", None, "--connect=tcp:host=127.0.0.1:port=%d"),
            "tls": (ssl_listen, ssl.create_default_context(cafile=ca),
                    "--connect=tls:host=localhost:port=%d:caCertsFile=" + ca),
        }
        results = {}
        for name, (listen, ctx, connect) in modes.items():
            held, hs, bulk = [], [], []
            for _ in range(a.rounds):
                held.append(held_bytes(listen, ctx, a.held))
                n, _, secs = client_run(listen, connect, [
                    "--connections=%d" % a.handshakes, "--messages=1", "--size=16"])
                hs.append(n / secs)
                _, nbytes, secs = client_run(listen, connect, [
                    "--connections=8", "--messages=400", "--size=65536"])
                bulk.append(nbytes / secs / 1e6)
            results[name] = (statistics.median(held), statistics.median(hs),
                             statistics.median(bulk))
        print("| endpoint | memory per idle held connection | connections (handshakes) per s "
              "| bulk echo MB/s (8 conns, 64 KiB messages) |")
        print("|---|---|---|---|")
        for name, (held, hs, bulk) in results.items():
            print("| %s | %.0f B | %.0f | %.0f |" % (name, held, hs, bulk))


if __name__ == "__main__":
    main()
