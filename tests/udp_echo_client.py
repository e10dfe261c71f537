"""A UDP client for udp_test, on Python's own socket module.

usage: udp_echo_client.py HOST PORT MODE [MAX_PACKET]

echo      sends datagrams of several sizes; each must come back whole, alone.
truncate  MAX_PACKET bytes come back; MAX_PACKET+1 bytes do not (the server
          drops it); a datagram sent after it does come back, first.
peer      the other way round: binds HOST:0, prints its port, answers one
          datagram to its sender, then closes its socket and exits, so that
          a later datagram to that port is refused (ICMP port unreachable).
Prints "ok" and exits 0, or prints what went wrong and exits 1.
"""

import socket
import sys

TIMEOUT = 20  # seconds, every receive: a hang fails instead of stalling


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def expect(sock, want):
    data, _ = sock.recvfrom(70000)
    if data != want:
        print("expected %d bytes %r..., got %d bytes %r..." % (len(want), want[:20], len(data), data[:20]))
        sys.exit(1)


def main():
    host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    s.settimeout(TIMEOUT)
    if mode == "echo":
        for payload in [b"hello", b"", bytes(range(256)) * 4, b"x" * 8000]:
            s.sendto(payload, (host, port))
            expect(s, payload)
    elif mode == "truncate":
        limit = int(sys.argv[4])
        whole = b"w" * limit
        s.sendto(whole, (host, port))
        expect(s, whole)
        s.sendto(b"c" * (limit + 1), (host, port))
        s.sendto(b"after", (host, port))
        expect(s, b"after")  # not the cut copy of the long one
    elif mode == "peer":
        s.bind((host, 0))
        print(s.getsockname()[1], flush=True)
        data, addr = s.recvfrom(70000)
        s.sendto(data, addr)
        s.close()
    else:
        print("unknown mode %r" % mode)
        sys.exit(2)
    print("ok", flush=True)


if __name__ == "__main__":
    main()
