// Protocol::factoryAs<F>(): a protocol reaches its own factory's type.

#include <memory>
#include <string>

#include "framework/address.h"
#include "framework/client_factory.h"
#include "framework/protocol.h"
#include "framework/reactor.h"
#include "gtest/gtest.h"
#include "protocols/policies.h"

namespace twist {
namespace {

class Greeting : public Protocol {};

class GreetingFactory : public Factory {
 public:
  std::unique_ptr<Protocol> buildProtocol(const Address&) override {
    return std::make_unique<Greeting>();
  }
  std::string greeting = "hello";
};

class DerivedGreetingFactory : public GreetingFactory {};

TEST(FactoryAsTest, GivesTheFactoryAsItsOwnType) {
  GreetingFactory factory;
  Greeting p;
  p.setFactory(&factory);
  ASSERT_EQ(p.factoryAs<GreetingFactory>(), &factory);
  EXPECT_EQ(p.factoryAs<GreetingFactory>()->greeting, "hello");
  EXPECT_EQ(p.factoryAs<Factory>(), &factory);
}

TEST(FactoryAsTest, GivesADerivedFactoryAsItsBase) {
  DerivedGreetingFactory factory;
  Greeting p;
  p.setFactory(&factory);
  EXPECT_EQ(p.factoryAs<GreetingFactory>(), &factory);
}

TEST(FactoryAsTest, IsNullForAnotherTypeOrNoFactory) {
  Greeting p;
  EXPECT_EQ(p.factoryAs<GreetingFactory>(), nullptr);
  auto other = Factory::forProtocol<Greeting>();
  p.setFactory(other.get());
  EXPECT_EQ(p.factoryAs<GreetingFactory>(), nullptr);
  EXPECT_EQ(p.factoryAs<ClientFactory>(), nullptr);
}

// Under a wrapping factory, the wrapped protocol's factory is still the one
// that built it, so factoryAs finds the user's type.
TEST(FactoryAsTest, FindsTheInnerFactoryUnderTimeoutFactory) {
  absl::StatusOr<std::unique_ptr<Reactor>> reactor = Reactor::Create();
  ASSERT_TRUE(reactor.ok()) << reactor.status();
  GreetingFactory inner;
  TimeoutFactory timed(reactor->get(), &inner, absl::Seconds(10));
  std::unique_ptr<Protocol> outer = timed.buildProtocol(Address());
  ASSERT_NE(outer, nullptr);
  auto* wrapper = dynamic_cast<ProtocolWrapper*>(outer.get());
  ASSERT_NE(wrapper, nullptr);
  EXPECT_EQ(wrapper->wrappedProtocol()->factoryAs<GreetingFactory>(), &inner);
}

}  // namespace
}  // namespace twist
