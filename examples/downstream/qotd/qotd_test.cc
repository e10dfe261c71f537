#include "qotd/qotd.h"

#include <memory>

#include "framework/string_transport.h"
#include "gtest/gtest.h"

namespace tutorial {
namespace {

// What the reactor does for each connection: build the protocol with the
// factory, set its factory(), attach the transport.
std::unique_ptr<twist::Protocol> Connect(QotdFactory& factory,
                                         twist::StringTransport& t) {
  std::unique_ptr<twist::Protocol> p = factory.buildProtocol(t.getPeer());
  p->setFactory(&factory);
  t.connect(p.get());
  return p;
}

TEST(QotdTest, WritesTheFactorysQuoteAndCloses) {
  QotdFactory factory("Time flies like an arrow");
  twist::StringTransport t;
  std::unique_ptr<twist::Protocol> p = Connect(factory, t);
  EXPECT_EQ(t.value(), "Time flies like an arrow\r\n");
  EXPECT_TRUE(t.disconnecting());
  EXPECT_FALSE(t.aborted());  // a clean close: the quote is flushed first
  t.disconnect();
}

TEST(QotdTest, DefaultQuoteIsTwisteds) {
  QotdFactory factory;
  twist::StringTransport t;
  std::unique_ptr<twist::Protocol> p = Connect(factory, t);
  EXPECT_EQ(t.value(), "An apple a day keeps the doctor away\r\n");
}

TEST(QotdTest, EachConnectionGetsTheQuote) {
  QotdFactory factory("again");
  for (int i = 0; i < 3; ++i) {
    twist::StringTransport t;
    std::unique_ptr<twist::Protocol> p = Connect(factory, t);
    EXPECT_EQ(t.value(), "again\r\n") << "connection " << i;
    t.disconnect();
  }
}

}  // namespace
}  // namespace tutorial
