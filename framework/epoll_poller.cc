#include "framework/epoll_poller.h"

#include <errno.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"

namespace twist {

absl::StatusOr<std::unique_ptr<Poller>> EpollPoller::Create() {
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) return absl::ErrnoToStatus(errno, "epoll_create1");
  return std::unique_ptr<Poller>(new EpollPoller(epfd));
}

EpollPoller::EpollPoller(int epfd) : epfd_(epfd), events_(64) {}

EpollPoller::~EpollPoller() { close(epfd_); }

absl::Status EpollPoller::control(int op, int fd, uint32_t interest,
                                  Selectable* s) {
  epoll_event ev = {};
  ev.events = ((interest & kReadable) ? EPOLLIN : 0u) |
              ((interest & kWritable) ? EPOLLOUT : 0u);
  ev.data.ptr = s;
  if (epoll_ctl(epfd_, op, fd, &ev) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("epoll_ctl on fd ", fd));
  }
  return absl::OkStatus();
}

absl::Status EpollPoller::add(int fd, uint32_t interest, Selectable* s) {
  return control(EPOLL_CTL_ADD, fd, interest, s);
}

absl::Status EpollPoller::modify(int fd, uint32_t interest, Selectable* s) {
  return control(EPOLL_CTL_MOD, fd, interest, s);
}

void EpollPoller::remove(int fd) {
  epoll_event ev = {};
  epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, &ev);
}

absl::Status EpollPoller::poll(absl::Duration timeout,
                               std::vector<ReadyEvent>* ready) {
  int n = epoll_wait(epfd_, events_.data(), static_cast<int>(events_.size()),
                     TimeoutMillis(timeout));
  if (n < 0) {
    if (errno == EINTR) return absl::OkStatus();
    return absl::ErrnoToStatus(errno, "epoll_wait");
  }
  for (int i = 0; i < n; ++i) {
    uint32_t e = events_[i].events;
    uint32_t r = ((e & EPOLLIN) ? kReadable : 0u) |
                 ((e & EPOLLOUT) ? kWritable : 0u) |
                 ((e & (EPOLLERR | EPOLLHUP)) ? kErrorOrHangup : 0u);
    ready->push_back({static_cast<Selectable*>(events_[i].data.ptr), r});
  }
  if (static_cast<size_t>(n) == events_.size()) events_.resize(n * 2);
  return absl::OkStatus();
}

}  // namespace twist
