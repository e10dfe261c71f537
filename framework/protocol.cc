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
  if (num_ports_++ == 0) startFactory();
}

void Factory::doStop() {
  if (num_ports_ == 0) return;
  // Nothing after stopFactory(): a factory may end its own life there
  // (the Deferred connect of framework/client_endpoint.cc does).
  if (--num_ports_ == 0) stopFactory();
}

}  // namespace twist
