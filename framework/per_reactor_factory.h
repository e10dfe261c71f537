#ifndef TWIST_FRAMEWORK_PER_REACTOR_FACTORY_H_
#define TWIST_FRAMEWORK_PER_REACTOR_FACTORY_H_

#include <memory>
#include <vector>

#include "framework/protocol.h"

namespace twist {

class ReactorPool;

/// Serves a ReactorPool's connections through one factory per reactor, for
/// what belongs to one reactor: timers on its clock (TimeoutFactory,
/// ThrottlingFactory, an HTTP Site's keep-alive timeout), state its
/// protocols share without a lock. Give it to ReactorPool::listenTCP in
/// place of a thread-safe factory: buildProtocol, which runs on reactor i's
/// thread, asks `factories[i]`, and the protocol's factory() is that one, so
/// factoryAs<> finds the program's own type.
///
/// startFactory/stopFactory start and stop every per-reactor factory, on
/// the thread the pool's first port starts or last port stops on (see
/// Factory): a per-reactor factory whose stopFactory touches its reactor
/// posts there. The per-reactor factories must outlive the pool.
class PerReactorFactory : public Factory {
 public:
  /// `factories[i]` serves `pool->reactor(i)`; one per reactor.
  PerReactorFactory(const ReactorPool* pool, std::vector<Factory*> factories);

  /// nullptr (the connection is refused) on a thread that is not one of
  /// the pool's reactors.
  std::unique_ptr<Protocol> buildProtocol(const Address& addr) override;
  void startFactory() override;
  void stopFactory() override;

  /// Reactor `i`'s factory.
  Factory* factory(int i) const { return factories_[i]; }

 private:
  const ReactorPool* pool_;
  std::vector<Factory*> factories_;
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_PER_REACTOR_FACTORY_H_
