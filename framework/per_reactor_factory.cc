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

// Each on its own reactor's thread (ReactorPool::callOnReactor): before
// run() and after, on the caller's; while the pool runs, posted, so the
// last port to stop, whichever reactor it is on, never touches another
// reactor's factory. Nothing here may touch `this` once posted: the port
// that stops last may destroy its factory.
void PerReactorFactory::startFactory() {
  for (size_t i = 0; i < factories_.size(); ++i) {
    Factory* f = factories_[i];
    pool_->callOnReactor(static_cast<int>(i), [f] { f->doStart(); });
  }
}

void PerReactorFactory::stopFactory() {
  const ReactorPool* pool = pool_;
  const std::vector<Factory*> factories = factories_;
  for (size_t i = 0; i < factories.size(); ++i) {
    Factory* f = factories[i];
    pool->callOnReactor(static_cast<int>(i), [f] { f->doStop(); });
  }
}

}  // namespace twist
