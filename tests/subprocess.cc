#include "tests/subprocess.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "framework/clock.h"
#include "gtest/gtest.h"

namespace twist {
namespace testing {

absl::StatusOr<Subprocess> Subprocess::Start(
    const std::string& path, const std::vector<std::string>& args,
    int max_open_files) {
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    return absl::ErrnoToStatus(errno, "pipe2");
  }
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(path.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return absl::ErrnoToStatus(errno, "fork");
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    // Start from a clean signal mask whatever the test runner blocked.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (max_open_files > 0) {
      rlimit lim = {static_cast<rlim_t>(max_open_files),
                    static_cast<rlim_t>(max_open_files)};
      setrlimit(RLIMIT_NOFILE, &lim);
    }
    execv(path.c_str(), argv.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  Subprocess p;
  p.pid_ = pid;
  p.in_fd_ = in[1];
  p.out_fd_ = out[0];
  p.err_fd_ = err[0];
  return p;
}

Subprocess::Subprocess(Subprocess&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)),
      in_fd_(std::exchange(o.in_fd_, -1)),
      out_fd_(std::exchange(o.out_fd_, -1)),
      err_fd_(std::exchange(o.err_fd_, -1)),
      out_(std::move(o.out_)),
      err_(std::move(o.err_)) {}

Subprocess::~Subprocess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  CloseStdin();
  if (out_fd_ >= 0) close(out_fd_);
  if (err_fd_ >= 0) close(err_fd_);
}

absl::Status Subprocess::WriteStdin(absl::string_view data) {
  if (in_fd_ < 0) return absl::FailedPreconditionError("stdin is closed");
  while (!data.empty()) {
    ssize_t n = ::write(in_fd_, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::ErrnoToStatus(errno, "write to the program's stdin");
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

void Subprocess::CloseStdin() {
  if (in_fd_ >= 0) close(std::exchange(in_fd_, -1));
}

namespace {
// Reads what is available from fd into buf; returns false at EOF.
bool Drain(int fd, std::string* buf) {
  char tmp[4096];
  ssize_t n = read(fd, tmp, sizeof(tmp));
  if (n < 0 && errno == EINTR) return true;
  if (n <= 0) return false;
  buf->append(tmp, static_cast<size_t>(n));
  return true;
}
}  // namespace

absl::StatusOr<std::string> Subprocess::ReadStdoutLine(absl::Duration timeout) {
  MonotonicClock clock;
  const absl::Time deadline = clock.now() + timeout;
  while (true) {
    size_t nl = out_.find('\n');
    if (nl != std::string::npos) {
      std::string line = out_.substr(0, nl);
      out_.erase(0, nl + 1);
      return line;
    }
    absl::Duration left = deadline - clock.now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat(
          "no line on stdout; stderr so far: ", err_));
    }
    pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
    int n = poll(fds, 2, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (n < 0 && errno != EINTR) return absl::ErrnoToStatus(errno, "poll");
    if (fds[1].revents) Drain(err_fd_, &err_);
    if (fds[0].revents && !Drain(out_fd_, &out_)) {
      return absl::OutOfRangeError(absl::StrCat(
          "stdout closed before a full line; stderr: ", err_));
    }
  }
}

void Subprocess::Signal(int sig) { kill(pid_, sig); }

absl::StatusOr<int> Subprocess::Wait(absl::Duration timeout) {
  MonotonicClock clock;
  const absl::Time deadline = clock.now() + timeout;
  bool out_open = true, err_open = true;
  while (out_open || err_open) {
    absl::Duration left = deadline - clock.now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError("program did not exit in time");
    }
    pollfd fds[2] = {{out_open ? out_fd_ : -1, POLLIN, 0},
                     {err_open ? err_fd_ : -1, POLLIN, 0}};
    int n = poll(fds, 2, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (n < 0 && errno != EINTR) return absl::ErrnoToStatus(errno, "poll");
    if (fds[0].revents && !Drain(out_fd_, &out_)) out_open = false;
    if (fds[1].revents && !Drain(err_fd_, &err_)) err_open = false;
  }
  // Both pipes closed: the program has exited (or closed them itself).
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return absl::ErrnoToStatus(errno, "waitpid");
  pid_ = -1;
  return status;
}

std::string RunfilePath(const std::string& relative) {
  const char* dir = getenv("TEST_SRCDIR");
  const char* ws = getenv("TEST_WORKSPACE");
  return absl::StrCat(dir ? dir : ".", "/", ws ? ws : "twist", "/", relative);
}

absl::StatusOr<Address> ParseListening(absl::string_view where) {
  if (absl::ConsumePrefix(&where, "unix:")) return Address::Unix(where);
  const size_t colon = where.rfind(':');
  int port = 0;
  if (colon == absl::string_view::npos || !absl::SimpleAtoi(where.substr(colon + 1), &port)) {
    return absl::InvalidArgumentError(absl::StrCat("no HOST:PORT in '", where, "'"));
  }
  return Address::Parse(where.substr(0, colon), port);
}

absl::StatusOr<ServerProgram> StartListening(const std::string& program,
                                             const std::vector<std::string>& args,
                                             int max_open_files) {
  absl::StatusOr<Subprocess> p =
      Subprocess::Start(RunfilePath(program), args, max_open_files);
  if (!p.ok()) return p.status();
  absl::StatusOr<std::string> line = p->ReadStdoutLine(absl::Seconds(20));
  if (!line.ok()) {
    return absl::Status(line.status().code(),
                        absl::StrCat(program, ": ", line.status().message(),
                                     "; stderr: ", p->err()));
  }
  absl::string_view where = *line;
  if (!absl::ConsumePrefix(&where, "listening on ")) {
    return absl::InternalError(absl::StrCat(program, " said: ", *line));
  }
  absl::StatusOr<Address> address = ParseListening(where);
  if (!address.ok()) {
    return absl::InternalError(
        absl::StrCat(program, " said: ", *line, ": ", address.status().message()));
  }
  return ServerProgram{*std::move(p), *address};
}

absl::StatusOr<ServerProgram> StartServerProgram(const std::string& program,
                                                 std::vector<std::string> args,
                                                 int max_open_files) {
  args.push_back("--port=0");
  return StartListening(program, args, max_open_files);
}

std::string ListenFlag(StreamTransport transport, const SocketDir* dir) {
  switch (transport) {
    case StreamTransport::kTcp:
      return "--listen=tcp:0:interface=127.0.0.1";
    case StreamTransport::kTcp6:
      return "--listen=tcp6:0:interface=\\:\\:1";
    case StreamTransport::kUnix:
      // A colon in the path would end it: \: escapes one, as in Twisted.
      return absl::StrCat("--listen=unix:",
                          absl::StrReplaceAll(dir->path("server.sock"), {{":", "\\:"}}));
    case StreamTransport::kAbstract:
      return absl::StrCat("--listen=unix:", SocketDir::AbstractName("server"));
  }
  return "";
}

std::vector<StreamTransport> AllStreamTransports() {
  return {StreamTransport::kTcp, StreamTransport::kTcp6, StreamTransport::kUnix,
          StreamTransport::kAbstract};
}

std::string TransportParamName(const ::testing::TestParamInfo<StreamTransport>& info) {
  return TransportName(info.param);
}

void ServerProgramTest::SetUp() {
  if (transport() == StreamTransport::kTcp6 && !HasIPv6Loopback()) {
    GTEST_SKIP() << kNoIPv6Loopback;
  }
}

absl::StatusOr<ServerProgram> ServerProgramTest::StartServer(const std::string& program,
                                                             std::vector<std::string> args) {
  const std::string flag = ListenFlag(transport(), &dir_);
  args.push_back(flag);
  absl::StatusOr<ServerProgram> server = StartListening(program, args, 0);
  if (!server.ok()) return server.status();
  const Address& a = server->address;
  // The name the flag gave, without its escapes.
  const std::string unix_name = absl::StrReplaceAll(
      absl::StripPrefix(flag, "--listen=unix:"), {{"\\:", ":"}});
  if (!IsOver(a, transport(), unix_name)) {
    return absl::InternalError(absl::StrCat(program, " ", flag, " listens on ", a.ToString(),
                                            ", not over ", TransportName(transport())));
  }
  return server;
}

void ExpectOneLineFailure(const std::string& program,
                          const std::vector<std::string>& args,
                          const std::string& expected_stderr) {
  absl::StatusOr<Subprocess> p = Subprocess::Start(RunfilePath(program), args);
  ASSERT_TRUE(p.ok()) << p.status();
  absl::StatusOr<int> status = p->Wait(absl::Seconds(20));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) != 0)
      << program << " " << absl::StrJoin(args, " ") << ": status " << *status;
  EXPECT_EQ(p->out(), "");
  EXPECT_EQ(p->err(), expected_stderr + "\n") << absl::StrJoin(args, " ");
}

}  // namespace testing
}  // namespace twist
