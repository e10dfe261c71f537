#include "absl/strings/ascii.h"
#include "framework/string_transport.h"
#include "gtest/gtest.h"
#include "protocols/basic.h"

class Shout : public twist::LineReceiver {
  void lineReceived(absl::string_view line) override { sendLine(absl::AsciiStrToUpper(line)); }
};

TEST(ShoutTest, Shouts) {
  Shout p;
  twist::StringTransport t;
  t.connect(&p);                         // connectionMade()
  t.receive("hel");
  t.receive("lo\r\n");                   // dataReceived(), in any chunks
  EXPECT_EQ(t.value(), "HELLO\r\n");     // what the protocol wrote
}
