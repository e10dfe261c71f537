// The echo_client program against the echo_server program, and against a
// server that corrupts or cuts its echo: the summary line, the exit status
// and the one-line errors, exactly as a user sees them.

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "framework/protocol.h"
#include "framework/reactor.h"
#include "framework/tcp_port.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using testing::Subprocess;

constexpr absl::Duration kWait = absl::Seconds(60);

struct ClientRun {
  int exit_code = -1;
  std::string out, err;
};

ClientRun RunClient(const std::vector<std::string>& args) {
  absl::StatusOr<Subprocess> p =
      Subprocess::Start(testing::RunfilePath("examples/echo_client"), args);
  EXPECT_TRUE(p.ok()) << p.status();
  absl::StatusOr<int> status = p->Wait(kWait);
  EXPECT_TRUE(status.ok()) << status.status();
  ClientRun r;
  EXPECT_TRUE(WIFEXITED(*status)) << "killed by signal " << WTERMSIG(*status);
  r.exit_code = WEXITSTATUS(*status);
  r.out = p->out();
  r.err = p->err();
  return r;
}

int StartEchoServer(std::unique_ptr<Subprocess>* server,
                    std::vector<std::string> args = {}) {
  absl::StatusOr<testing::ServerProgram> s =
      testing::StartServerProgram("examples/echo_server", std::move(args));
  if (!s.ok()) {
    ADD_FAILURE() << s.status();
    abort();
  }
  *server = std::make_unique<Subprocess>(std::move(s->process));
  return s->address.port();
}

// A port on 127.0.0.1 where a connect is refused while this object lives:
// bound, never listening, so no other socket can listen there meanwhile.
class RefusedPort {
 public:
  RefusedPort() {
    Address any = *Address::Parse("127.0.0.1", 0);
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::bind(fd_, any.sockaddr_ptr(), any.length()) != 0) {
      ADD_FAILURE() << "bind: " << strerror(errno);
    }
    port_ = Address::LocalOf(fd_)->port();
  }
  ~RefusedPort() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// A listener on 127.0.0.1 that completes no handshake: its accept queue
// (backlog 0 holds one) is full with a connection nobody accepts, and Linux
// drops the SYNs of a listener whose queue is full.
class Blackhole {
 public:
  Blackhole() {
    Address any = *Address::Parse("127.0.0.1", 0);
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::bind(listener_, any.sockaddr_ptr(), any.length()) != 0 ||
        ::listen(listener_, 0) != 0) {
      ADD_FAILURE() << "listen: " << strerror(errno);
    }
    Address bound = *Address::LocalOf(listener_);
    port_ = bound.port();
    queued_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(queued_, bound.sockaddr_ptr(), bound.length()) != 0) {
      ADD_FAILURE() << "connect: " << strerror(errno);
    }
  }
  ~Blackhole() {
    ::close(queued_);
    ::close(listener_);
  }
  int port() const { return port_; }

 private:
  int listener_ = -1, queued_ = -1;
  int port_ = 0;
};

// The most threads process `pid` had at once while `running` held, sampled
// from /proc every millisecond or so.
class ThreadSampler {
 public:
  explicit ThreadSampler(pid_t pid)
      : thread_([this, pid] {
          while (!done_.load()) {
            std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
            std::string line;
            while (std::getline(status, line)) {
              int n;
              if (absl::StartsWith(line, "Threads:") &&
                  absl::SimpleAtoi(absl::StripAsciiWhitespace(line.substr(8)), &n)) {
                max_ = std::max(max_.load(), n);
                samples_.fetch_add(1);
              }
            }
            usleep(500);
          }
        }) {}
  int Stop() {
    done_.store(true);
    thread_.join();
    return max_.load();
  }
  int samples() const { return samples_.load(); }

 private:
  std::atomic<bool> done_{false};
  std::atomic<int> max_{0};
  std::atomic<int> samples_{0};
  std::thread thread_;
};

TEST(EchoClientTest, TwoThousandConnectionsAgainstTheEchoServer) {
  std::unique_ptr<Subprocess> server;
  const int port = StartEchoServer(&server);
  ClientRun r = RunClient({absl::StrCat("--port=", port), "--connections=2000",
                     "--messages=5", "--size=100"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::regex_match(
      r.out, std::regex("connections=2000 messages=10000 bytes=1000000 errors=0 "
                        "seconds=[0-9]+\\.[0-9][0-9]\n")))
      << r.out;
  EXPECT_EQ(r.err, "");  // stderr is not a terminal: no progress
}

TEST(EchoClientTest, EveryReactorAndIPv6) {
  if (!testing::HasIPv6Loopback()) GTEST_SKIP() << "no IPv6 loopback (::1) here";
  std::unique_ptr<Subprocess> server;
  const std::string port = absl::StrCat(StartEchoServer(&server, {"--host=::1"}));
  for (const char* reactor : {"epoll", "poll", "select"}) {
    ClientRun r = RunClient({"--host=::1", "--port=" + port, "--connections=200",
                       "--messages=3", absl::StrCat("--reactor=", reactor)});
    EXPECT_EQ(r.exit_code, 0) << reactor << ": " << r.err;
    EXPECT_TRUE(absl::StartsWith(r.out, "connections=200 messages=600 bytes=38400 errors=0 "))
        << reactor << ": " << r.out;
  }
}

TEST(EchoClientTest, NothingListeningIsOneLineOnStderr) {
  RefusedPort refused;
  const int port = refused.port();
  ClientRun r = RunClient({absl::StrCat("--port=", port), "--connections=50"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, absl::StrCat("echo_client: connection refused by 127.0.0.1:", port,
                                ": Connection refused\n"));
}

TEST(EchoClientTest, TimeoutEndsAConnectionNobodyAnswers) {
  Blackhole blackhole;
  const absl::Time start = absl::Now();
  ClientRun r = RunClient({absl::StrCat("--port=", blackhole.port()), "--connections=3",
                           "--timeout=0.5"});
  const absl::Duration took = absl::Now() - start;
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, absl::StrCat("echo_client: connect to 127.0.0.1:", blackhole.port(),
                                " timed out after 500ms\n"));
  EXPECT_GE(took, absl::Milliseconds(500));
  EXPECT_LT(took, absl::Seconds(30)) << "the timeout did not end the attempts";
}

TEST(EchoClientTest, ManyNamesResolveOnAFewThreads) {
  // "localhost" comes from /etc/hosts: no DNS. Each of the 1000 connections
  // resolves it; the reactor's pool of 4 threads does all of it.
  std::unique_ptr<Subprocess> server;
  const int port = StartEchoServer(&server);
  absl::StatusOr<Subprocess> p = Subprocess::Start(
      testing::RunfilePath("examples/echo_client"),
      {"--host=localhost", absl::StrCat("--port=", port), "--connections=1000",
       "--messages=1", "--size=10"});
  ASSERT_TRUE(p.ok()) << p.status();
  ThreadSampler threads(p->pid());
  absl::StatusOr<int> status = p->Wait(kWait);
  const int most = threads.Stop();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(WEXITSTATUS(*status), 0) << p->err();
  EXPECT_TRUE(absl::StartsWith(p->out(), "connections=1000 messages=1000 bytes=10000 errors=0 "))
      << p->out();
  EXPECT_GT(threads.samples(), 0);
  // The main thread and at most 4 resolvers (and ThreadSanitizer's own).
#if defined(__SANITIZE_THREAD__)
  constexpr int kMost = 6;
#else
  constexpr int kMost = 5;
#endif
  EXPECT_LE(most, kMost) << "threads seen at once";
}

TEST(EchoClientTest, BadFlagsAreOneLineErrors) {
  // Bad usage exits 2, as every example program's does.
  ClientRun r = RunClient({"--port=70000"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "echo_client: invalid --port 70000: must be 1..65535\n");
  r = RunClient({"--port=8000", "--connections=0"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "echo_client: --connections, --messages and --size must be at least 1\n");
  r = RunClient({"--port=8000", "--timeout=0"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "echo_client: --timeout must be more than 0 seconds\n");
  r = RunClient({"--port=8000", "--reactor=kqueue"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(absl::StartsWith(r.err, "echo_client: --reactor: unknown reactor 'kqueue'"))
      << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
}

// Echoes, but changes one byte on every third connection and hangs up on
// every fifth before answering.
class Saboteur : public Protocol {
 public:
  explicit Saboteur(int id) : id_(id) {}
  void dataReceived(absl::string_view data) override {
    if (id_ % 5 == 4) {
      transport()->abortConnection();
      return;
    }
    std::string copy(data);
    if (id_ % 3 == 2) copy[0] ^= 1;
    transport()->write(copy);
  }

 private:
  int id_;
};

TEST(EchoClientTest, WrongOrMissingEchoesAreCountedAndFailTheRun) {
  int next = 0;
  Factory factory([&] { return std::make_unique<Saboteur>(next++); });
  auto reactor = testing::MakeReactor("epoll");
  absl::StatusOr<Port*> port = reactor->listenTCP(0, &factory, 128, "127.0.0.1");
  ASSERT_TRUE(port.ok());
  std::thread loop([&] { reactor->run(); });
  ClientRun r = RunClient({absl::StrCat("--port=", (*port)->getHost().port()),
                     "--connections=30", "--messages=2", "--size=10"});
  reactor->callFromThread([&] { reactor->stop(); });
  loop.join();
  EXPECT_EQ(r.exit_code, 1);
  // 30 connections: ids 4, 9, ..., 29 hang up (6); of the rest, ids 2, 5,
  // 8, ... that are not hung up get a wrong byte (8). 16 connections echo
  // both messages.
  EXPECT_TRUE(absl::StartsWith(r.out, "connections=30 messages=32 bytes=320 errors=14 "))
      << r.out;
  EXPECT_TRUE(absl::StartsWith(r.err, "echo_client: first failure: ")) << r.err;
}

}  // namespace
}  // namespace twist
