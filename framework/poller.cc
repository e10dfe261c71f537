#include "framework/poller.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/epoll_poller.h"
#include "framework/poll_poller.h"
#include "framework/select_poller.h"

namespace twist {

absl::StatusOr<std::unique_ptr<Poller>> CreatePoller(absl::string_view name) {
  if (name == "epoll") return EpollPoller::Create();
  if (name == "poll") return std::unique_ptr<Poller>(new PollPoller());
  if (name == "select") return std::unique_ptr<Poller>(new SelectPoller());
  return absl::InvalidArgumentError(
      absl::StrCat("unknown reactor '", name,
                   "': expected one of ", absl::StrJoin(PollerNames(), ", ")));
}

const std::vector<std::string>& PollerNames() {
  static const auto* names =
      new std::vector<std::string>{"epoll", "poll", "select"};
  return *names;
}

int TimeoutMillis(absl::Duration timeout) {
  if (timeout == absl::InfiniteDuration()) return -1;
  if (timeout <= absl::ZeroDuration()) return 0;
  int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(timeout, absl::Milliseconds(1)));
  return ms > 1000000 ? 1000000 : static_cast<int>(ms);
}

}  // namespace twist
