#include "framework/protocol.h"

namespace twist {

void Protocol::makeConnection(Transport* transport) {
  transport_ = transport;
  connectionMade();
}

std::unique_ptr<Protocol> Factory::buildProtocol(const Address& addr) {
  return make_ ? make_() : nullptr;
}

void Factory::doStart() {
  // Atomic: the ports of a ReactorPool's reactors start and stop on their
  // own threads (design.md, "Threads").
  if (num_ports_.fetch_add(1, std::memory_order_acq_rel) == 0) startFactory();
}

void Factory::doStop() {
  int n = num_ports_.load(std::memory_order_relaxed);
  do {
    if (n == 0) return;
  } while (!num_ports_.compare_exchange_weak(n, n - 1, std::memory_order_acq_rel));
  // Nothing after stopFactory(): a factory may end its own life there
  // (the Deferred connect of framework/client_endpoint.cc does).
  if (n == 1) stopFactory();
}

}  // namespace twist
