#include "protocols/echo.h"

namespace twist {

void Echo::connectionMade() {
  // Backpressure: pause reading while our echo is not being read.
  transport()->registerProducer(transport(), /*streaming=*/true).IgnoreError();
}

void Echo::dataReceived(absl::string_view data) { transport()->write(data); }

void Echo::readConnectionLost() { transport()->loseConnection(); }

}  // namespace twist
