#include "framework/poll_poller.h"

#include <errno.h>

#include "absl/strings/str_cat.h"

namespace twist {
namespace {
short ToPollEvents(uint32_t interest) {
  return static_cast<short>(((interest & kReadable) ? POLLIN : 0) |
                            ((interest & kWritable) ? POLLOUT : 0));
}
}  // namespace

absl::Status PollPoller::add(int fd, uint32_t interest, Selectable* s) {
  if (index_.contains(fd)) {
    return absl::AlreadyExistsError(absl::StrCat("fd ", fd, " already watched"));
  }
  index_[fd] = pollfds_.size();
  pollfds_.push_back({fd, ToPollEvents(interest), 0});
  owners_.push_back(s);
  return absl::OkStatus();
}

absl::Status PollPoller::modify(int fd, uint32_t interest, Selectable* s) {
  auto it = index_.find(fd);
  if (it == index_.end()) {
    return absl::NotFoundError(absl::StrCat("fd ", fd, " is not watched"));
  }
  pollfds_[it->second].events = ToPollEvents(interest);
  owners_[it->second] = s;
  return absl::OkStatus();
}

void PollPoller::remove(int fd) {
  auto it = index_.find(fd);
  if (it == index_.end()) return;
  size_t i = it->second;
  index_.erase(it);
  size_t last = pollfds_.size() - 1;
  if (i != last) {
    pollfds_[i] = pollfds_[last];
    owners_[i] = owners_[last];
    index_[pollfds_[i].fd] = i;
  }
  pollfds_.pop_back();
  owners_.pop_back();
}

absl::Status PollPoller::poll(absl::Duration timeout,
                              std::vector<ReadyEvent>* ready) {
  int n = ::poll(pollfds_.data(), pollfds_.size(), TimeoutMillis(timeout));
  if (n < 0) {
    if (errno == EINTR) return absl::OkStatus();
    return absl::ErrnoToStatus(errno, "poll");
  }
  for (size_t i = 0; i < pollfds_.size() && n > 0; ++i) {
    short re = pollfds_[i].revents;
    if (re == 0) continue;
    --n;
    uint32_t r = ((re & POLLIN) ? kReadable : 0u) |
                 ((re & POLLOUT) ? kWritable : 0u) |
                 ((re & (POLLERR | POLLHUP | POLLNVAL)) ? kErrorOrHangup : 0u);
    ready->push_back({owners_[i], r});
  }
  return absl::OkStatus();
}

}  // namespace twist
