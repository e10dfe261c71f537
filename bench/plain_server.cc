#include "bench/plain_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gflags/gflags.h"

DEFINE_string(host, "127.0.0.1", "Numeric IPv4 address to listen on.");
DEFINE_int32(port, 8000, "TCP port to listen on, 0..65535; 0 picks a free one.");
DEFINE_int32(backlog, 511,
             "listen(2) backlog; the same default as twist's echo_server.");

int PlainFail(const char* program, const std::string& problem) {
  fprintf(stderr, "%s: %s\n", program, problem.c_str());
  return 1;
}

int PlainListen(const char* program, bool nonblocking, bool* bad_usage) {
  *bad_usage = false;
  const std::string where =
      "cannot listen on " + FLAGS_host + ":" + std::to_string(FLAGS_port);
  if (FLAGS_port < 0 || FLAGS_port > 65535) {
    *bad_usage = true;
    PlainFail(program, "invalid --port " + std::to_string(FLAGS_port) +
                           ": must be 0..65535");
    return -1;
  }
  if (FLAGS_backlog < 1) {
    *bad_usage = true;
    PlainFail(program, "invalid --backlog " + std::to_string(FLAGS_backlog) +
                           ": must be at least 1");
    return -1;
  }
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(FLAGS_port));
  if (inet_pton(AF_INET, FLAGS_host.c_str(), &addr.sin_addr) != 1) {
    *bad_usage = true;
    PlainFail(program, where + ": not a numeric IPv4 address");
    return -1;
  }
  rlimit files;
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  int lfd = socket(AF_INET,
                   SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0),
                   0);
  if (lfd < 0) {
    PlainFail(program, where + ": socket: " + strerror(errno));
    return -1;
  }
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(lfd, FLAGS_backlog) != 0) {
    PlainFail(program, where + ": " + strerror(errno));
    close(lfd);
    return -1;
  }
  socklen_t len = sizeof(addr);
  getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);
  printf("listening on %s:%d\n", FLAGS_host.c_str(), ntohs(addr.sin_port));
  fflush(stdout);
  return lfd;
}

int PlainAccept(const char* program, int lfd, const sigset_t& waiting) {
  pollfd p = {lfd, POLLIN, 0};
  if (ppoll(&p, 1, nullptr, &waiting) < 0) {
    if (errno == EINTR) return -1;
    PlainFail(program, std::string("ppoll: ") + strerror(errno));
    return -2;
  }
  const int fd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) {
    static bool warned = false;
    if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED &&
        !warned) {
      PlainFail(program, std::string("accept: ") + strerror(errno));
      warned = true;
    }
  }
  return fd;
}

void PlainEcho(int fd, char* buf, size_t size) {
  while (true) {
    ssize_t r = read(fd, buf, size);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return;  // EOF, reset, or shut down
    ssize_t off = 0;
    while (off < r) {
      ssize_t w = send(fd, buf + off, static_cast<size_t>(r - off), MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return;
      off += w;
    }
  }
}
