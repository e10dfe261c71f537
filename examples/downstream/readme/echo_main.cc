#include <iostream>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "framework/protocol.h"
#include "framework/reactor.h"

class Echo : public twist::Protocol {
 public:
  void dataReceived(absl::string_view data) override { transport()->write(data); }
};

int fail(const absl::Status& status) {   // one line naming the problem, exit 1
  std::cerr << "echo: " << status.message() << "\n";
  return 1;
}

int main() {
  auto created = twist::Reactor::Create();
  if (!created.ok()) return fail(created.status());
  std::unique_ptr<twist::Reactor> reactor = *std::move(created);
  auto factory = twist::Factory::forProtocol<Echo>();
  // SIGINT/SIGTERM -> reactor->stop(). Every call that can fail returns a
  // Status, and ignoring one is a compiler warning ([[nodiscard]]).
  if (absl::Status s = reactor->installSignalHandlers(); !s.ok()) return fail(s);
  auto port = reactor->listenTCP(8000, factory.get(), 50, "127.0.0.1");
  if (!port.ok()) return fail(port.status());  // "cannot listen on 127.0.0.1:8000: Address already in use"
  reactor->run();                              // until SIGINT or SIGTERM
}
