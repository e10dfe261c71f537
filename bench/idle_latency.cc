// Round-trip latency of one active connection to an echo server while N
// other connections to it stay open and idle. Plain blocking sockets, no
// twist code, so that it measures the server and nothing else.
//
//   idle_latency --port=8000 --idle=1000 --messages=20000 --size=64
//
// prints one line:
//   idle=1000 established=1000 messages=20000 p50_us=... p99_us=... mean_us=...

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "framework/address.h"
#include "gflags/gflags.h"

DEFINE_string(host, "127.0.0.1", "Echo server address.");
DEFINE_int32(port, 8000, "Echo server port.");
DEFINE_int32(idle, 0, "Idle connections held open during the measurement.");
DEFINE_int32(messages, 20000, "Round trips measured on the active connection.");
DEFINE_int32(size, 64, "Bytes per message.");

namespace {

int Fail(const std::string& problem) {
  fprintf(stderr, "idle_latency: %s\n", problem.c_str());
  return 1;
}

int ConnectTo(const twist::Address& a) {
  int fd = ::socket(a.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, a.sockaddr_ptr(), a.length()) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

bool RoundTrip(int fd, const std::string& out, std::string* in) {
  if (::send(fd, out.data(), out.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(out.size())) {
    return false;
  }
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::recv(fd, in->data() + got, out.size() - got, 0);
    if (n <= 0) return false;
    got += static_cast<size_t>(n);
  }
  return memcmp(in->data(), out.data(), out.size()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "Echo round-trip latency with N idle connections open.\n"
      "Usage: idle_latency --port=P --idle=N [--messages=M] [--size=S]");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (FLAGS_idle < 0 || FLAGS_messages < 1 || FLAGS_size < 1) {
    return Fail("--idle must be >= 0, --messages and --size >= 1");
  }
  rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  absl::StatusOr<twist::Address> addr = twist::Address::Parse(FLAGS_host, FLAGS_port);
  if (!addr.ok()) return Fail(std::string(addr.status().message()));

  // The idle connections: each echoes one byte first, so that the server
  // has accepted it and is watching it before the measurement starts. A
  // server that cannot watch one (select above FD_SETSIZE) closes it.
  std::vector<int> idle;
  std::string one = "i", back(1, '\0');
  int established = 0;
  for (int i = 0; i < FLAGS_idle; ++i) {
    int fd = ConnectTo(*addr);
    if (fd < 0) return Fail(absl::StrFormat("connect #%d: %s", i, strerror(errno)));
    timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (RoundTrip(fd, one, &back)) ++established;
    idle.push_back(fd);
  }

  int fd = ConnectTo(*addr);
  if (fd < 0) return Fail(absl::StrFormat("connect: %s", strerror(errno)));
  std::string out(static_cast<size_t>(FLAGS_size), 'x'), in(out.size(), '\0');
  for (int i = 0; i < FLAGS_size; ++i) out[i] = static_cast<char>('a' + i % 26);
  // Warm up, then measure.
  for (int i = 0; i < 100; ++i) {
    if (!RoundTrip(fd, out, &in)) return Fail("the echo differs or the server closed");
  }
  std::vector<double> us;
  us.reserve(static_cast<size_t>(FLAGS_messages));
  for (int i = 0; i < FLAGS_messages; ++i) {
    out[0] = static_cast<char>('A' + i % 26);
    auto t0 = std::chrono::steady_clock::now();
    if (!RoundTrip(fd, out, &in)) return Fail("the echo differs or the server closed");
    auto t1 = std::chrono::steady_clock::now();
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  double sum = 0;
  for (double v : us) sum += v;
  std::sort(us.begin(), us.end());
  auto pct = [&](double p) {
    return us[std::min(us.size() - 1, static_cast<size_t>(p * us.size()))];
  };
  printf("idle=%d established=%d messages=%d p50_us=%.1f p99_us=%.1f mean_us=%.1f\n",
         FLAGS_idle, established, FLAGS_messages, pct(0.5), pct(0.99),
         sum / us.size());
  for (int f : idle) ::close(f);
  ::close(fd);
  return 0;
}
