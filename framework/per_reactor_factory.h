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
/// startFactory/stopFactory (when the pool's first port starts, and when
/// its last one stops, on whichever reactor: see Factory) start and stop
/// each per-reactor factory on its own reactor's thread
/// (ReactorPool::callOnReactor): at once when the pool is not running (set-
/// up, or ports stopped as the pool is destroyed), else posted to that
/// reactor, and run before its run() returns, or, if it has returned
/// already, at once on the calling thread, which then holds it. So a
/// per-reactor factory's stopFactory may use its reactor (cancel its
/// timers, say), and it always runs. It may run after its reactor's other
/// shutdown work (the post waits for the reactor's turn) and, during a
/// run, after PerReactorFactory::stopFactory has returned. The per-reactor
/// factories must outlive the pool.
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
