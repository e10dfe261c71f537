#include "framework/transport.h"

#include <algorithm>
#include <utility>

namespace twist {

Producer::~Producer() { Transport::unlinkConsumers(this); }

void Transport::linkProducer(Producer* p) {
  if (p != this) p->consumers_.push_back(this);
}

void Transport::unlinkProducer(Producer* p) {
  if (p == nullptr || p == this) return;
  auto& c = p->consumers_;
  c.erase(std::remove(c.begin(), c.end(), this), c.end());
}

void Transport::unlinkConsumers(Producer* producer) {
  for (Transport* c : std::exchange(producer->consumers_, {})) c->producerGone(producer);
}

}  // namespace twist
