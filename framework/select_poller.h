#ifndef TWIST_FRAMEWORK_SELECT_POLLER_H_
#define TWIST_FRAMEWORK_SELECT_POLLER_H_

#include <sys/select.h>

#include <vector>

#include "framework/poller.h"

namespace twist {

/// select(2): the oldest and most portable; watches only descriptors below
/// FD_SETSIZE (1024) and scans every one of them on each wait. A descriptor
/// at or above FD_SETSIZE is refused with a clear status, never written past
/// the end of an fd_set.
class SelectPoller final : public Poller {
 public:
  SelectPoller();
  absl::string_view name() const override { return "select"; }
  absl::Status add(int fd, uint32_t interest, Selectable* s) override;
  absl::Status modify(int fd, uint32_t interest, Selectable* s) override;
  void remove(int fd) override;
  absl::Status poll(absl::Duration timeout,
                    std::vector<ReadyEvent>* ready) override;

 private:
  fd_set read_set_;
  fd_set write_set_;
  std::vector<Selectable*> owners_;  // indexed by fd; nullptr = not watched
  int max_fd_ = -1;
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_SELECT_POLLER_H_
