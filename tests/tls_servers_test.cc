// The example servers' TLS options from outside (issue 16): --tls_cert and
// --tls_key on echo_server and chat_server, and what they refuse; and the
// bench's OpenSSL baseline, which must echo too.

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
      {"examples/echo_server", {cert, key, "--threads=2"}, "--threads cannot serve TLS"},
      {"examples/echo_server", {cert, key, "--workers=2"}, "--workers cannot serve TLS"},
      {"examples/echo_server",
       {"--listen=ssl:0:privateKey=" + Certs().key("server") + ":certKey=" +
            Certs().pem("server"),
        "--threads=2"},
       "--threads cannot serve TLS"},
      {"examples/coro_echo_server", {cert, key}, "this server does not serve TLS"},
      {"examples/udp_echo_server", {cert, key}, "a datagram server has no TLS"},
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

// ---- The bench's baseline -------------------------------------------------------

TEST(BaselineTlsEchoServerTest, EchoesOverTls) {
  ServerProgram s = Start("bench/baseline_tls_echo_server", TlsFlags());
  Outcome r = PythonEcho(s.address);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "TLSv1.3\n") << r.err;
}

}  // namespace
}  // namespace twist
