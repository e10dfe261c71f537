// The example servers' TLS options from outside (issue 16): --tls_cert and
// --tls_key on echo_server, chat_server and hello_http, and what they
// refuse; HTTPS from hello_http to curl and Python's http.client, keep-alive
// included; the close_notify every TLS client gets when the server is told
// to stop; and the bench's OpenSSL baseline, which must echo too.

#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"
#include "tests/test_util.h"
#include "tests/tls_certs.h"

namespace twist {
namespace {

using testing::Certs;
using testing::ServerProgram;
using testing::StartServerProgram;
using testing::Subprocess;

std::vector<std::string> TlsFlags() {
  return {"--tls_cert=" + Certs().pem("server"), "--tls_key=" + Certs().key("server")};
}

ServerProgram Start(const std::string& program, std::vector<std::string> args) {
  absl::StatusOr<ServerProgram> s = StartServerProgram(program, std::move(args));
  if (!s.ok()) {
    ADD_FAILURE() << program << ": " << s.status();
    abort();
  }
  return *std::move(s);
}

struct Outcome {
  std::string first;
  std::string out, err;
  int status = -1;  // the wait status
};

// Runs `path` with `args` to its end.
// With `first_line`, stdin stays open until the program has printed a line
// (s_client quits at the end of its input without waiting for the answer).
Outcome RunToEnd(const std::string& path, const std::vector<std::string>& args,
                 absl::string_view stdin_data = "", bool first_line = false) {
  Outcome r;
  absl::StatusOr<Subprocess> p = Subprocess::Start(path, args);
  if (!p.ok()) {
    r.err = p.status().ToString();
    return r;
  }
  if (!stdin_data.empty()) (void)p->WriteStdin(stdin_data);
  if (first_line) {
    absl::StatusOr<std::string> line = p->ReadStdoutLine(absl::Seconds(20));
    if (line.ok()) r.first = *line + "\n";
  }
  p->CloseStdin();
  absl::StatusOr<int> status = p->Wait(absl::Seconds(60));
  r.out = r.first + p->out();
  r.err = p->err();
  r.status = status.ok() ? *status : -1;
  return r;
}

// Python's ssl client: 256 KiB echoed, then "TLSv1.3" and a clean close.
constexpr char kPythonEcho[] = R"(
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=20),
                    server_hostname="localhost")
data = bytes(range(256)) * 1024
s.sendall(data)
got = b""
while len(got) < len(data):
    chunk = s.recv(65536)
    if not chunk:
        break
    got += chunk
assert got == data, "echo differs after %d bytes" % len(got)
print(s.version())
s.unwrap()
)";

Outcome PythonEcho(const Address& server) {
  return RunToEnd("/usr/bin/python3",
             {"-c", kPythonEcho, absl::StrCat(server.port()), Certs().pem("ca")});
}

// ---- --tls_cert / --tls_key ---------------------------------------------------

TEST(TlsFlagsTest, EchoServerServesTlsOnHostAndPort) {
  ServerProgram s = Start("examples/echo_server", TlsFlags());
  EXPECT_EQ(s.address.ToString(), absl::StrCat("127.0.0.1:", s.address.port()));
  Outcome r = PythonEcho(s.address);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "TLSv1.3\n") << r.err;
}

// The flags make an ssl: endpoint like any other: --threads and --workers
// serve it in TLS too.
TEST(TlsFlagsTest, EchoServerServesTlsWithThreadsAndWorkers) {
  for (const char* cores : {"--threads=2", "--workers=2"}) {
    SCOPED_TRACE(cores);
    std::vector<std::string> args = TlsFlags();
    args.push_back(cores);
    ServerProgram s = Start("examples/echo_server", args);
    for (int i = 0; i < 2; ++i) {
      Outcome r = PythonEcho(s.address);
      EXPECT_EQ(r.status, 0) << r.out << r.err;
      EXPECT_EQ(r.out, "TLSv1.3\n") << r.err;
    }
  }
}

TEST(TlsFlagsTest, ChatServerServesTls) {
  ServerProgram s = Start("examples/chat_server", TlsFlags());
  Outcome r = RunToEnd("/usr/bin/openssl",
                  {"s_client", "-connect", absl::StrCat("127.0.0.1:", s.address.port()),
                   "-CAfile", Certs().pem("ca"), "-verify_hostname", "localhost",
                   "-verify_return_error", "-quiet", "-no_ign_eof"},
                  "alice\r\n", /*first_line=*/true);
  EXPECT_TRUE(absl::StrContains(r.out, "What's your name?")) << r.out << r.err;
}

// Every bad combination is one line on stderr naming the problem, and exit 2.
TEST(TlsFlagsTest, BadCombinationsAreOneLineAndExitTwo) {
  const std::string cert = "--tls_cert=" + Certs().pem("server");
  const std::string key = "--tls_key=" + Certs().key("server");
  // Readable, but neither a certificate nor a key.
  testing::SocketDir dir;
  const std::string not_pem = dir.path("not.pem");
  {
    FILE* f = fopen(not_pem.c_str(), "w");
    ASSERT_NE(f, nullptr);
    fputs("this is not PEM\n", f);
    fclose(f);
  }
  const std::string ssl_listen = "--listen=ssl:0:interface=127.0.0.1:privateKey=";
  struct Case {
    std::string program;
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"examples/echo_server", {cert}, "--tls_cert needs --tls_key"},
      {"examples/hello_http", {key}, "--tls_key needs --tls_cert"},
      {"examples/echo_server", {"--tls_cert=/nonexistent/cert.pem", key},
       "--tls_cert=/nonexistent/cert.pem: cannot read it: No such file or directory"},
      {"examples/chat_server", {cert, "--tls_key=/nonexistent/key.pem"},
       "--tls_key=/nonexistent/key.pem: cannot read it"},
      {"examples/echo_server", {cert, key, "--listen=tcp:0"},
       "--tls_cert/--tls_key and --listen both say how to listen"},
      {"examples/coro_echo_server", {cert, key}, "this server does not serve TLS"},
      {"examples/udp_echo_server", {cert, key}, "a datagram server has no TLS"},
      // Files that are there but are no certificate or key: flags, not a
      // failure to listen.
      {"examples/echo_server", {"--tls_cert=" + not_pem, key},
       "--tls_cert/--tls_key: cannot read the certificate chain " + not_pem + ": "},
      {"examples/hello_http", {cert, "--tls_key=" + not_pem},
       "--tls_cert/--tls_key: cannot read the private key " + not_pem + ": "},
      {"examples/chat_server", {cert, "--tls_key=" + Certs().key("client")},
       "--tls_cert/--tls_key: cannot read the private key " + Certs().key("client") +
           ": key values mismatch"},
      {"examples/echo_server", {ssl_listen + not_pem + ":certKey=" + Certs().pem("server")},
       ": cannot read the private key " + not_pem + ": "},
      {"examples/echo_server", {ssl_listen + not_pem + ":certKey=" + Certs().pem("server"),
                                "--threads=2"},
       ": cannot read the private key " + not_pem + ": "},
      {"examples/echo_server", {"--tls_cert=" + not_pem, key, "--workers=2"},
       "cannot read the certificate chain " + not_pem},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat(c.program, " ", absl::StrJoin(c.args, " ")));
    Outcome r = RunToEnd(testing::RunfilePath(c.program), c.args);
    EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 2) << r.status << r.err;
    EXPECT_EQ(r.out, "");
    std::vector<std::string> lines = absl::StrSplit(r.err, '\n', absl::SkipEmpty());
    ASSERT_EQ(lines.size(), 1u) << r.err;
    const std::string name = c.program.substr(c.program.rfind('/') + 1);
    EXPECT_TRUE(absl::StartsWith(lines[0], name + ": ")) << lines[0];
    EXPECT_TRUE(absl::StrContains(lines[0], c.says)) << lines[0];
  }
}

// ---- HTTPS from hello_http ---------------------------------------------------------

TEST(HttpsTest, CurlGetsHelloTwiceOverOneConnection) {
  for (bool flags : {true, false}) {
    SCOPED_TRACE(flags ? "--tls_cert/--tls_key" : "--listen=ssl:");
    std::vector<std::string> args = TlsFlags();
    if (!flags) {
      args = {"--listen=ssl:0:interface=127.0.0.1:privateKey=" + Certs().key("server") +
              ":certKey=" + Certs().pem("server")};
    }
    absl::StatusOr<Subprocess> p =
        Subprocess::Start(testing::RunfilePath("examples/hello_http"),
                          flags ? std::vector<std::string>{args[0], args[1], "--port=0"} : args);
    ASSERT_TRUE(p.ok()) << p.status();
    absl::StatusOr<std::string> line = p->ReadStdoutLine(absl::Seconds(20));
    ASSERT_TRUE(line.ok()) << line.status();
    absl::string_view where = *line;
    ASSERT_TRUE(absl::ConsumePrefix(&where, "listening on ")) << *line;
    absl::StatusOr<Address> a = testing::ParseListening(where);
    ASSERT_TRUE(a.ok());
    const std::string url = absl::StrCat("https://localhost:", a->port(), "/");
    // Two URLs in one curl: the second reuses the first's connection
    // (num_connects 0) when keep-alive works through TLS.
    Outcome r = RunToEnd("/usr/bin/curl",
                    {"-sS", "--cacert", Certs().pem("ca"), "-w", " %{http_code} %{num_connects}\n",
                     url, url + "again"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "Hello, World 200 1\nHello, World 200 0\n") << r.err;
    // Without the CA, curl refuses the certificate: it is really TLS.
    Outcome untrusted = RunToEnd("/usr/bin/curl", {"-sS", url});
    EXPECT_NE(untrusted.status, 0) << untrusted.out;
    p->Signal(SIGTERM);
    absl::StatusOr<int> status = p->Wait(absl::Seconds(20));
    ASSERT_TRUE(status.ok());
    EXPECT_EQ(*status, 0) << p->err();
  }
}

// A --root for hello_http: big.bin (`big` bytes of a pattern) and
// small.txt ("small\n").
void WriteRoot(const testing::SocketDir& dir, size_t big) {
  std::string data(big, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 7919) >> 3);
  FILE* f = fopen(dir.path("big.bin").c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(fwrite(data.data(), 1, data.size(), f), data.size());
  fclose(f);
  f = fopen(dir.path("small.txt").c_str(), "wb");
  ASSERT_NE(f, nullptr);
  fputs("small\n", f);
  fclose(f);
}

// http.client over ssl: three requests on one keep-alive connection, then a
// file of 3 MiB (File's producer, through the TLS layer), byte-exact.
constexpr char kPythonHttps[] = R"(
import http.client, os, ssl, sys
port, ca, big = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
c = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=20)
socks = set()
for path in ("/small.txt", "/small.txt", "/big.bin"):
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    socks.add(id(c.sock))
    want = open(os.path.join(os.path.dirname(big), path[1:]), "rb").read()
    assert r.status == 200, r.status
    assert body == want, "%s: %d bytes, want %d" % (path, len(body), len(want))
    print(path, r.status, len(body), r.getheader("Connection") or "keep-alive")
print("connections", len(socks), c.sock.version())
c.close()
)";

TEST(HttpsTest, PythonHttpClientKeepsTheConnectionAndGetsFilesWhole) {
  testing::SocketDir dir;
  const std::string big = dir.path("big.bin");
  ASSERT_NO_FATAL_FAILURE(WriteRoot(dir, 3 << 20));
  std::vector<std::string> args = TlsFlags();
  args.push_back("--root=" + big.substr(0, big.rfind('/')));
  ServerProgram s = Start("examples/hello_http", args);
  Outcome r = RunToEnd("/usr/bin/python3",
                  {"-c", kPythonHttps, absl::StrCat(s.address.port()), Certs().pem("ca"), big});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out,
            "/small.txt 200 6 keep-alive\n/small.txt 200 6 keep-alive\n"
            "/big.bin 200 3145728 keep-alive\nconnections 1 TLSv1.3\n")
      << r.err;
}

// Responses that end in a close, over TLS: HTTP/1.0 and "Connection:
// close", each read to the end; the body must be whole and the end a
// close_notify. The channel used to close before writing what it had
// gathered, and the TLS layer (rightly) drops writes after close_notify:
// curl got an empty reply and a 5 MB file lost its last 19 KiB.
constexpr char kPythonHttpsClose[] = R"(
import os, socket, ssl, sys
port, ca, root = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
for version, extra in (("1.0", ""), ("1.1", "Connection: close\r\n")):
    for path in ("/small.txt", "/big.bin", "/nope"):
        raw = socket.create_connection(("127.0.0.1", port), timeout=20)
        s = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
        s.sendall(("GET %s HTTP/%s\r\nHost: localhost\r\n%s\r\n" % (path, version, extra)).encode())
        got, end = b"", "close_notify"
        while True:
            try:
                data = s.recv(65536)
            except ssl.SSLEOFError:
                end = "truncated"
                break
            if not data:
                break
            got += data
        head, _, body = got.partition(b"\r\n\r\n")
        status = head.split(b" ")[1].decode() if head else "none"
        length = [l.split(b":")[1].strip() for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
        whole = bool(length) and int(length[0]) == len(body)
        if status == "200":
            whole = whole and body == open(os.path.join(root, path[1:]), "rb").read()
        print(version, path, status, len(body), "whole" if whole else "cut", end)
)";

TEST(HttpsTest, ResponsesThatEndInACloseArriveWhole) {
  testing::SocketDir dir;
  ASSERT_NO_FATAL_FAILURE(WriteRoot(dir, 5000000));
  std::vector<std::string> args = TlsFlags();
  args.push_back("--root=" + dir.path(""));
  ServerProgram s = Start("examples/hello_http", args);
  Outcome r = RunToEnd("/usr/bin/python3", {"-c", kPythonHttpsClose,
                                            absl::StrCat(s.address.port()), Certs().pem("ca"),
                                            dir.path("")});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out,
            "1.0 /small.txt 200 6 whole close_notify\n"
            "1.0 /big.bin 200 5000000 whole close_notify\n"
            "1.0 /nope 404 9 whole close_notify\n"
            "1.1 /small.txt 200 6 whole close_notify\n"
            "1.1 /big.bin 200 5000000 whole close_notify\n"
            "1.1 /nope 404 9 whole close_notify\n")
      << r.err;
}

// ---- close_notify when the server stops ------------------------------------------

// Three Python ssl clients, each answered once (an echo, or an HTTP
// response), then told apart by how their connection ends: "close_notify"
// (recv returns b'' on the peer's close_notify) or "truncated" (the TCP
// stream ended without one). Debian's Python sets OP_IGNORE_UNEXPECTED_EOF
// by default, which makes a bare end look like close_notify: cleared here.
constexpr char kPythonWaitsForTheEnd[] = R"(
import socket, ssl, sys
port, ca, http = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "http"
ctx = ssl.create_default_context(cafile=ca)
ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
conns = []
for i in range(3):
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    s = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n" if http else b"x")
    want, got = (b"Hello, World", b"") if http else (b"x", b"")
    while not got.endswith(want):
        got += s.recv(1000)
    conns.append(s)
print("ready", flush=True)
for s in conns:
    try:
        data = s.recv(100)
        print("close_notify" if data == b"" else "data %r" % data)
    except (ssl.SSLEOFError, ssl.SSLError) as e:
        print("truncated" if "EOF" in str(e) else "error %s" % e)
    except Exception as e:
        print("error", type(e).__name__, e)
)";

TEST(TlsShutdownTest, EveryClientGetsCloseNotifyBeforeTheFin) {
  for (const char* program : {"examples/echo_server", "examples/hello_http"}) {
    SCOPED_TRACE(program);
    ServerProgram s = Start(program, TlsFlags());
    absl::StatusOr<Subprocess> client = Subprocess::Start(
        "/usr/bin/python3",
        {"-c", kPythonWaitsForTheEnd, absl::StrCat(s.address.port()), Certs().pem("ca"),
         absl::StrContains(program, "http") ? "http" : "echo"});
    ASSERT_TRUE(client.ok()) << client.status();
    absl::StatusOr<std::string> ready = client->ReadStdoutLine(absl::Seconds(20));
    ASSERT_TRUE(ready.ok()) << ready.status() << client->err();
    ASSERT_EQ(*ready, "ready");
    s.process.Signal(SIGTERM);
    absl::StatusOr<int> server_status = s.process.Wait(absl::Seconds(20));
    ASSERT_TRUE(server_status.ok());
    EXPECT_EQ(*server_status, 0) << s.process.err();
    absl::StatusOr<int> client_status = client->Wait(absl::Seconds(20));
    ASSERT_TRUE(client_status.ok());
    EXPECT_EQ(*client_status, 0) << client->err();
    EXPECT_EQ(client->out(), "close_notify\nclose_notify\nclose_notify\n") << client->err();
  }
}

// ---- The bench's baseline -------------------------------------------------------

TEST(BaselineTlsEchoServerTest, EchoesOverTls) {
  ServerProgram s = Start("bench/baseline_tls_echo_server", TlsFlags());
  Outcome r = PythonEcho(s.address);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "TLSv1.3\n") << r.err;
}

}  // namespace
}  // namespace twist
