#include "protocols/menu_bot.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace twist {

MenuBot::MenuBot(ReactorTime* time, const MenuBotOptions& options)
    : time_(time), flush_delay_(options.flush_delay) {
  // "\n" ends a line; a "\r" before it is the ending's too (lineReceived).
  setDelimiter("\n");
  setMaxLength(options.max_message + 1);  // room for the "\r" of "\r\n"
}

void MenuBot::connectionMade() { transport()->write(kMenuWelcome); }

void MenuBot::dataReceived(absl::string_view data) {
  LineReceiver::dataReceived(data);
  if (transport() == nullptr || transport()->disconnecting()) return;
  // Every arrival restarts the wait: a message split over several reads is
  // whole once the client has been quiet for flush_delay.
  if (heldBytes() == 0) {
    flush_call_.cancel().IgnoreError();
  } else if (flush_delay_ <= absl::ZeroDuration()) {
    flush();
  } else if (!flush_call_.reset(flush_delay_).ok()) {
    flush_call_ = time_->callLater(flush_delay_, [this] { flush(); });
  }
}

void MenuBot::lineReceived(absl::string_view line) {
  flush_call_.cancel().IgnoreError();
  if (absl::ConsumeSuffix(&line, "\r")) {
    answer(line, "\r\n");
  } else {
    answer(line, "\n");
  }
}

void MenuBot::answer(absl::string_view message, absl::string_view ending) {
  if (message == "exit") {
    transport()->loseConnection();
    return;
  }
  const absl::string_view reply = message == "0" ? kMenuOperator : kMenuRetry;
  if (ending.empty()) {
    transport()->write(reply);
  } else {
    const absl::string_view parts[] = {reply, ending};
    transport()->writeSequence(parts);
  }
}

void MenuBot::flush() {
  if (transport() == nullptr || transport()->disconnecting() || heldBytes() == 0) return;
  std::string message = clearLineBuffer();
  // A "\r" whose "\n" is late still belongs to the ending, not the message.
  absl::string_view m = message;
  if (absl::ConsumeSuffix(&m, "\r")) {
    answer(m, "\r\n");
  } else {
    answer(m, "");
  }
}

void MenuBot::readConnectionLost() {
  // The client has said all it will: answer what it left, then hang up.
  flush_call_.cancel().IgnoreError();
  flush();
  if (!transport()->disconnecting()) transport()->loseConnection();
}

void MenuBot::connectionLost(const absl::Status& reason) {
  flush_call_.cancel().IgnoreError();
  LineReceiver::connectionLost(reason);
}

std::unique_ptr<Protocol> MenuBotFactory::buildProtocol(const Address&) {
  return std::make_unique<MenuBot>(time_, options_);
}

}  // namespace twist
