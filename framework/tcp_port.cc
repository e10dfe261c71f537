#include "framework/tcp_port.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "framework/connection_host.h"

namespace twist {
namespace {
// Accepts per readiness event: enough to drain a burst, few enough that a
// flood of connects cannot starve established connections.
constexpr int kMaxAcceptsPerEvent = 64;
constexpr absl::Duration kBackOff = absl::Milliseconds(100);
}  // namespace

Port::Port(ConnectionHost* reactor, Factory* factory, int fd, const Address& host,
           std::unique_ptr<UnixSocketFile> unix_file)
    : reactor_(reactor),
      factory_(factory),
      fd_(fd),
      host_(host),
      unix_file_(std::move(unix_file)) {}

absl::Status Port::startListening() {
  absl::Status s = reactor_->poller().add(fd_, kReadable, this);
  if (!s.ok()) {
    ::close(fd_);
    fd_ = -1;  // so stopListening() neither removes nor stops the factory
  }
  return s;
}

Port::~Port() { stopListening(); }

void Port::stopListening() {
  if (fd_ < 0) return;
  resume_.cancel().IgnoreError();
  reactor_->poller().remove(fd_);
  // The file first: a client that comes now finds no file rather than a
  // refusal, and a server starting now finds the path free.
  if (unix_file_ != nullptr) unix_file_->remove();
  ::close(fd_);
  fd_ = -1;
  // A factory destroyed first (declared after the reactor) is not called.
  if (Factory* f = factory_.get()) f->doStop();
}

void Port::setAcceptRateLimit(double per_second, int burst) {
  rate_ = per_second > 0 ? per_second : 0;
  burst_ = burst < 1 ? 1 : burst;
  tokens_ = burst_;
  refilled_ = reactor_->time().seconds();
}

absl::StatusOr<int> BoundTcpSocket(const Address& addr, DualStack dual_stack, bool reuse_port) {
  const std::string where = absl::StrCat("cannot listen on ", addr.ToString());
  int fd = ::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ErrnoToStatus(errno, where);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    absl::Status s = absl::ErrnoToStatus(errno, absl::StrCat(where, ": SO_REUSEPORT"));
    ::close(fd);
    return s;
  }
  if (addr.isIPv6()) {
    // "::" serves IPv4 clients too unless asked not to (whatever the
    // system's bindv6only default); any other IPv6 address only IPv6.
    int v6only = addr.isIPv6Any() && dual_stack == DualStack::kOn ? 0 : 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
  }
  if (::bind(fd, addr.sockaddr_ptr(), addr.length()) != 0) {
    absl::Status s = absl::ErrnoToStatus(errno, where);
    ::close(fd);
    return s;
  }
  return fd;
}

void Port::handleEvents(uint32_t ready) {
  if (factory_.get() == nullptr) {
    // Nothing can build a protocol any more: pending clients are refused
    // by the kernel once the socket closes.
    fprintf(stderr, "twist: the factory of the port on %s was destroyed; it stops listening\n",
            host_.ToString().c_str());
    stopListening();
    return;
  }
  for (int i = 0; i < kMaxAcceptsPerEvent && fd_ >= 0; ++i) {
    if (rate_ > 0) {
      absl::Time now = reactor_->time().seconds();
      tokens_ = std::min(burst_, tokens_ + absl::ToDoubleSeconds(now - refilled_) * rate_);
      refilled_ = now;
      if (tokens_ < 1) {
        backOff(absl::Seconds((1 - tokens_) / rate_));
        return;
      }
    }
    sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = accept4(fd_, reinterpret_cast<sockaddr*>(&ss), &len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      switch (errno) {
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
          return;
        case EINTR:
        case ECONNABORTED:  // the peer gave up while queued
        case EPROTO:
        case EPERM:  // firewall
          continue;
        case EMFILE:
        case ENFILE:
          // Without a free descriptor the pending connection can be neither
          // served nor refused, and level-triggered readiness would spin.
          if (!reactor_->shedOneConnection(fd_)) {
            backOff(kBackOff);
            return;
          }
          continue;
        default:  // ENOBUFS, ENOMEM: give the kernel a moment
          backOff(kBackOff);
          return;
      }
    }
    if (rate_ > 0) tokens_ -= 1;
    // An IPv4 client of a dual-stack ("::") port is reported as IPv4.
    Address peer = Address::FromSockaddr(reinterpret_cast<sockaddr*>(&ss), len).unmapped();
    if (hand_off_) {
      hand_off_(fd, peer);
    } else {
      reactor_->adoptConnection(fd, factory_.raw(), peer);
    }
  }
}

void Port::backOff(absl::Duration pause) {
  reactor_->poller().remove(fd_);
  resume_ = reactor_->time().callLater(pause, [this] {
    if (fd_ >= 0) reactor_->poller().add(fd_, kReadable, this).IgnoreError();
  });
}

}  // namespace twist
