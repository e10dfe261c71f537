#ifndef TWIST_FRAMEWORK_EPOLL_POLLER_H_
#define TWIST_FRAMEWORK_EPOLL_POLLER_H_

#include <sys/epoll.h>

#include <memory>
#include <vector>

#include "framework/poller.h"

namespace twist {

/// epoll(7): cost grows with the number of ready descriptors, not watched
/// ones. The default on Linux.
class EpollPoller final : public Poller {
 public:
  static absl::StatusOr<std::unique_ptr<Poller>> Create();
  ~EpollPoller() override;

  absl::string_view name() const override { return "epoll"; }
  absl::Status add(int fd, uint32_t interest, Selectable* s) override;
  absl::Status modify(int fd, uint32_t interest, Selectable* s) override;
  void remove(int fd) override;
  absl::Status poll(absl::Duration timeout,
                    std::vector<ReadyEvent>* ready) override;

 private:
  explicit EpollPoller(int epfd);
  absl::Status control(int op, int fd, uint32_t interest, Selectable* s);

  int epfd_;
  std::vector<epoll_event> events_;  // grows when a wait fills it
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_EPOLL_POLLER_H_
