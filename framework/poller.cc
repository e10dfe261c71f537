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
  if (timeout >= absl::Seconds(1000)) return 1000000;
  // Rounded up, so a timer is never woken for early: integer arithmetic on
  // nanoseconds (absl::Ceil costs ten times more, once per loop turn).
  int64_t ns = absl::ToInt64Nanoseconds(timeout);
  if (absl::Nanoseconds(ns) < timeout) ++ns;  // a fraction of a nanosecond left
  return static_cast<int>((ns + 999999) / 1000000);
}

}  // namespace twist
