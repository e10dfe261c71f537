#ifndef DOWNSTREAM_QOTD_QOTD_H_
#define DOWNSTREAM_QOTD_QOTD_H_

// Twisted's Quote of the Day server ("Writing Servers" in Twisted's docs),
// ported to twist: on connect, write the quote and close (RFC 865).

#include <memory>
#include <string>
#include <utility>

#include "framework/address.h"
#include "framework/protocol.h"

namespace tutorial {

/// One connection: sends its factory's quote, then closes.
class Qotd : public twist::Protocol {
 public:
  void connectionMade() override;
};

/// Builds a Qotd for each connection and holds the quote they send
/// (Twisted's QOTDFactory, whose protocols read self.factory.quote).
class QotdFactory : public twist::Factory {
 public:
  static constexpr char kDefaultQuote[] = "An apple a day keeps the doctor away";

  explicit QotdFactory(std::string quote = kDefaultQuote)
      : quote_(std::move(quote)) {}
  std::unique_ptr<twist::Protocol> buildProtocol(
      const twist::Address& addr) override;
  const std::string& quote() const { return quote_; }

 private:
  std::string quote_;
};

}  // namespace tutorial

#endif  // DOWNSTREAM_QOTD_QOTD_H_
