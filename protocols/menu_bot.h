#ifndef TWIST_PROTOCOLS_MENU_BOT_H_
#define TWIST_PROTOCOLS_MENU_BOT_H_

// The seed texts' "10086" customer-service menu (their ThreadingTCPServer
// example, which gives each client a thread), served on the reactor.

#include <cstddef>
#include <memory>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "framework/delayed_call.h"
#include "framework/protocol.h"
#include "framework/reactor_time.h"
#include "protocols/basic.h"

namespace twist {

/// The seed's strings, byte for byte (UTF-8; the seed sends none of them
/// with a line ending).
inline constexpr absl::string_view kMenuWelcome = "欢迎致电 10086,请输入1xxx,0转人工服务.";
inline constexpr absl::string_view kMenuOperator = "通过可能会被录音.balabala一大推";
inline constexpr absl::string_view kMenuRetry = "请重新输入.";

struct MenuBotOptions {
  /// Input without a line ending that is followed by nothing for this long
  /// is taken as a whole message: the seed's own client sends each message
  /// in one send() with no line ending. Zero: at once, each read.
  absl::Duration flush_delay = absl::Milliseconds(200);
  /// Longest message, in bytes; a longer one closes the connection
  /// (LineReceiver's lineLengthExceeded). The seed reads 1024 at a time.
  size_t max_message = 1024;
};

/// One caller's conversation. On connect it sends kMenuWelcome; then each
/// message "0" gets kMenuOperator, "exit" closes the connection, anything
/// else gets kMenuRetry. A message is a line ending in "\n" or "\r\n"; the
/// answer ends the way the message did ("\r\n", "\n"), so that nc shows one
/// answer per line while the seed's client, whose messages end with no
/// line ending, gets the seed's bytes exactly. Input left without a line
/// ending is a message of its own after flush_delay of silence, or when
/// the client shuts down its side (the bot then answers and closes).
class MenuBot : public LineReceiver, public HalfCloseableProtocol {
 public:
  MenuBot(ReactorTime* time, const MenuBotOptions& options);

  void connectionMade() override;
  void dataReceived(absl::string_view data) override;
  void lineReceived(absl::string_view line) override;
  void readConnectionLost() override;
  void connectionLost(const absl::Status& reason) override;

 private:
  // Answers one message; `ending` is how it ended ("" for none).
  void answer(absl::string_view message, absl::string_view ending);
  // The held input, without a line ending, as one message.
  void flush();

  ReactorTime* time_;
  absl::Duration flush_delay_;
  DelayedCall flush_call_;
};

/// Builds a MenuBot per connection; `time` (the reactor) runs the flush
/// timers and must outlive the factory's connections.
class MenuBotFactory : public Factory {
 public:
  explicit MenuBotFactory(ReactorTime* time, MenuBotOptions options = {})
      : time_(time), options_(options) {}
  std::unique_ptr<Protocol> buildProtocol(const Address& peer) override;

 private:
  ReactorTime* time_;
  MenuBotOptions options_;
};

}  // namespace twist

#endif  // TWIST_PROTOCOLS_MENU_BOT_H_
