#include "qotd/qotd.h"

#include "absl/strings/str_cat.h"

namespace tutorial {

void Qotd::connectionMade() {
  // The reactor sets factory() to the factory that built this protocol.
  transport()->write(absl::StrCat(factoryAs<QotdFactory>()->quote(), "\r\n"));
  // What was written is still sent before the connection closes.
  transport()->loseConnection();
}

std::unique_ptr<twist::Protocol> QotdFactory::buildProtocol(
    const twist::Address& addr) {
  return std::make_unique<Qotd>();
}

}  // namespace tutorial
