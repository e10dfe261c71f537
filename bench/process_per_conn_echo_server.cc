// The seeds' ForkingTCPServer, in C++: an accept loop that forks one child
// per connection; the child echoes its connection with blocking
// read()/write() until the peer closes, then exits. Nothing from twist: the
// model twist is measured against in bench/models.py.
//
// Children are reaped as they end (SIGCHLD wakes the accept loop), so none is
// left a zombie. SIGTERM/SIGINT: the parent stops accepting, sends SIGTERM to
// every child still running, waits for all of them and returns 0. A child
// also gets SIGTERM if the parent dies without that (PR_SET_PDEATHSIG).
//
// The three signals stay blocked except while the parent waits in ppoll, and
// only the parent reaps: so a pid in `children` is always a child of ours
// (running or a zombie, never reused by another process) when it is killed.
//
//   ./tools/bazel run -c opt //bench:process_per_conn_echo_server -- --port=0

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <unordered_set>

#include "bench/plain_server.h"
#include "gflags/gflags.h"

namespace {

constexpr const char* kProgram = "process_per_conn_echo_server";
constexpr size_t kReadBufferSize = 64 * 1024;  // the same as the others'

volatile sig_atomic_t g_stop = 0;
void OnStop(int) { g_stop = 1; }
// Only there to make ppoll return: SIGCHLD's default action is to discard it.
void OnChild(int) {}

// The child's whole life: echo fd until the peer closes, then exit.
[[noreturn]] void Echo(int fd) {
  static char buf[kReadBufferSize];
  PlainEcho(fd, buf, sizeof(buf));
  close(fd);
  _exit(0);
}

// Waits for every child that has ended, without blocking.
void Reap(std::unordered_set<pid_t>* children) {
  pid_t pid;
  while ((pid = waitpid(-1, nullptr, WNOHANG)) > 0) children->erase(pid);
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "Echo server, one process per connection with blocking I/O (the seeds'\n"
      "ForkingTCPServer), a baseline for bench/models.py.\n"
      "Usage: process_per_conn_echo_server [--host=127.0.0.1] [--port=8000]");
  gflags::ParseCommandLineFlags(&argc, &argv, true);

  struct sigaction stop = {};
  stop.sa_handler = OnStop;
  sigaction(SIGINT, &stop, nullptr);
  sigaction(SIGTERM, &stop, nullptr);
  struct sigaction child = {};
  child.sa_handler = OnChild;
  sigaction(SIGCHLD, &child, nullptr);
  signal(SIGPIPE, SIG_IGN);
  sigset_t blocked, waiting;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGINT);
  sigaddset(&blocked, SIGTERM);
  sigaddset(&blocked, SIGCHLD);
  sigprocmask(SIG_BLOCK, &blocked, &waiting);
  sigdelset(&waiting, SIGINT);
  sigdelset(&waiting, SIGTERM);
  sigdelset(&waiting, SIGCHLD);
  const pid_t parent = getpid();

  bool bad_usage = false;
  const int lfd = PlainListen(kProgram, /*nonblocking=*/true, &bad_usage);
  if (lfd < 0) return bad_usage ? 2 : 1;

  std::unordered_set<pid_t> children;
  int status = 0;
  while (!g_stop) {
    const int fd = PlainAccept(kProgram, lfd, waiting);
    Reap(&children);
    if (fd == -2) {  // cannot wait: stop as if told to, but say so
      status = 1;
      break;
    }
    if (fd < 0) continue;
    const pid_t pid = fork();
    if (pid == 0) {
      // The child: default signal handling, unblocked, and gone with the
      // parent; it needs neither the listener nor the parent's flags.
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) _exit(0);  // the parent died before prctl
      signal(SIGINT, SIG_DFL);
      signal(SIGTERM, SIG_DFL);
      signal(SIGCHLD, SIG_DFL);
      sigprocmask(SIG_SETMASK, &waiting, nullptr);
      close(lfd);
      Echo(fd);
    }
    const int fork_errno = errno;
    close(fd);  // the child has its own copy
    if (pid < 0) {
      static bool warned = false;
      if (!warned) {
        PlainFail(kProgram, std::string("fork: ") + strerror(fork_errno) +
                                ": closing the connection");
        warned = true;
      }
      continue;
    }
    children.insert(pid);
  }
  close(lfd);
  for (pid_t pid : children) kill(pid, SIGTERM);
  for (pid_t pid : children) {
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  return status;
}
