// Load generator for echo servers: plain sockets and one epoll loop, nothing
// from twist, so that it measures twist and a baseline alike.
//
// Every connection sends a deterministic byte stream (a pseudo-random pattern
// started at a different offset per connection) and checks every echoed byte
// against it. Modes:
//
//   pingpong  C connections, each with D messages of S bytes in flight; a
//             message completes when its last byte is back, and is then
//             replaced. Reports messages/s, MB/s and round-trip latency.
//   bulk      C connections, each writing K-byte chunks as fast as the socket
//             takes them while reading the echo. Reports MB/s echoed.
//   hold      opens C connections, echoes one byte on each, reports how many
//             were established, then holds them until stdin reaches EOF (or
//             --hold_seconds), so that the caller can measure the server.
//
// Every connection first echoes one byte before the measurement starts, so
// accepting is never measured. The result is ONE line on stdout of key=value
// pairs; problems go to stderr; the exit code is non-zero on any
// verification error, lost connection or unfinished echo.
//
//   loadgen --port=8000 --mode=pingpong --connections=100 --size=64

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gflags/gflags.h"

DEFINE_string(host, "127.0.0.1", "Numeric IPv4 address of the echo server.");
DEFINE_int32(port, 0, "TCP port of the echo server (required).");
DEFINE_string(mode, "pingpong", "pingpong, bulk or hold (see the file comment).");
DEFINE_int32(connections, 1, "Concurrent connections.");
DEFINE_int32(depth, 1, "pingpong: messages in flight per connection.");
DEFINE_int32(size, 64, "pingpong: bytes per message.");
DEFINE_int32(chunk, 64 * 1024, "bulk: bytes per write.");
DEFINE_double(warmup, 0.2, "Seconds of load before measuring starts.");
DEFINE_double(duration, 2.0, "Seconds measured (pingpong, bulk).");
DEFINE_double(hold_seconds, -1,
              "hold: seconds to hold the connections after reporting; "
              "negative = until stdin reaches EOF.");
DEFINE_int32(connect_batch, 200,
             "Connections being set up at once (keeps the server's accept "
             "queue from overflowing, which would cost 1 s SYN retries).");
DEFINE_bool(announce, false,
            "Print a line \"connected established=N\" on stdout once the "
            "connections are set up, before the load starts, so that a runner "
            "can sample the server while the load runs.");
DEFINE_double(timeout, 30,
              "Seconds allowed to set up the connections, and again to "
              "drain the echo at the end, before giving up with an error.");

namespace {

constexpr uint32_t kPeriod = 65521;  // prime: never in step with a size
constexpr uint32_t kStdin = UINT32_MAX;
constexpr size_t kReadSize = 256 * 1024;

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

[[noreturn]] void Die(const std::string& problem) {
  fprintf(stderr, "loadgen: %s\n", problem.c_str());
  exit(2);
}

struct Conn {
  int fd = -1;
  uint32_t base = 0;   // pattern index of stream byte 0
  uint64_t sent = 0;   // stream bytes written
  uint64_t goal = 0;   // stream bytes we want written
  uint64_t recvd = 0;  // stream bytes echoed and verified
  uint64_t done = 0;   // pingpong: messages completed
  std::vector<int64_t> issued;  // pingpong: ring of send times, size depth
  size_t ring_head = 0;
  size_t ring_size = 0;
  uint32_t watched = 0;  // current epoll interest
  bool ready = false;    // handshake byte echoed
  bool failed = false;
};

class LoadGen {
 public:
  LoadGen() {
    const size_t max_write =
        std::max<size_t>({static_cast<size_t>(FLAGS_size),
                          static_cast<size_t>(FLAGS_chunk), kReadSize});
    max_write_ = max_write;
    pattern_.resize(kPeriod + max_write);
    uint32_t x = 2463534242u;
    for (uint32_t i = 0; i < kPeriod; ++i) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      pattern_[i] = static_cast<char>(x >> 24);
    }
    for (size_t i = kPeriod; i < pattern_.size(); ++i) {
      pattern_[i] = pattern_[i - kPeriod];
    }
    buf_.reset(new char[kReadSize]);
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) Die(std::string("epoll_create1: ") + strerror(errno));
    if (inet_pton(AF_INET, FLAGS_host.c_str(), &addr_.sin_addr) != 1) {
      Die("--host " + FLAGS_host + ": not a numeric IPv4 address");
    }
    addr_.sin_family = AF_INET;
    addr_.sin_port = htons(static_cast<uint16_t>(FLAGS_port));
  }

  int Run();

 private:
  void Watch(Conn& c, uint32_t what, uint32_t index);
  void Fail(Conn& c, const std::string& why);
  bool StartConnect(uint32_t index);
  void Connect();
  void Flush(Conn& c, uint32_t index);
  void OnReadable(Conn& c, uint32_t index, int64_t now);
  void Issue(Conn& c, int64_t now);
  void Load();
  void Hold();
  void Report(double seconds);
  void CloseAll();

  bool pingpong() const { return FLAGS_mode == "pingpong"; }
  bool bulk() const { return FLAGS_mode == "bulk"; }

  std::vector<char> pattern_;
  size_t max_write_ = 0;
  std::unique_ptr<char[]> buf_;
  int ep_ = -1;
  sockaddr_in addr_ = {};
  std::vector<Conn> conns_;

  bool running_ = false;    // issue new messages / keep writing
  bool measuring_ = false;  // count what completes
  int64_t errors_ = 0;
  int64_t established_ = 0;
  uint64_t messages_ = 0;       // completed while measuring
  uint64_t bytes_ = 0;          // echoed while measuring
  uint64_t total_messages_ = 0;  // completed at any time (warm-up, drain)
  uint64_t total_bytes_ = 0;     // echoed at any time, handshakes excluded
  std::vector<int64_t> latencies_;  // ns, messages completed while measuring
};

void LoadGen::Watch(Conn& c, uint32_t what, uint32_t index) {
  if (c.watched == what) return;
  epoll_event ev = {};
  ev.events = what;
  ev.data.u32 = index;
  epoll_ctl(ep_, c.watched == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c.fd, &ev);
  c.watched = what;
}

void LoadGen::Fail(Conn& c, const std::string& why) {
  if (c.failed) return;
  c.failed = true;
  ++errors_;
  if (errors_ <= 5) {
    fprintf(stderr, "loadgen: connection %zu: %s\n",
            static_cast<size_t>(&c - conns_.data()), why.c_str());
  }
  if (c.fd >= 0) {
    epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
    close(c.fd);
    c.fd = -1;
  }
}

bool LoadGen::StartConnect(uint32_t index) {
  Conn& c = conns_[index];
  c.base = static_cast<uint32_t>((uint64_t{index} * 7919) % kPeriod);
  c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0) Die(std::string("socket: ") + strerror(errno) +
                    " (raise the open-files limit: ulimit -n)");
  int one = 1;
  setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(c.fd, reinterpret_cast<sockaddr*>(&addr_), sizeof(addr_)) != 0 &&
      errno != EINPROGRESS) {
    Fail(c, std::string("connect: ") + strerror(errno));
    return false;
  }
  c.goal = 1;  // the handshake byte
  Watch(c, EPOLLOUT, index);
  return true;
}

// Opens every connection, FLAGS_connect_batch at a time, and echoes one byte
// on each.
void LoadGen::Connect() {
  const uint32_t n = static_cast<uint32_t>(FLAGS_connections);
  conns_.resize(n);
  uint32_t next = 0;
  uint32_t in_flight = 0;
  uint32_t finished = 0;
  const int64_t deadline = NowNs() + static_cast<int64_t>(FLAGS_timeout * 1e9);
  std::vector<epoll_event> events(1024);
  while (finished < n) {
    while (next < n && in_flight < static_cast<uint32_t>(FLAGS_connect_batch)) {
      if (StartConnect(next)) {
        ++in_flight;
      } else {
        ++finished;
      }
      ++next;
    }
    const int64_t left = deadline - NowNs();
    if (left <= 0) break;
    int k = epoll_wait(ep_, events.data(), static_cast<int>(events.size()),
                       static_cast<int>(std::min<int64_t>(left / 1000000 + 1, 1000)));
    for (int i = 0; i < k; ++i) {
      const uint32_t index = events[i].data.u32;
      Conn& c = conns_[index];
      if (c.failed || c.ready) continue;
      if (c.sent == 0) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          Fail(c, std::string("connect: ") + strerror(err));
        } else {
          Flush(c, index);
          if (!c.failed && c.sent == 1) Watch(c, EPOLLIN, index);
        }
      } else {
        OnReadable(c, index, NowNs());
        if (!c.failed && c.recvd == 1) {
          c.ready = true;
          ++established_;
        }
      }
      if (c.failed || c.ready) {
        --in_flight;
        ++finished;
      }
    }
  }
  for (Conn& c : conns_) {
    if (!c.failed && !c.ready) Fail(c, "not established within --timeout");
  }
}

// Writes what is due, up to the socket's room; watches writability while
// something is left.
void LoadGen::Flush(Conn& c, uint32_t index) {
  while (c.sent < c.goal) {
    const size_t pos = (c.base + c.sent) % kPeriod;
    size_t len = std::min<uint64_t>(c.goal - c.sent, max_write_);
    if (bulk()) len = std::min<size_t>(len, FLAGS_chunk);
    ssize_t w = send(c.fd, pattern_.data() + pos, len, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) {
        Fail(c, std::string("send: ") + strerror(errno));
        return;
      }
      break;
    }
    c.sent += static_cast<uint64_t>(w);
    if (bulk()) break;  // one chunk per turn; the loop comes back for more
  }
  if (!c.ready) return;  // Connect() manages the handshake's interest
  uint32_t want = EPOLLIN;
  if (c.sent < c.goal) want |= EPOLLOUT;
  Watch(c, want, index);
}

void LoadGen::Issue(Conn& c, int64_t now) {
  c.issued[(c.ring_head + c.ring_size) % c.issued.size()] = now;
  ++c.ring_size;
  c.goal += FLAGS_size;
}

void LoadGen::OnReadable(Conn& c, uint32_t index, int64_t now) {
  ssize_t r = read(c.fd, buf_.get(), kReadSize);
  if (r <= 0) {
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
    Fail(c, r == 0 ? "closed by the server"
                   : std::string("read: ") + strerror(errno));
    return;
  }
  const size_t n = static_cast<size_t>(r);
  if (c.recvd + n > c.sent) {
    Fail(c, "received more bytes than were sent");
    return;
  }
  for (size_t off = 0; off < n;) {
    const size_t pos = (c.base + c.recvd + off) % kPeriod;
    const size_t len = std::min(n - off, max_write_);
    if (memcmp(buf_.get() + off, pattern_.data() + pos, len) != 0) {
      Fail(c, "echoed bytes differ from what was sent near stream offset " +
                  std::to_string(c.recvd + off));
      return;
    }
    off += len;
  }
  c.recvd += n;
  if (!c.ready) return;  // the handshake byte
  if (measuring_) bytes_ += n;
  total_bytes_ += n;
  if (!pingpong()) return;
  const uint64_t size = static_cast<uint64_t>(FLAGS_size);
  while (c.ring_size > 0 && c.recvd - 1 >= (c.done + 1) * size) {
    ++c.done;
    ++total_messages_;
    const int64_t started = c.issued[c.ring_head];
    c.ring_head = (c.ring_head + 1) % c.issued.size();
    --c.ring_size;
    if (measuring_) {
      ++messages_;
      latencies_.push_back(now - started);
    }
    if (running_) Issue(c, now);
  }
  Flush(c, index);
}

void LoadGen::Load() {
  const int64_t start = NowNs();
  const int64_t measure_from = start + static_cast<int64_t>(FLAGS_warmup * 1e9);
  const int64_t measure_until =
      measure_from + static_cast<int64_t>(FLAGS_duration * 1e9);
  running_ = true;
  for (uint32_t i = 0; i < conns_.size(); ++i) {
    Conn& c = conns_[i];
    if (c.failed) continue;
    if (pingpong()) {
      c.issued.resize(FLAGS_depth);
      for (int d = 0; d < FLAGS_depth; ++d) Issue(c, start);
    } else {
      c.goal = UINT64_MAX;
    }
    Flush(c, i);
  }
  std::vector<epoll_event> events(1024);
  int64_t measured_ns = 0;
  int64_t drain_deadline = 0;
  while (true) {
    int64_t now = NowNs();
    if (!measuring_ && running_ && now >= measure_from) {
      measuring_ = true;
      measured_ns = now;
    }
    if (running_ && now >= measure_until) {
      // Stop issuing; what is in flight must still come back intact.
      running_ = false;
      measuring_ = false;
      measured_ns = now - measured_ns;
      drain_deadline = now + static_cast<int64_t>(FLAGS_timeout * 1e9);
      for (uint32_t i = 0; i < conns_.size(); ++i) {
        Conn& c = conns_[i];
        if (c.failed) continue;
        if (bulk()) c.goal = c.sent;
        Flush(c, i);
      }
    }
    if (!running_) {
      bool drained = true;
      for (const Conn& c : conns_) {
        if (!c.failed && c.recvd < c.goal) drained = false;
      }
      if (drained) break;
      if (now >= drain_deadline) {
        for (Conn& c : conns_) {
          if (!c.failed && c.recvd < c.goal) {
            Fail(c, "echo incomplete: " + std::to_string(c.goal - c.recvd) +
                        " bytes never came back");
          }
        }
        break;
      }
    }
    const int64_t next = !running_       ? drain_deadline
                         : !measuring_ ? measure_from
                                       : measure_until;
    const int timeout_ms =
        static_cast<int>(std::max<int64_t>(0, (next - now) / 1000000 + 1));
    int k = epoll_wait(ep_, events.data(), static_cast<int>(events.size()),
                       timeout_ms);
    for (int i = 0; i < k; ++i) {
      const uint32_t index = events[i].data.u32;
      Conn& c = conns_[index];
      if (c.failed) continue;
      if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        OnReadable(c, index, NowNs());
        if (c.failed) continue;
      }
      if (events[i].events & EPOLLOUT) Flush(c, index);
    }
  }
  Report(static_cast<double>(measured_ns) / 1e9);
}

void LoadGen::Hold() {
  Report(0);
  epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u32 = kStdin;
  const bool watch_stdin = FLAGS_hold_seconds < 0;
  if (watch_stdin) epoll_ctl(ep_, EPOLL_CTL_ADD, STDIN_FILENO, &ev);
  const int64_t until = NowNs() + static_cast<int64_t>(
                                      std::max(0.0, FLAGS_hold_seconds) * 1e9);
  std::vector<epoll_event> events(1024);
  while (watch_stdin || NowNs() < until) {
    int timeout_ms =
        watch_stdin ? -1
                    : static_cast<int>((until - NowNs()) / 1000000 + 1);
    int k = epoll_wait(ep_, events.data(), static_cast<int>(events.size()),
                       timeout_ms);
    for (int i = 0; i < k; ++i) {
      const uint32_t index = events[i].data.u32;
      if (index == kStdin) {
        char b[256];
        ssize_t r = read(STDIN_FILENO, b, sizeof(b));
        if (r <= 0 && !(r < 0 && errno == EINTR)) return;
        continue;
      }
      // Nothing should arrive on a held connection: anything is a loss.
      Conn& c = conns_[index];
      if (!c.failed) OnReadable(c, index, NowNs());
      if (!c.failed) Fail(c, "unexpected bytes while held");
    }
  }
}

void LoadGen::Report(double seconds) {
  auto pct = [&](double p) -> double {
    if (latencies_.empty()) return 0;
    size_t k = std::min(latencies_.size() - 1,
                        static_cast<size_t>(p * latencies_.size()));
    std::nth_element(latencies_.begin(), latencies_.begin() + k,
                     latencies_.end());
    return latencies_[k] / 1000.0;
  };
  const double p50 = pct(0.50), p99 = pct(0.99), p999 = pct(0.999);
  const double max_us =
      latencies_.empty()
          ? 0
          : *std::max_element(latencies_.begin(), latencies_.end()) / 1000.0;
  const double rate = seconds > 0 ? messages_ / seconds : 0;
  const double mbps = seconds > 0 ? bytes_ / seconds / 1e6 : 0;
  printf(
      "mode=%s connections=%d depth=%d size=%d chunk=%d seconds=%.3f "
      "established=%lld messages=%llu msgs_per_s=%.0f mb_per_s=%.2f "
      "p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f "
      "total_messages=%llu total_bytes=%llu errors=%lld\n",
      FLAGS_mode.c_str(), FLAGS_connections, FLAGS_depth, FLAGS_size,
      FLAGS_chunk, seconds, static_cast<long long>(established_),
      static_cast<unsigned long long>(messages_), rate, mbps, p50, p99, p999,
      max_us, static_cast<unsigned long long>(total_messages_),
      static_cast<unsigned long long>(total_bytes_),
      static_cast<long long>(errors_));
  fflush(stdout);
}

// Resets rather than closes: verified connections have nothing left to say,
// and thousands of TIME_WAIT sockets would outlive the run.
void LoadGen::CloseAll() {
  linger lg = {1, 0};
  for (Conn& c : conns_) {
    if (c.fd < 0) continue;
    setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(c.fd);
    c.fd = -1;
  }
}

int LoadGen::Run() {
  Connect();
  if (established_ == 0) {  // nothing to measure; the errors say why
    Report(0);
    return 1;
  }
  if (FLAGS_announce) {
    printf("connected established=%lld\n", static_cast<long long>(established_));
    fflush(stdout);
  }
  if (FLAGS_mode == "hold") {
    Hold();
  } else {
    if (pingpong()) {
      latencies_.reserve(1 << 20);
    }
    Load();
  }
  CloseAll();
  return errors_ == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "Load generator for echo servers (plain sockets and epoll).\n"
      "Usage: loadgen --port=PORT [--mode=pingpong|bulk|hold] "
      "[--connections=C] [--depth=D] [--size=S] [--chunk=K]");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (FLAGS_port <= 0 || FLAGS_port > 65535) Die("--port: must be 1..65535");
  if (FLAGS_mode != "pingpong" && FLAGS_mode != "bulk" && FLAGS_mode != "hold") {
    Die("--mode: must be pingpong, bulk or hold, not \"" + FLAGS_mode + "\"");
  }
  if (FLAGS_connections < 1) Die("--connections: must be at least 1");
  if (FLAGS_depth < 1) Die("--depth: must be at least 1");
  if (FLAGS_size < 1) Die("--size: must be at least 1");
  if (FLAGS_chunk < 1) Die("--chunk: must be at least 1");
  if (FLAGS_connect_batch < 1) Die("--connect_batch: must be at least 1");
  signal(SIGPIPE, SIG_IGN);
  LoadGen gen;
  return gen.Run();
}
