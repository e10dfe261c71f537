#!/usr/bin/env python3
"""Chat across servers through Redis (issue 17) against one chat server.

Starts its own redis-server (a free loopback port, persistence off), two
chat_servers with --redis and one without, all from bazel-bin, and measures
in the same run, alternating the two set-ups round by round:

  - fan-out throughput: --users users (400) on one server, against the same
    number split evenly over the two --redis servers. --senders users (4)
    each keep --window of their own lines in flight (a line counts as
    arrived when a probe user sees it: on the other server for --redis, a
    neighbour for one server), so the servers run as fast as they deliver
    without dropping lines for slow readers. Delivered lines per second =
    lines all users received during --seconds (after --warmup seconds of the
    same load), over --seconds.
  - latency: one user sends a line every 5 ms (--pings of them) and another
    times its arrival: on the other server (through Redis) against a
    neighbour on the same server, the two alone in the room. p50 and p99.

The clients are Python processes (--procs) on the same machine as the
servers and Redis: the rates are the whole machine's. Medians of --rounds.

  ./tools/bazel build //examples:chat_server
  python3 bench/chat_redis.py [--rounds=5] [--users=400] [--seconds=3]
"""

import argparse
import multiprocessing as mp
import os
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (free_port, start_listening)
from run import ROOT  # noqa: E402

CHAT = os.path.join(ROOT, "bazel-bin", "examples", "chat_server")


def start_redis(tmp):
    port = run.free_port()
    p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                          "--save", "", "--appendonly", "no", "--dir", tmp,
                          "--logfile", ""], stdout=subprocess.PIPE, text=True)
    for line in p.stdout:
        if "Ready to accept connections" in line:
            return p, port
    sys.exit("chat_redis: redis-server did not start")


def start_chat(args):
    return run.start_listening([CHAT, "--port=0"] + args)


def join(port, name):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(name.encode() + b"\n")
    buf = b""
    want = b"Welcome, " + name.encode() + b"!\r\n"
    while want not in buf:
        d = s.recv(65536)
        if not d:
            sys.exit("chat_redis: closed while joining")
        buf += d
    s.setblocking(False)
    return s


def drain(socks, quiet=0.3):
    """Reads until nothing has arrived for `quiet` seconds."""
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    while sel.select(quiet):
        for key, _ in sel.select(0):
            try:
                key.fileobj.recv(1 << 20)
            except BlockingIOError:
                pass
    sel.close()


def fanout(one, two, users, senders, procs, window, seconds, warmup):
    """Lines delivered per second with `users` users over ports `one` and
    `two` (the same port for one server)."""
    per = users // procs
    # Users of worker w: half on each port; the senders and their probes
    # come on top of `users` (4 + 4 more than 400).
    ctx = mp.get_context("fork")
    start = ctx.Value("d", 0.0)  # when to start, once everyone has joined
    ps = []
    ready = ctx.Queue()
    for w in range(procs):
        names = {f"w{w}u{i}": (one if i % 2 == 0 else two) for i in range(per)}
        sp = (one if w % 2 == 0 else two) if w < senders else None
        pp = (two if w % 2 == 0 else one) if w < senders else None
        ps.append(ctx.Process(target=_worker_sync,
                              args=(w, names, sp, pp, window, seconds, warmup, ready, start),
                              daemon=True))
    for p in ps:
        p.start()
    for _ in ps:
        ready.get(timeout=120)
    with start.get_lock():
        start.value = time.time() + 0.5
    results = [ready.get(timeout=120 + warmup + seconds) for _ in ps]
    for p in ps:
        p.join(30)
    received = sum(r[2] for r in results)
    sent = sum(r[3] for r in results)
    return received / seconds, sent


def _worker_sync(w, names, sp, pp, window, seconds, warmup, q, start):
    """Holds `names` users (name -> port); with `sp`, a sender there keeps
    `window` lines in flight, a probe on `pp` seeing them arrive. Counts
    every line its users receive for `seconds`, after `warmup` seconds of
    the same load (so that the pipeline is full), from the parent's start."""
    socks = {n: join(p, n) for n, p in names.items()}
    tag = f"s{w}"
    sender = join(sp, tag) if sp else None
    probe = join(pp, f"p{w}") if sp else None
    all_socks = list(socks.values()) + ([sender, probe] if sender else [])
    q.put(("ready", w))
    while start.value == 0.0:
        drain(all_socks, 0.05)
    while time.time() < start.value:
        drain(all_socks, 0.02)
    sel = selectors.DefaultSelector()
    for s in all_socks:
        sel.register(s, selectors.EVENT_READ)
    sent = acked = received = sent0 = 0
    prefix = f"<{tag}> ".encode()
    probe_buf = b""
    payload = b"x" * 40
    t_count = time.time() + warmup
    t_end = t_count + seconds
    counting = False
    while True:
        now = time.time()
        if now >= t_end:
            break
        if not counting and now >= t_count:
            counting = True
            received = 0
            sent0 = sent
        if sender is not None:
            while sent - acked < window:
                try:
                    sender.send(b"%d %s\n" % (sent, payload))
                except BlockingIOError:
                    break
                sent += 1
        for key, _ in sel.select(min(0.05, t_end - now)):
            s = key.fileobj
            try:
                d = s.recv(1 << 20)
            except BlockingIOError:
                continue
            if s is sender:
                continue
            received += d.count(b"\n")
            if s is probe:
                probe_buf += d
                *lines, probe_buf = probe_buf.split(b"\r\n")
                acked += sum(1 for l in lines if l.startswith(prefix))
    q.put(("done", w, received, sent - sent0))
    sel.close()
    drain(all_socks, 0.3)
    for s in all_socks:
        s.close()


def latency(send_port, recv_port, pings):
    a = join(send_port, "pinger")
    b = join(recv_port, "ponger")
    drain([a, b], 0.3)
    sel = selectors.DefaultSelector()
    sel.register(b, selectors.EVENT_READ)
    out = []
    buf = b""
    for i in range(pings):
        t0 = time.perf_counter()
        a.send(b"ping %d\n" % i)
        want = b"<pinger> ping %d\r\n" % i
        while want not in buf:
            if not sel.select(5):
                sys.exit("chat_redis: a ping did not arrive within 5 s")
            buf += b.recv(65536)
        out.append(time.perf_counter() - t0)
        buf = buf[buf.index(want) + len(want):]
        time.sleep(0.005)
    sel.close()
    a.close()
    b.close()
    out.sort()
    return out[len(out) // 2], out[min(len(out) - 1, int(len(out) * 0.99))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--users", type=int, default=400)
    ap.add_argument("--senders", type=int, default=4)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--pings", type=int, default=300)
    args = ap.parse_args()
    # SIGTERM ends the run through the finally below (the servers stop).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("chat_redis: terminated"))
    if not os.path.exists(CHAT):
        sys.exit("chat_redis: build //examples:chat_server first")
    load_before = open("/proc/loadavg").read().split()[:3]
    with tempfile.TemporaryDirectory() as tmp:
        redis, rport = start_redis(tmp)
        url = f"--redis=redis://127.0.0.1:{rport}"
        s1, p1 = start_chat([url])
        s2, p2 = start_chat([url])
        single, p0 = start_chat([])
        try:
            rows = {"one": [], "redis": []}
            lat = {"one": [], "redis": []}
            for r in range(args.rounds):
                for kind in ("one", "redis") if r % 2 == 0 else ("redis", "one"):
                    a, b = (p0, p0) if kind == "one" else (p1, p2)
                    rate, sent = fanout(a, b, args.users, args.senders, args.procs,
                                        args.window, args.seconds, args.warmup)
                    rows[kind].append(rate)
                    print(f"round {r} {kind:5}: {rate:,.0f} lines delivered/s "
                          f"({sent} lines sent)", flush=True)
                for kind in ("one", "redis"):
                    a, b = (p0, p0) if kind == "one" else (p1, p2)
                    p50, p99 = latency(a, b, args.pings)
                    lat[kind].append((p50, p99))
                    print(f"round {r} {kind:5}: latency p50 {p50 * 1e6:.0f} us, "
                          f"p99 {p99 * 1e6:.0f} us", flush=True)
            med = {k: statistics.median(v) for k, v in rows.items()}
            ratios = [b / a for a, b in zip(rows["one"], rows["redis"])]
            print()
            print(f"load average before: {' '.join(load_before)}; after: "
                  f"{' '.join(open('/proc/loadavg').read().split()[:3])}")
            print(f"fan-out, {args.users} users: one server {med['one']:,.0f} lines/s, "
                  f"2 servers through Redis {med['redis']:,.0f} lines/s; "
                  f"ratio (same round) median {statistics.median(ratios):.2f}")
            for k, name in (("one", "same server"), ("redis", "across servers")):
                p50 = statistics.median(x[0] for x in lat[k]) * 1e6
                p99 = statistics.median(x[1] for x in lat[k]) * 1e6
                print(f"latency {name}: p50 {p50:.0f} us, p99 {p99:.0f} us")
        finally:
            for p in (s1, s2, single, redis):
                p.terminate()
                p.wait(10)


if __name__ == "__main__":
    main()
