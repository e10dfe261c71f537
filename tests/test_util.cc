#include "tests/test_util.h"

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

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

bool RunBeside(Reactor& reactor, absl::FunctionRef<void()> io, absl::Duration timeout) {
  std::atomic<bool> done{false};
  std::thread t([&] {
    io();
    done = true;
  });
  const bool finished = RunUntil(reactor, [&] { return done.load(); }, timeout);
  t.join();
  return finished;
}

namespace {
// A failed send/recv on a BlockingClient: SO_RCVTIMEO/SO_SNDTIMEO expiring
// shows as EAGAIN, which ErrnoToStatus would call UNAVAILABLE.
absl::Status IoError(int error_number, absl::string_view what) {
  if (error_number == EAGAIN || error_number == EWOULDBLOCK) {
    return absl::DeadlineExceededError(
        absl::StrCat(what, ": nothing within ", absl::FormatDuration(kTimeout)));
  }
  return absl::ErrnoToStatus(error_number, what);
}
}  // namespace

void PinSocketBuffers(int fd, int bytes) {
  for (int opt : {SO_SNDBUF, SO_RCVBUF}) {
    if (setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof(bytes)) != 0) {
      ADD_FAILURE() << "setsockopt(" << (opt == SO_SNDBUF ? "SO_SNDBUF" : "SO_RCVBUF")
                    << "): " << strerror(errno);
    }
  }
}

absl::StatusOr<BlockingClient> BlockingClient::Connect(const Address& to,
                                                       int pinned_buffers) {
  int fd = ::socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ErrnoToStatus(errno, "socket");
  BlockingClient c(fd);
  timeval tv = absl::ToTimeval(kTimeout);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  // Before connect(): the receive window is negotiated in the handshake.
  if (pinned_buffers > 0) PinSocketBuffers(fd, pinned_buffers);
  // A Unix client takes a unique abstract name of the kernel's choosing
  // (autobind), so that ServerEndOf can tell its server end from others.
  if (to.isUnix()) {
    sockaddr_un un = {};
    un.sun_family = AF_UNIX;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&un), sizeof(sa_family_t)) != 0) {
      return absl::ErrnoToStatus(errno, "bind (autobind)");
    }
  }
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
      return IoError(errno, "send");
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
      return IoError(errno, absl::StrCat("recv after ", got, " of ", n, " bytes"));
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
      return IoError(errno, absl::StrCat("recv after ", out.size(), " bytes"));
    }
    if (r == 0) return out;
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

absl::StatusOr<std::string> BlockingClient::ReadUntilClosed() {
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t r = ::recv(fd_, buf, sizeof(buf), 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return IoError(errno, absl::StrCat("still open after ", out.size(), " bytes"));
    }
    if (r <= 0) return out;  // EOF, or a reset
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

SocketDir::SocketDir() {
  const char* tmp = getenv("TEST_TMPDIR");
  std::string pattern = absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp",
                                     "/sockets-XXXXXX");
  if (mkdtemp(&pattern[0]) == nullptr) {
    ADD_FAILURE() << "mkdtemp " << pattern << ": " << strerror(errno);
    abort();
  }
  real_ = pattern;
  dir_ = real_;
  // Room for names of up to 40 bytes.
  if (real_.size() + 41 > sizeof(sockaddr_un{}.sun_path) - 1) {
    static std::atomic<int> n{0};
    link_ = absl::StrCat("/tmp/twist-", getpid(), "-", n++);
    ::unlink(link_.c_str());
    if (symlink(real_.c_str(), link_.c_str()) != 0) {
      ADD_FAILURE() << "symlink " << link_ << ": " << strerror(errno);
      abort();
    }
    dir_ = link_;
  }
}

SocketDir::~SocketDir() {
  if (DIR* d = opendir(real_.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") ::unlink(absl::StrCat(real_, "/", name).c_str());
    }
    closedir(d);
  }
  ::rmdir(real_.c_str());
  if (!link_.empty()) ::unlink(link_.c_str());
}

std::string SocketDir::path(absl::string_view name) const {
  return absl::StrCat(dir_, "/", name);
}

std::string SocketDir::AbstractName(absl::string_view name) {
  static std::atomic<int> n{0};
  return absl::StrCat("@twist-", getpid(), "-", n++, "-", name);
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

Port* MustListen(Reactor& reactor, StreamTransport transport, Factory* factory,
                 const SocketDir* dir, absl::string_view name, int pinned_buffers) {
  Port* port = ListenOn(reactor, transport, factory, dir, name);
  if (port == nullptr) abort();
  if (pinned_buffers > 0) PinSocketBuffers(port->fileno(), pinned_buffers);
  return port;
}

BlockingClient MustConnect(const Address& to, int pinned_buffers) {
  absl::StatusOr<BlockingClient> c = BlockingClient::Connect(to, pinned_buffers);
  if (!c.ok()) {
    ADD_FAILURE() << c.status();
    abort();
  }
  return *std::move(c);
}

void Spin(Reactor& reactor, int turns) {
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

int ServerEndOf(const BlockingClient& client) {
  absl::StatusOr<Address> local = Address::LocalOf(client.fd());
  if (!local.ok()) return -1;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  int found = -1;
  while (dirent* e = readdir(d)) {
    int fd = -1;
    if (!absl::SimpleAtoi(e->d_name, &fd) || fd == client.fd()) continue;
    sockaddr_storage peer;
    socklen_t len = sizeof(peer);
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) continue;
    if (Address::FromSockaddr(reinterpret_cast<sockaddr*>(&peer), len) == *local) {
      found = fd;
      break;
    }
  }
  closedir(d);
  return found;
}

int PendingBytes(int fd) {
  int n = 0;
  return ioctl(fd, FIONREAD, &n) == 0 ? n : -1;
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

int64_t ProcStatusKiB(pid_t pid, absl::string_view field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view v = line;
    if (absl::ConsumePrefix(&v, field) && absl::ConsumePrefix(&v, ":")) {
      v = absl::StripAsciiWhitespace(v);
      absl::ConsumeSuffix(&v, " kB");
      int64_t kib = -1;
      if (absl::SimpleAtoi(v, &kib)) return kib;
    }
  }
  return -1;
}

bool HasIPv6Loopback() {
  static const bool has = [] {
    const int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
  }();
  return has;
}

std::string TransportName(StreamTransport transport) {
  switch (transport) {
    case StreamTransport::kTcp:
      return "tcp";
    case StreamTransport::kTcp6:
      return "tcp6";
    case StreamTransport::kUnix:
      return "unix";
    case StreamTransport::kAbstract:
      return "abstract";
  }
  return "?";
}

int FamilyOf(StreamTransport transport) {
  switch (transport) {
    case StreamTransport::kTcp:
      return AF_INET;
    case StreamTransport::kTcp6:
      return AF_INET6;
    case StreamTransport::kUnix:
    case StreamTransport::kAbstract:
      return AF_UNIX;
  }
  return AF_UNSPEC;
}

void PrintTo(const PollerTransport& p, std::ostream* os) {
  *os << p.poller << "_" << TransportName(p.transport);
}

std::vector<PollerTransport> PollersAndTransports() {
  std::vector<PollerTransport> params;
  for (const std::string& poller : PollerNames()) {
    for (StreamTransport t :
         {StreamTransport::kTcp, StreamTransport::kTcp6, StreamTransport::kUnix}) {
      params.push_back({poller, t});
    }
  }
  params.push_back({PollerNames().front(), StreamTransport::kAbstract});
  return params;
}

std::string PollerTransportName(const ::testing::TestParamInfo<PollerTransport>& info) {
  return absl::StrCat(info.param.poller, "_", TransportName(info.param.transport));
}

bool IsOver(const Address& host, StreamTransport transport, absl::string_view unix_name) {
  if (host.family() != FamilyOf(transport)) return false;
  if (host.isUnix()) {
    return host.path() == unix_name &&
           host.isAbstract() == (transport == StreamTransport::kAbstract);
  }
  return host.host() == (host.isIPv6() ? "::1" : "127.0.0.1") && host.port() != 0;
}

Port* ListenOn(Reactor& reactor, StreamTransport transport, Factory* factory,
               const SocketDir* dir, absl::string_view name, int backlog) {
  absl::StatusOr<Port*> port;
  std::string want;  // a Unix port's name
  switch (transport) {
    case StreamTransport::kTcp:
      port = reactor.listenTCP(0, factory, backlog, "127.0.0.1");
      break;
    case StreamTransport::kTcp6:
      port = reactor.listenTCP(0, factory, backlog, "::1");
      break;
    case StreamTransport::kUnix:
      if (dir == nullptr) {
        ADD_FAILURE() << "ListenOn(unix) needs a SocketDir";
        return nullptr;
      }
      want = dir->path(absl::StrCat(name, ".sock"));
      port = reactor.listenUNIX(want, factory, backlog);
      break;
    case StreamTransport::kAbstract:
      want = SocketDir::AbstractName(name);
      port = reactor.listenUNIX(want, factory, backlog);
      break;
  }
  if (!port.ok()) {
    ADD_FAILURE() << "cannot listen over " << TransportName(transport) << ": "
                  << port.status();
    return nullptr;
  }
  const Address host = (*port)->getHost();
  if (!IsOver(host, transport, want)) {
    ADD_FAILURE() << "listening over " << TransportName(transport) << " gave "
                  << host.ToString();
    return nullptr;
  }
  return *port;
}

}  // namespace testing
}  // namespace twist
