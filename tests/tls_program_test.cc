// The example servers over TLS (--listen=ssl:...), checked from outside
// with real clients: Python's ssl module, openssl s_client, Twisted's TLS
// client, twist's echo_client, and a plain OpenSSL client that never reads.

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "framework/address.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"
#include "tests/test_util.h"
#include "tests/tls_certs.h"

namespace twist {
namespace {

using testing::BlockingClient;
using testing::Subprocess;
using testing::Certs;
using testing::ProcStatusKiB;
using testing::StreamByte;
using testing::TestCerts;

struct Server {
  Subprocess process;
  Address address;
};

// `program` serving TLS on 127.0.0.1 with the server certificate.
Server StartTlsServer(const std::string& program = "examples/echo_server",
                      const std::string& extra = "") {
  const std::string listen =
      absl::StrCat("--listen=ssl:0:interface=127.0.0.1:privateKey=", Certs().key("server"),
                   ":certKey=", Certs().pem("server"), extra);
  absl::StatusOr<Subprocess> p = Subprocess::Start(testing::RunfilePath(program), {listen});
  if (!p.ok()) {
    ADD_FAILURE() << p.status();
    abort();
  }
  absl::StatusOr<std::string> line = p->ReadStdoutLine(absl::Seconds(20));
  absl::string_view where = line.ok() ? absl::string_view(*line) : "";
  if (!absl::ConsumePrefix(&where, "listening on ")) {
    ADD_FAILURE() << "no listening line: " << (line.ok() ? *line : line.status().ToString())
                  << " stderr: " << p->err();
    abort();
  }
  absl::StatusOr<Address> a = testing::ParseListening(where);
  if (!a.ok()) abort();
  return Server{*std::move(p), *a};
}

// Runs `program` with `args` to its end; returns its stdout, stderr and
// exit status.
struct Outcome {
  std::string out, err;
  int status = -1;
};
Outcome RunProgram(const std::string& program, const std::vector<std::string>& args,
               absl::string_view stdin_data = "", bool close_stdin = true) {
  Outcome r;
  absl::StatusOr<Subprocess> p = Subprocess::Start(program, args);
  if (!p.ok()) {
    r.err = p.status().ToString();
    return r;
  }
  if (!stdin_data.empty()) (void)p->WriteStdin(stdin_data);
  if (!close_stdin) {
    // s_client stops at the end of its input without waiting for the
    // answer: the first line of the answer comes first.
    absl::StatusOr<std::string> line = p->ReadStdoutLine(absl::Seconds(20));
    if (line.ok()) r.out = *line + "\n";
  }
  p->CloseStdin();
  absl::StatusOr<int> status = p->Wait(absl::Seconds(60));
  r.out += p->out();
  r.err = p->err();
  r.status = status.ok() ? *status : -1;
  return r;
}

// Python's ssl client: sends 1 MiB (64 KiB at a time, reading each back), checks
// the echo, prints the TLS version, and closes with close_notify (unwrap).
constexpr char kPythonClient[] = R"(
import socket, ssl, sys
port, ca, host = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca or None)
if len(sys.argv) > 4 and sys.argv[4] == "tls1.1":
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("ALL:@SECLEVEL=0")
try:
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    s = ctx.wrap_socket(raw, server_hostname=host)
except (ssl.SSLError, OSError) as e:
    print("handshake failed:", e)
    sys.exit(3)
data = bytes(range(256)) * 4096
# One SSL object must not be read and written by two threads at once (it
# corrupts the client's records): 64 KiB out, then its echo back, in turn.
got = bytearray()
for i in range(0, len(data), 65536):
    s.sendall(data[i:i + 65536])
    while len(got) < i + 65536:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
assert bytes(got) == data, "echo differs after %d bytes" % len(got)
print(s.version())
s.unwrap()
s.close()
)";

TEST(TlsProgramTest, PythonSslClientGetsItsMegabyteBack) {
  Server s = StartTlsServer();
  Outcome r = RunProgram("/usr/bin/python3", {"-c", kPythonClient,
                                          absl::StrCat(s.address.port()), Certs().pem("ca"),
                                          "localhost"});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "TLSv1.3\n") << r.err;
}

TEST(TlsProgramTest, OpenSslSClientOverTls12AndTls13) {
  Server s = StartTlsServer();
  for (const char* version : {"-tls1_2", "-tls1_3"}) {
    SCOPED_TRACE(version);
    Outcome r = RunProgram("/usr/bin/openssl",
                       {"s_client", "-connect", absl::StrCat("127.0.0.1:", s.address.port()),
                        "-CAfile", Certs().pem("ca"), "-verify_hostname", "localhost",
                        "-verify_return_error", "-servername", "localhost", version, "-quiet",
                        "-no_ign_eof"},
                       "hello from s_client\n", /*close_stdin=*/false);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "hello from s_client\n") << r.err;
  }
}

constexpr char kTwistedClient[] = R"(
import sys
from twisted.internet import reactor, protocol
from twisted.internet.ssl import Certificate, optionsForClientTLS
port, ca = int(sys.argv[1]), sys.argv[2]
options = optionsForClientTLS(u"localhost", Certificate.loadPEM(open(ca).read()))
class Client(protocol.Protocol):
    got = b""
    def connectionMade(self):
        self.transport.write(b"twisted says hi" * 1000)
    def dataReceived(self, data):
        self.got += data
        if self.got == b"twisted says hi" * 1000:
            print("echoed", self.transport.getPeerCertificate().get_subject().CN)
            self.transport.loseConnection()
    def connectionLost(self, reason):
        print("lost", reason.type.__name__)
        reactor.stop()
reactor.connectSSL("127.0.0.1", port, protocol.ClientFactory.forProtocol(Client), options)
reactor.callLater(20, reactor.stop)
reactor.run()
)";

TEST(TlsProgramTest, TwistedTlsClientIsEchoedAndClosesCleanly) {
  Server s = StartTlsServer();
  Outcome r = RunProgram("/usr/bin/python3",
                     {"-c", kTwistedClient, absl::StrCat(s.address.port()), Certs().pem("ca")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "echoed localhost\nlost ConnectionDone\n") << r.err;
}

TEST(TlsProgramTest, EchoClientConnectsWithTls) {
  Server s = StartTlsServer();
  Outcome r = RunProgram(testing::RunfilePath("examples/echo_client"),
                     {absl::StrCat("--connect=tls:host=localhost:port=", s.address.port(),
                                   ":caCertsFile=", Certs().pem("ca")),
                      "--connections=20", "--messages=10", "--size=5000"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(absl::StartsWith(r.out, "connections=20 messages=200 bytes=1000000 errors=0"))
      << r.out << r.err;
  // Against the wrong CA: one line saying why.
  r = RunProgram(testing::RunfilePath("examples/echo_client"),
                 {absl::StrCat("--connect=tls:host=localhost:port=", s.address.port(),
                               ":caCertsFile=", Certs().pem("other_ca"))});
  EXPECT_NE(r.status, 0);
  EXPECT_TRUE(absl::StrContains(r.err, "certificate verify failed")) << r.err;
}

TEST(TlsProgramTest, ChatServerServesTls) {
  Server s = StartTlsServer("examples/chat_server");
  Outcome r = RunProgram("/usr/bin/openssl",
                     {"s_client", "-connect", absl::StrCat("127.0.0.1:", s.address.port()),
                      "-CAfile", Certs().pem("ca"), "-verify_hostname", "localhost",
                      "-verify_return_error", "-quiet", "-no_ign_eof"},
                     "alice\r\n", /*close_stdin=*/false);
  EXPECT_TRUE(absl::StrContains(r.out, "What's your name?")) << r.out << r.err;
}

TEST(TlsProgramTest, FailedHandshakesAreLoggedOnceAndNeverStopTheServer) {
  Server s = StartTlsServer();
  const std::string port = absl::StrCat(s.address.port());
  // Plain text to the TLS port.
  {
    absl::StatusOr<BlockingClient> c = BlockingClient::Connect(s.address);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c->SendAll("GET / HTTP/1.0\r\n\r\n").ok());
    EXPECT_TRUE(c->ReadUntilClosed().ok());
  }
  // A client that trusts another CA, one that checks another name, one
  // that speaks TLS 1.1 at most.
  Outcome unknown_ca = RunProgram("/usr/bin/python3",
                              {"-c", kPythonClient, port, Certs().pem("other_ca"), "localhost"});
  EXPECT_EQ(unknown_ca.status >> 8, 3) << unknown_ca.out << unknown_ca.err;
  Outcome wrong_name = RunProgram("/usr/bin/python3",
                              {"-c", kPythonClient, port, Certs().pem("ca"), "wrong.example"});
  EXPECT_EQ(wrong_name.status >> 8, 3) << wrong_name.out << wrong_name.err;
  Outcome old = RunProgram("/usr/bin/python3",
                       {"-c", kPythonClient, port, Certs().pem("ca"), "localhost", "tls1.1"});
  EXPECT_EQ(old.status >> 8, 3) << old.out << old.err;
  // The server still serves.
  Outcome good = RunProgram("/usr/bin/python3",
                        {"-c", kPythonClient, port, Certs().pem("ca"), "localhost"});
  EXPECT_EQ(good.status, 0) << good.out << good.err;

  s.process.Signal(SIGTERM);
  absl::StatusOr<int> status = s.process.Wait(absl::Seconds(20));
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(*status, 0) << s.process.err();
  std::vector<std::string> lines = absl::StrSplit(s.process.err(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 4u) << s.process.err();
  const char* expected[] = {"does not speak TLS", "alert unknown ca", "alert bad certificate",
                            "unsupported protocol"};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_TRUE(absl::StartsWith(lines[i], "twist: TLS handshake with 127.0.0.1:")) << lines[i];
    EXPECT_TRUE(absl::StrContains(lines[i], expected[i])) << lines[i];
  }
}

// ---- The slow reader ----------------------------------------------------------

// The plain echo server's bound (hostile_peer_test), through TLS: a client
// that sends 200 MB and reads nothing stalls the server's reading, and the
// server's memory stays small; then it reads, and every byte comes back.
TEST(TlsProgramTest, ClientThatNeverReadsKeepsServerMemoryBounded) {
  // Under AddressSanitizer, freed memory waits in a quarantine (256 MB by
  // default) before it is reused: OpenSSL's record buffers, given back
  // between records, would fill it and the peak would measure ASan. A
  // small one keeps the check about the server.
  if (const char* asan = getenv("ASAN_OPTIONS")) {
    setenv("ASAN_OPTIONS", absl::StrCat(asan, ":quarantine_size_mb=4").c_str(), 1);
  }
  Server s = StartTlsServer();
  const int64_t rss_at_start = ProcStatusKiB(s.process.pid(), "VmRSS");
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::connect(fd, s.address.sockaddr_ptr(), s.address.length()), 0);
  ::fcntl(fd, F_SETFL, O_NONBLOCK);
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_load_verify_locations(ctx, Certs().pem("ca").c_str(), nullptr);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  SSL* ssl = SSL_new(ctx);
  SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_set_fd(ssl, fd);
  SSL_set1_host(ssl, "localhost");
  const absl::Time handshake_deadline = absl::Now() + absl::Seconds(20);
  for (;;) {
    int r = SSL_connect(ssl);
    if (r == 1) break;
    int e = SSL_get_error(ssl, r);
    ASSERT_TRUE(e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) << e;
    ASSERT_LT(absl::Now(), handshake_deadline);
    pollfd p = {fd, static_cast<short>(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
    ::poll(&p, 1, 1000);
  }

  constexpr uint64_t kTotal = 200ull << 20;
  std::string chunk(256 * 1024, '\0');
  uint64_t sent = 0, received = 0;
  auto fill = [&](uint64_t from, size_t n) {
    for (size_t i = 0; i < n; ++i) chunk[i] = StreamByte(from + i);
  };
  auto send_some = [&] {
    size_t n = std::min<uint64_t>(chunk.size(), kTotal - sent);
    fill(sent, n);
    int w = SSL_write(ssl, chunk.data(), static_cast<int>(n));
    if (w > 0) sent += static_cast<uint64_t>(w);
    return w > 0 || SSL_get_error(ssl, w) == SSL_ERROR_WANT_WRITE;
  };
  // Phase 1: write, never read, until the server stops taking more.
  while (sent < kTotal) {
    pollfd p = {fd, POLLOUT, 0};
    int r = ::poll(&p, 1, 1000);
    ASSERT_GE(r, 0);
    if (r == 0) break;  // stalled
    ASSERT_TRUE(send_some()) << ERR_error_string(ERR_get_error(), nullptr);
  }
  const int64_t rss_stalled = ProcStatusKiB(s.process.pid(), "VmRSS");
  ASSERT_LT(sent, kTotal) << "never stalled: is the TLS server reading without bound?";
  std::cout << "stalled after " << sent << " bytes; server VmRSS " << rss_at_start
            << " KiB at start, " << rss_stalled << " KiB stalled\n";
  EXPECT_LT(rss_stalled, 64 * 1024);
  ::testing::Test::RecordProperty("server_rss_stalled_kib", std::to_string(rss_stalled));

  // Phase 2: read too; every byte comes back in order.
  std::string in(64 * 1024, '\0');
  const absl::Time deadline = absl::Now() + absl::Seconds(240);
  while (received < kTotal && absl::Now() < deadline) {
    pollfd p = {fd, static_cast<short>(POLLIN | (sent < kTotal ? POLLOUT : 0)), 0};
    ASSERT_GE(::poll(&p, 1, 1000), 0);
    for (;;) {
      int n = SSL_read(ssl, in.data(), static_cast<int>(in.size()));
      if (n <= 0) {
        int e = SSL_get_error(ssl, n);
        ASSERT_TRUE(e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            << "SSL_read: " << e << " after " << received;
        break;
      }
      for (int i = 0; i < n; ++i) {
        ASSERT_EQ(in[i], StreamByte(received + i)) << "at byte " << received + i;
      }
      received += static_cast<uint64_t>(n);
    }
    if ((p.revents & POLLOUT) && sent < kTotal) {
      ASSERT_TRUE(send_some());
    }
  }
  EXPECT_EQ(received, kTotal);
  const int64_t peak = ProcStatusKiB(s.process.pid(), "VmHWM");
  std::cout << "server VmHWM " << peak << " KiB over " << kTotal << " bytes\n";
  EXPECT_LT(peak, 64 * 1024);
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  ::close(fd);
}

}  // namespace
}  // namespace twist
