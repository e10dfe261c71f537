#ifndef TWIST_TESTS_LINE_CLIENT_H_
#define TWIST_TESTS_LINE_CLIENT_H_

// A loopback client of a line protocol ("\r\n" from the server), read
// without blocking: pump() takes what arrived and splits it into lines. The
// test decides how to wait between pumps (turn its reactor's loop, or poll(2)
// while the reactors run on threads of their own).

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <atomic>
#include <deque>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace twist {
namespace testing {

class LineClient {
 public:
  // `tcp`: turn Nagle off, so that each send leaves at once.
  explicit LineClient(BlockingClient c, bool tcp = true) : c_(std::move(c)) {
    int one = 1;
    if (tcp) setsockopt(c_.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }

  void send(absl::string_view data) {
    absl::Status s = c_.SendAll(data);
    EXPECT_TRUE(s.ok()) << s;
  }
  // Reads what arrived, without blocking.
  void pump() {
    char buf[65536];
    while (!eof_) {
      ssize_t n = ::recv(c_.fd(), buf, sizeof(buf), MSG_DONTWAIT);
      if (n > 0) {
        in_.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) eof_ = true;
      break;
    }
    size_t start = 0, pos;
    while ((pos = in_.find("\r\n", start)) != std::string::npos) {
      lines_.push_back(in_.substr(start, pos - start));
      start = pos + 2;
    }
    in_.erase(0, start);
  }
  // A client that does not read: a test's wait leaves it alone.
  void stopReading() { reading_ = false; }
  bool reading() const { return reading_; }
  bool hasLine() const { return !lines_.empty(); }
  std::string pop() {
    std::string l = std::move(lines_.front());
    lines_.pop_front();
    return l;
  }
  size_t pending() const { return lines_.size(); }
  bool eof() const { return eof_; }
  // Bytes after the last "\r\n": a line sent without its ending shows here.
  const std::string& partial() const { return in_; }
  BlockingClient& socket() { return c_; }

 private:
  BlockingClient c_;
  std::string in_;
  std::deque<std::string> lines_;
  bool eof_ = false;
  bool reading_ = true;
};

/// Sends `data` on `c` from a thread of its own, so that this thread can go
/// on reading (or turning the reactor) meanwhile: the kernel need not take
/// it all at once. When an ASSERT leaves the test early, the destructor shuts
/// the socket's sending side so that a send nobody reads any more fails
/// instead of blocking the join (a joinable std::thread would terminate).
class BackgroundSend {
 public:
  BackgroundSend(LineClient& c, std::string data)
      : fd_(c.socket().fd()), thread_([this, &c, data = std::move(data)] {
          c.send(data);
          done_ = true;
        }) {}
  ~BackgroundSend() {
    if (!done_.load()) ::shutdown(fd_, SHUT_WR);
    thread_.join();
  }
  BackgroundSend(const BackgroundSend&) = delete;
  BackgroundSend& operator=(const BackgroundSend&) = delete;

  /// Whether all of `data` was sent.
  bool done() const { return done_.load(); }

 private:
  std::atomic<bool> done_{false};
  const int fd_;
  std::thread thread_;  // last: it starts once done_ exists
};

}  // namespace testing
}  // namespace twist

#endif  // TWIST_TESTS_LINE_CLIENT_H_
