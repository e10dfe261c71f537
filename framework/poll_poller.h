#ifndef TWIST_FRAMEWORK_POLL_POLLER_H_
#define TWIST_FRAMEWORK_POLL_POLLER_H_

#include <poll.h>

#include <vector>

#include "absl/container/flat_hash_map.h"
#include "framework/poller.h"

namespace twist {

/// poll(2): no descriptor cap, but the whole set is copied to the kernel and
/// scanned on every wait.
class PollPoller final : public Poller {
 public:
  absl::string_view name() const override { return "poll"; }
  absl::Status add(int fd, uint32_t interest, Selectable* s) override;
  absl::Status modify(int fd, uint32_t interest, Selectable* s) override;
  void remove(int fd) override;
  absl::Status poll(absl::Duration timeout,
                    std::vector<ReadyEvent>* ready) override;

 private:
  // pollfds_[i] and owners_[i] describe the same descriptor; index_ maps a
  // descriptor to i so that remove() is O(1) (swap with the last).
  std::vector<pollfd> pollfds_;
  std::vector<Selectable*> owners_;
  absl::flat_hash_map<int, size_t> index_;
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_POLL_POLLER_H_
