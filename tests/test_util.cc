#include "tests/test_util.h"

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace twist {
namespace testing {

std::unique_ptr<Reactor> MakeReactor(const std::string& poller, Clock* clock) {
  ReactorOptions options;
  options.poller = poller;
  options.clock = clock;
  absl::StatusOr<std::unique_ptr<Reactor>> r = Reactor::Create(options);
  if (!r.ok()) {
    fprintf(stderr, "cannot create reactor: %s\n", r.status().ToString().c_str());
    abort();
  }
  return *std::move(r);
}

bool RunUntil(Reactor& reactor, absl::FunctionRef<bool()> pred,
              absl::Duration timeout) {
  MonotonicClock clock;
  const absl::Time deadline = clock.now() + timeout;
  while (!pred()) {
    absl::Duration left = deadline - clock.now();
    if (left <= absl::ZeroDuration()) return pred();
    reactor.iterate(std::min(left, absl::Milliseconds(50)));
  }
  return true;
}

absl::StatusOr<BlockingClient> BlockingClient::Connect(const Address& to,
                                                       int rcvbuf) {
  int fd = ::socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ErrnoToStatus(errno, "socket");
  BlockingClient c(fd);
  timeval tv = absl::ToTimeval(kTimeout);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  if (::connect(fd, to.sockaddr_ptr(), to.length()) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("connect to ", to.ToString()));
  }
  return c;
}

BlockingClient::BlockingClient(BlockingClient&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)) {}

BlockingClient& BlockingClient::operator=(BlockingClient&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

BlockingClient::~BlockingClient() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status BlockingClient::SendAll(absl::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, "send");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> BlockingClient::ReadExactly(size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::recv(fd_, &out[got], n - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, absl::StrCat("recv after ", got, " of ", n, " bytes"));
    }
    if (r == 0) {
      return absl::OutOfRangeError(absl::StrCat("EOF after ", got, " of ", n, " bytes"));
    }
    got += static_cast<size_t>(r);
  }
  return out;
}

absl::StatusOr<std::string> BlockingClient::ReadToEof(size_t max) {
  std::string out;
  char buf[65536];
  while (out.size() < max) {
    ssize_t r = ::recv(fd_, buf, sizeof(buf), 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, absl::StrCat("recv after ", out.size(), " bytes"));
    }
    if (r == 0) return out;
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

std::string BlockingClient::ReadUntilClosed() {
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t r = ::recv(fd_, buf, sizeof(buf), 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return out;
    out.append(buf, static_cast<size_t>(r));
  }
}

void BlockingClient::ShutdownWrite() { ::shutdown(fd_, SHUT_WR); }

void BlockingClient::Reset() {
  linger l = {1, 0};
  setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  ::close(fd_);
  fd_ = -1;
}

Address LoopbackOf(const Address& listening) {
  return *Address::Parse(listening.isIPv6() ? "::1" : "127.0.0.1",
                         listening.port());
}

std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 12345u;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

std::unique_ptr<Reactor> PollerTest::NewReactor(Clock* clock) {
  std::unique_ptr<Reactor> r = MakeReactor(GetParam(), clock);
  current_ = r.get();
  return r;
}

Port* PollerTest::ListenPort(Factory* factory) {
  absl::StatusOr<Port*> port = current_->listenTCP(0, factory, 1024, "127.0.0.1");
  if (!port.ok()) {
    ADD_FAILURE() << port.status();
    abort();  // every caller uses the port at once
  }
  return *port;
}

BlockingClient PollerTest::Connect(const Address& to, int rcvbuf) {
  absl::StatusOr<BlockingClient> c = BlockingClient::Connect(to, rcvbuf);
  if (!c.ok()) {
    ADD_FAILURE() << c.status();
    abort();
  }
  return *std::move(c);
}

void PollerTest::Spin(Reactor& reactor, int turns) {
  for (int i = 0; i < turns; ++i) reactor.iterate(absl::Milliseconds(1));
}

BusyPort::BusyPort() {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  Address any = *Address::Parse("127.0.0.1", 0);
  if (fd_ < 0 || ::bind(fd_, any.sockaddr_ptr(), any.length()) != 0 ||
      ::listen(fd_, 1) != 0) {
    ADD_FAILURE() << "cannot listen on 127.0.0.1: " << strerror(errno);
    return;
  }
  port_ = Address::LocalOf(fd_)->port();
}

BusyPort::~BusyPort() {
  if (fd_ >= 0) ::close(fd_);
}

int OpenDescriptors(pid_t pid) {
  const std::string dir =
      pid == 0 ? "/proc/self/fd" : absl::StrCat("/proc/", pid, "/fd");
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return -1;
  int n = 0;
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  // ".", ".." and, for this process, the DIR's own descriptor.
  return n - (pid == 0 ? 3 : 2);
}

}  // namespace testing
}  // namespace twist
