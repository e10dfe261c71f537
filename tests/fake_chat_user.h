#ifndef TWIST_TESTS_FAKE_CHAT_USER_H_
#define TWIST_TESTS_FAKE_CHAT_USER_H_

// One chat user on a StringTransport: a protocol of `factory`, connected,
// and the lines it was sent so far. For the chat tests that drive a
// ChatFactory without sockets (chat_threads_test, chat_link_test).

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "framework/address.h"
#include "framework/protocol.h"
#include "framework/string_transport.h"

namespace twist {
namespace testing {

struct FakeChatUser {
  explicit FakeChatUser(Factory* factory) : protocol(factory->buildProtocol(Address())) {
    protocol->setFactory(factory);
    transport.connect(protocol.get());
  }
  // The lines sent since the last call, without their "\r\n".
  std::vector<std::string> lines() {
    const std::string all = transport.take();
    absl::string_view out = all;
    absl::ConsumeSuffix(&out, "\r\n");
    if (out.empty()) return {};
    return absl::StrSplit(out, "\r\n");
  }
  std::unique_ptr<Protocol> protocol;
  StringTransport transport;
};

}  // namespace testing
}  // namespace twist

#endif  // TWIST_TESTS_FAKE_CHAT_USER_H_
