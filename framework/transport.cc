#include "framework/transport.h"

#include <algorithm>
#include <utility>

namespace twist {

Producer::~Producer() { Transport::unlinkConsumers(this); }

void Transport::linkProducer(Producer* p) {
  if (p == this) return;
  if (p->consumers_ == nullptr) p->consumers_ = std::make_unique<std::vector<Transport*>>();
  p->consumers_->push_back(this);
}

void Transport::unlinkProducer(Producer* p) {
  if (p == nullptr || p == this || p->consumers_ == nullptr) return;
  auto& c = *p->consumers_;
  c.erase(std::remove(c.begin(), c.end(), this), c.end());
}

absl::Status Transport::wrapProtocol(ProtocolWrap) {
  return absl::UnimplementedError("this transport cannot put its protocol inside another");
}

void Transport::unlinkConsumers(Producer* producer) {
  std::unique_ptr<std::vector<Transport*>> consumers = std::move(producer->consumers_);
  if (consumers == nullptr) return;
  for (Transport* c : *consumers) c->producerGone(producer);
}

}  // namespace twist
