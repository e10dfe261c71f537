#include "framework/select_poller.h"

#include <errno.h>

#include "absl/strings/str_cat.h"

namespace twist {

SelectPoller::SelectPoller() : owners_(FD_SETSIZE, nullptr) {
  FD_ZERO(&read_set_);
  FD_ZERO(&write_set_);
}

absl::Status SelectPoller::add(int fd, uint32_t interest, Selectable* s) {
  if (fd < 0 || fd >= FD_SETSIZE) {
    return absl::ResourceExhaustedError(
        absl::StrCat("select reactor cannot watch fd ", fd,
                     ": descriptors must be below FD_SETSIZE (", FD_SETSIZE,
                     "); use the poll or epoll reactor"));
  }
  if (owners_[fd] != nullptr) {
    return absl::AlreadyExistsError(absl::StrCat("fd ", fd, " already watched"));
  }
  owners_[fd] = s;
  if (fd > max_fd_) max_fd_ = fd;
  return modify(fd, interest, s);
}

absl::Status SelectPoller::modify(int fd, uint32_t interest, Selectable* s) {
  if (fd < 0 || fd >= FD_SETSIZE || owners_[fd] == nullptr) {
    return absl::NotFoundError(absl::StrCat("fd ", fd, " is not watched"));
  }
  owners_[fd] = s;
  if (interest & kReadable) FD_SET(fd, &read_set_); else FD_CLR(fd, &read_set_);
  if (interest & kWritable) FD_SET(fd, &write_set_); else FD_CLR(fd, &write_set_);
  return absl::OkStatus();
}

void SelectPoller::remove(int fd) {
  if (fd < 0 || fd >= FD_SETSIZE || owners_[fd] == nullptr) return;
  owners_[fd] = nullptr;
  FD_CLR(fd, &read_set_);
  FD_CLR(fd, &write_set_);
  while (max_fd_ >= 0 && owners_[max_fd_] == nullptr) --max_fd_;
}

absl::Status SelectPoller::poll(absl::Duration timeout,
                                std::vector<ReadyEvent>* ready) {
  fd_set rs = read_set_;
  fd_set ws = write_set_;
  timeval tv;
  timeval* tvp = nullptr;
  if (timeout != absl::InfiniteDuration()) {
    if (timeout < absl::ZeroDuration()) timeout = absl::ZeroDuration();
    tv = absl::ToTimeval(absl::Ceil(timeout, absl::Microseconds(1)));
    tvp = &tv;
  }
  int n = select(max_fd_ + 1, &rs, &ws, nullptr, tvp);
  if (n < 0) {
    if (errno == EINTR) return absl::OkStatus();
    return absl::ErrnoToStatus(errno, "select");
  }
  for (int fd = 0; fd <= max_fd_ && n > 0; ++fd) {
    uint32_t r = (FD_ISSET(fd, &rs) ? kReadable : 0u) |
                 (FD_ISSET(fd, &ws) ? kWritable : 0u);
    if (r == 0) continue;
    n -= ((r & kReadable) ? 1 : 0) + ((r & kWritable) ? 1 : 0);
    ready->push_back({owners_[fd], r});
  }
  return absl::OkStatus();
}

}  // namespace twist
