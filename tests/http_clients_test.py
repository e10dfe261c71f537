"""examples/hello_http checked with real clients: curl, Python's http.client
(keep-alive, pipelining) and Twisted's own twisted.web.client.Agent, and
--root with curl and http.client (types, 304, traversal refused).

Run by tests/http_clients_test.sh with Debian's python3 (for Twisted).
"""

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

ROOT = os.path.join(os.environ.get("TEST_SRCDIR", "."), os.environ.get("TEST_WORKSPACE", "twist"))
BIN = os.path.join(ROOT, "examples", "hello_http")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


class Server:
    def __init__(self, *args):
        self.p = subprocess.Popen([BIN, "--port=0", *args], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        line = self.p.stdout.readline().strip()
        if not line.startswith("listening on 127.0.0.1:"):
            raise SystemExit("hello_http said %r" % line)
        self.port = int(line.rsplit(":", 1)[1])
        self.url = "http://127.0.0.1:%d" % self.port

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        code = self.p.wait(timeout=20)
        check(code == 0, "hello_http exits 0 on SIGTERM, got %d" % code)
        err = self.p.stderr.read()
        check(err == "", "nothing on stderr: %r" % err)


def curl(*args):
    r = subprocess.run(["curl", "-sS", "--max-time", "20", *args], capture_output=True,
                       timeout=30)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


def with_curl(s):
    code, out, _ = curl(s.url + "/")
    check(code == 0 and out == b"Hello, World", "curl GET /: %d %r" % (code, out))
    code, out, _ = curl("-i", s.url + "/any/other/path?x=1")
    head, _, body = out.partition(b"\r\n\r\n")
    check(body == b"Hello, World", "curl other path body %r" % body)
    check(b"Content-Type: text/plain\r\n" in head, "curl content type: %r" % head)
    check(b"\r\nContent-Length: 12" in head, "curl content length: %r" % head)
    check(b"\r\nDate: " in head, "curl Date: %r" % head)
    code, out, _ = curl("-i", "--http1.0", s.url + "/")
    check(out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"\r\n\r\nHello, World"),
          "curl --http1.0: %r" % out)
    code, out, _ = curl("-I", s.url + "/")
    check(out.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: 12" in out
          and not out.endswith(b"Hello, World"), "curl -I: %r" % out)
    # Two URLs, one connection.
    code, out, err = curl("-v", s.url + "/a", s.url + "/b")
    check(out == b"Hello, WorldHello, World", "curl two URLs: %r" % out)
    check("Re-using existing connection" in err or "Reusing existing connection" in err,
          "curl reuses the connection: " + err[-400:])
    # 100-continue, then 405 for a POST.
    code, out, err = curl("-v", "-H", "Expect: 100-continue", "--data-binary", "x" * 100,
                          s.url + "/")
    check("HTTP/1.1 100 Continue" in err, "curl gets 100 Continue: " + err[-600:])
    check("HTTP/1.1 405" in err, "POST is 405: " + err[-300:])


def with_http_client(s):
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=20)
    socks = []
    for path in ("/", "/x", "/y?z=1"):
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        check(r.status == 200 and body == b"Hello, World", "http.client %s: %d %r" % (path, r.status, body))
        check(r.getheader("Content-Type") == "text/plain", "http.client type")
        socks.append(c.sock)
    check(socks[0] is socks[1] is socks[2] and socks[0] is not None,
          "http.client keeps one connection alive")
    c.request("HEAD", "/")
    r = c.getresponse()
    check(r.status == 200 and r.read() == b"" and r.getheader("Content-Length") == "12",
          "http.client HEAD")
    c.close()
    # Pipelining: three requests in one send, three responses in order.
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=20)
    sock.sendall(b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(3))
                 + b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    fp = sock.makefile("rb")

    class NoClose:
        # HTTPResponse closes its file after the body: the next response
        # is read from the same buffered file.
        def __getattr__(self, name):
            return getattr(fp, name)

        def close(self):
            pass

    class Shared:
        def makefile(self, *a, **k):
            return NoClose()

    for i in range(4):
        r = http.client.HTTPResponse(Shared())
        r.begin()
        body = r.read()
        check(r.status == 200 and body == b"Hello, World", "pipelined %d: %r" % (i, body))
    check(fp.read() == b"", "closed after Connection: close")
    sock.close()


def with_agent(s):
    from twisted.internet import defer
    from twisted.web.client import Agent, HTTPConnectionPool, readBody

    results = []

    @defer.inlineCallbacks
    def main(reactor):
        pool = HTTPConnectionPool(reactor, persistent=True)
        agent = Agent(reactor, pool=pool)
        for path in (b"/", b"/agent/path"):
            response = yield agent.request(b"GET", s.url.encode() + path)
            body = yield readBody(response)
            results.append((response.code, response.headers.getRawHeaders(b"content-type"), body))
        response = yield agent.request(b"HEAD", s.url.encode() + b"/")
        body = yield readBody(response)
        results.append((response.code, None, body))
        yield pool.closeCachedConnections()

    from twisted.internet import reactor
    d = main(reactor)
    d.addErrback(lambda f: results.append(("error", f.getErrorMessage())))
    d.addBoth(lambda _: reactor.stop())
    reactor.callLater(20, reactor.stop)
    reactor.run()
    check(results[:2] == [(200, [b"text/plain"], b"Hello, World")] * 2, "Agent GETs: %r" % results)
    check(len(results) == 3 and results[2][0] == 200 and results[2][2] == b"", "Agent HEAD: %r" % results)


def with_root():
    base = tempfile.mkdtemp()
    try:
        www = os.path.join(base, "www")
        os.mkdir(www)
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write("<h1>home</h1>")
        with open(os.path.join(www, "big.bin"), "wb") as f:
            f.write(os.urandom(3 << 20))
        with open(os.path.join(base, "secret"), "w") as f:
            f.write("SECRET")
        os.symlink(os.path.join(base, "secret"), os.path.join(www, "link"))
        s = Server("--root=" + www)
        try:
            code, out, _ = curl("-i", s.url + "/")
            check(out.endswith(b"<h1>home</h1>") and b"Content-Type: text/html" in out, "root index: %r" % out)
            code, out, _ = curl(s.url + "/big.bin")
            with open(os.path.join(www, "big.bin"), "rb") as f:
                check(out == f.read(), "big file by curl (%d bytes)" % len(out))
            for path in ("/../secret", "/%2e%2e/secret", "/%2E%2E%2Fsecret", "/..%2f..%2fsecret",
                         "/link"):
                code, out, _ = curl("--path-as-is", "-o", "/dev/null", "-w", "%{http_code}", s.url + path)
                check(out in (b"403", b"404"), "%s gives %r" % (path, out))
            c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=20)
            c.request("GET", "/index.html")
            r = c.getresponse()
            r.read()
            modified = r.getheader("Last-Modified")
            c.request("GET", "/index.html", headers={"If-Modified-Since": modified})
            r = c.getresponse()
            check(r.status == 304 and r.read() == b"", "304 for If-Modified-Since")
            c.close()
        finally:
            s.stop()
    finally:
        shutil.rmtree(base)


def bad_flags():
    for args, want in ((["--max_body=-1"], "hello_http: invalid --max_body -1: must be >= 0 bytes\n"),
                       (["--root=/nonexistent/dir"],
                        "hello_http: --root: cannot open directory /nonexistent/dir: "
                        "No such file or directory\n")):
        r = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=20)
        check(r.returncode == 2 and r.stdout == "" and r.stderr == want,
              "%s: exit %d, %r" % (args, r.returncode, r.stderr))


def main():
    bad_flags()
    s = Server()
    try:
        with_curl(s)
        with_http_client(s)
        with_agent(s)
    finally:
        s.stop()
    with_root()
    if failures:
        print("%d checks failed" % len(failures), file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
