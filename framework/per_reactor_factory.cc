#include "framework/per_reactor_factory.h"

#include <utility>

#include "framework/reactor_pool.h"

namespace twist {

PerReactorFactory::PerReactorFactory(const ReactorPool* pool, std::vector<Factory*> factories)
    : pool_(pool), factories_(std::move(factories)) {}

std::unique_ptr<Protocol> PerReactorFactory::buildProtocol(const Address& addr) {
  const int i = pool_->currentIndex();
  if (i < 0 || i >= static_cast<int>(factories_.size())) return nullptr;
  std::unique_ptr<Protocol> p = factories_[i]->buildProtocol(addr);
  if (p != nullptr && p->factory() == nullptr) p->setFactory(factories_[i]);
  return p;
}

void PerReactorFactory::startFactory() {
  for (Factory* f : factories_) f->doStart();
}

void PerReactorFactory::stopFactory() {
  for (Factory* f : factories_) f->doStop();
}

}  // namespace twist
