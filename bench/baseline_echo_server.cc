// The reference point for twist's echo_server: the least a single-threaded
// epoll loop can do to echo correctly. Non-blocking accept, one read() per
// readiness event into one shared buffer, write the bytes straight back, and
// when the kernel takes only part of them keep the remainder, stop reading
// that connection and watch for writability until it is flushed.
//
// Written plainly, not tuned against twist; it shares no code with twist so
// that the comparison measures the framework, not a common helper. It prints
// "listening on HOST:PORT" first, like examples/echo_server, so the runner
// treats both alike.
//
//   ./tools/bazel run -c opt //bench:baseline_echo_server -- --port=0

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "bench/plain_server.h"
#include "gflags/gflags.h"

namespace {

constexpr size_t kReadBufferSize = 64 * 1024;  // the same as twist's

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

// One connection: its socket and what the kernel has not taken yet.
struct Conn {
  int fd = -1;
  std::string pending;
};

int Fail(const std::string& problem) {
  return PlainFail("baseline_echo_server", problem);
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "Plain epoll echo server, the baseline for twist's benchmarks.\n"
      "Usage: baseline_echo_server [--host=127.0.0.1] [--port=8000]");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;  // no SA_RESTART: epoll_wait returns EINTR
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  bool bad_usage = false;
  const int lfd = PlainListen("baseline_echo_server", /*nonblocking=*/true,
                              &bad_usage);
  if (lfd < 0) return bad_usage ? 2 : 1;

  int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);

  std::vector<std::unique_ptr<Conn>> conns;  // indexed by fd
  std::unique_ptr<char[]> buf(new char[kReadBufferSize]);
  std::vector<epoll_event> events(1024);

  auto close_conn = [&](Conn* c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, nullptr);
    close(c->fd);
    conns[c->fd].reset();
  };
  auto watch = [&](Conn* c, uint32_t what) {
    epoll_event e = {};
    e.events = what;
    e.data.fd = c->fd;
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
  };

  while (!g_stop) {
    int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Fail(std::string("epoll_wait: ") + strerror(errno));
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == lfd) {
        while (true) {
          int cfd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (cfd < 0) break;  // EAGAIN, or out of descriptors: try next turn
          if (static_cast<size_t>(cfd) >= conns.size()) conns.resize(cfd + 1);
          conns[cfd] = std::make_unique<Conn>();
          conns[cfd]->fd = cfd;
          epoll_event e = {};
          e.events = EPOLLIN;
          e.data.fd = cfd;
          epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &e);
        }
        continue;
      }
      Conn* c = conns[fd].get();
      if (c == nullptr) continue;
      if (!c->pending.empty()) {  // only writability is watched now
        ssize_t w = send(fd, c->pending.data(), c->pending.size(), MSG_NOSIGNAL);
        if (w < 0) {
          if (errno != EAGAIN && errno != EINTR) close_conn(c);
          continue;
        }
        c->pending.erase(0, static_cast<size_t>(w));
        if (c->pending.empty()) {
          std::string().swap(c->pending);  // an idle connection holds nothing
          watch(c, EPOLLIN);
        }
        continue;
      }
      ssize_t r = read(fd, buf.get(), kReadBufferSize);
      if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        close_conn(c);  // EOF or error
        continue;
      }
      ssize_t w = send(fd, buf.get(), static_cast<size_t>(r), MSG_NOSIGNAL);
      if (w < 0) {
        if (errno != EAGAIN && errno != EINTR) {
          close_conn(c);
          continue;
        }
        w = 0;
      }
      if (w < r) {
        c->pending.assign(buf.get() + w, static_cast<size_t>(r - w));
        watch(c, EPOLLOUT);
      }
    }
  }
  return 0;
}
