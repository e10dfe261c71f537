// Fuzz target for the chat server (protocols/chat.h): three connections to
// one ChatFactory, each on a StringTransport, as tests/chat_test.cc drives
// it. The input chooses the options, then which connection reads what (in
// reads of any size, or canned commands), pauses its transport, plays a slow
// reader, or drops it and connects a new one in its place. Checked after
// every step:
//  - every user's output is whole "\r\n" lines of valid UTF-8 with no
//    control characters (C0, DEL, C1), whatever the others typed;
//  - nothing is written to a connection after it started closing, and a
//    closing connection holds no input;
//  - the room's names are exactly those of the open, named connections, and
//    each is a valid name;
//  - a read holding exactly one plain message from a chatting user reaches
//    every other chatting user (who reads) exactly once, as "<name> text"
//    with the text neutralised (by an independent model), and nobody else;
//  - each connection holds less than one line of max_line (plus "\r\n")
//    while it reads.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "framework/address.h"
#include "framework/string_transport.h"
#include "fuzz/fuzz_util.h"
#include "fuzz/targets.h"
#include "protocols/chat.h"

namespace twist {
namespace fuzz {
namespace chat {
namespace {

constexpr const char* kTarget = "chat";
constexpr absl::string_view kFffd = "\xEF\xBF\xBD";

// The rule of docs/design.md, written independently of protocols/chat.cc:
// controls and maximal ill-formed subsequences become U+FFFD.
std::string ModelNeutralise(absl::string_view s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    const uint8_t b = static_cast<uint8_t>(s[i]);
    if (b < 0x80) {
      if (b < 0x20 || b == 0x7F) {
        out.append(kFffd.data(), kFffd.size());
      } else {
        out.push_back(static_cast<char>(b));
      }
      ++i;
      continue;
    }
    size_t len = 0;
    uint8_t lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) len = 2;
    else if (b == 0xE0) { len = 3; lo = 0xA0; }
    else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) len = 3;
    else if (b == 0xED) { len = 3; hi = 0x9F; }
    else if (b == 0xF0) { len = 4; lo = 0x90; }
    else if (b >= 0xF1 && b <= 0xF3) len = 4;
    else if (b == 0xF4) { len = 4; hi = 0x8F; }
    if (len == 0) {
      out.append(kFffd.data(), kFffd.size());
      ++i;
      continue;
    }
    size_t j = 1;
    while (j < len && i + j < s.size()) {
      const uint8_t c = static_cast<uint8_t>(s[i + j]);
      if (j == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) break;
      ++j;
    }
    if (j < len) {
      out.append(kFffd.data(), kFffd.size());
      i += j;
      continue;
    }
    const bool c1 = b == 0xC2 && static_cast<uint8_t>(s[i + 1]) <= 0x9F;
    if (c1) {
      out.append(kFffd.data(), kFffd.size());
    } else {
      out.append(s.data() + i, len);
    }
    i += len;
  }
  return out;
}

struct Slot {
  std::unique_ptr<Protocol> protocol;
  std::unique_ptr<StringTransport> transport;
  std::string partial;        // input since the last '\n', as the model splits it
  bool was_closing = false;   // disconnecting() at the last check
  size_t fed_while_paused = 0;

  Chat* chat() const { return static_cast<Chat*>(protocol.get()); }
};

void Connect(ChatFactory& room, Slot& s) {
  if (s.transport != nullptr) s.transport->disconnect();
  s.transport = std::make_unique<StringTransport>();
  s.protocol = room.buildProtocol(Address());
  s.partial.clear();
  s.was_closing = false;
  s.fed_while_paused = 0;
  s.transport->connect(s.protocol.get());
}

constexpr size_t kMaxLines[] = {4, 8, 16, 64, 16384};
constexpr size_t kMaxBuffered[] = {0, 64, 1000, 64 * 1024};
constexpr absl::string_view kCanned[] = {
    "alice\n", "bob\r\n", "Zo\xC3\xAB\n", "/who\n", "/me waves\n", "/nick al\n",
    "/quit\n", "hi \x1B[31mred\x1B[0m\r\n", "caf\xC3\xA9 \xFF\xC2\x85 \xE2\x82\n",
    "/me \x07\x9B\n", "/\x1B]0;x\x07\n", "\n", "a\tb\n", "\xED\xA0\x80\xF4\x90\x80\x80\n",
};

}  // namespace

int FuzzOne(const uint8_t* data, size_t size) {
  Input in(data, size);
  ChatOptions options;
  const uint8_t config = in.byte();
  options.max_line = kMaxLines[config % std::size(kMaxLines)];
  options.max_buffered = kMaxBuffered[(config / 8) % std::size(kMaxBuffered)];
  ChatFactory room(options);
  Slot slots[3];
  for (Slot& s : slots) Connect(room, s);
  std::string outputs[3];  // what each slot was sent during the current step

  const auto collect = [&] {
    for (int i = 0; i < 3; ++i) {
      Slot& s = slots[i];
      std::string out = s.transport->take();
      TWIST_FUZZ_CHECK(kTarget, out.empty() || !s.was_closing,
                       absl::StrCat("user ", i, " was sent ", Show(out), " after closing"));
      TWIST_FUZZ_CHECK(kTarget, out.empty() || absl::EndsWith(out, "\r\n"),
                       absl::StrCat("user ", i, " was sent a partial line: ", Show(out)));
      for (absl::string_view line : absl::StrSplit(out, "\r\n")) {
        TWIST_FUZZ_CHECK(kTarget, ModelNeutralise(line) == line,
                         absl::StrCat("user ", i, " was sent unsafe text: ", Show(line)));
      }
      outputs[i] = std::move(out);
    }
  };

  const auto check_room = [&] {
    std::vector<std::string> expected;
    for (int i = 0; i < 3; ++i) {
      Slot& s = slots[i];
      const bool closing = s.transport->disconnecting();
      if (closing) {
        TWIST_FUZZ_CHECK(kTarget, s.chat()->heldBytes() == 0,
                         absl::StrCat("user ", i, " holds input while closing"));
      } else {
        const size_t bound = options.max_line + 2 + s.fed_while_paused;
        TWIST_FUZZ_CHECK(kTarget, s.chat()->heldBytes() < bound,
                         absl::StrCat("user ", i, " holds ", s.chat()->heldBytes(),
                                      " bytes, bound ", bound));
      }
      if (!s.transport->readingPaused()) s.fed_while_paused = 0;
      s.was_closing = closing;
      if (closing || s.chat()->name().empty()) continue;
      expected.push_back(s.chat()->name());
      TWIST_FUZZ_CHECK(kTarget, room.user(s.chat()->name()) == s.chat(),
                       absl::StrCat("user ", i, " is not in the room as ", Show(s.chat()->name())));
      TWIST_FUZZ_CHECK(kTarget, room.isValidName(s.chat()->name()) && IsValidUtf8(s.chat()->name()),
                       absl::StrCat("invalid name accepted: ", Show(s.chat()->name())));
    }
    std::sort(expected.begin(), expected.end());
    TWIST_FUZZ_CHECK(kTarget, room.names() == expected,
                     absl::StrCat("the room has ", room.names().size(), " names, expected ",
                                  expected.size()));
  };

  // Feeds `chunk` to slot i and checks the relay of a single plain message.
  const auto feed = [&](int i, absl::string_view chunk) {
    Slot& s = slots[i];
    // Before the read: who is chatting, and the one complete line it holds.
    const bool sender_chatting = !s.transport->disconnecting() &&
                                 !s.transport->readingPaused() && !s.chat()->name().empty();
    const std::string sender = s.chat()->name();
    bool receivers[3];
    for (int j = 0; j < 3; ++j) {
      const Slot& o = slots[j];
      receivers[j] = j != i && !o.transport->disconnecting() && !o.chat()->name().empty() &&
                     o.transport->bufferedBytes() <= options.max_buffered;
    }
    std::string all = s.partial + std::string(chunk);
    std::vector<std::string> lines;
    for (size_t nl; (nl = all.find('\n')) != std::string::npos; all.erase(0, nl + 1)) {
      lines.push_back(all.substr(0, nl));
    }
    if (!s.transport->disconnecting()) {
      s.partial = all;
      if (s.transport->readingPaused()) s.fed_while_paused += chunk.size();
    }
    s.transport->receive(chunk);
    collect();
    if (lines.size() != 1 || !sender_chatting) return;
    absl::string_view line = lines[0];
    absl::ConsumeSuffix(&line, "\r");
    if (line.empty() || line[0] == '/' || line.size() > options.max_line) return;
    // If the partial line after the message is already too long, the sender
    // is cut in the same read, and the others hear it leave.
    const std::string expected =
        absl::StrCat("<", sender, "> ", ModelNeutralise(line), "\r\n",
                     s.transport->disconnecting() ? absl::StrCat("* ", sender, " has left\r\n")
                                                  : "");
    for (int j = 0; j < 3; ++j) {
      if (j == i) {
        // The sender hears nothing back, unless the partial line after the
        // message made the read too long.
        TWIST_FUZZ_CHECK(kTarget, outputs[j].empty() || s.transport->disconnecting(),
                         absl::StrCat("the sender was sent ", Show(outputs[j])));
      } else if (receivers[j]) {
        TWIST_FUZZ_CHECK(kTarget, outputs[j] == expected,
                         absl::StrCat("user ", j, " was sent ", Show(outputs[j]), " for ",
                                      Show(line), ", expected ", Show(expected)));
      } else {
        TWIST_FUZZ_CHECK(kTarget, outputs[j].empty(),
                         absl::StrCat("user ", j, " was sent ", Show(outputs[j])));
      }
    }
  };

  collect();
  for (int ops = 0; ops < 2048 && !in.empty(); ++ops) {
    const uint8_t op = in.byte();
    const int i = (op >> 3) % 3;
    Slot& s = slots[i];
    switch (op & 7) {
      case 0:
        feed(i, in.bytes(1));
        break;
      case 1:
        feed(i, in.bytes(in.byte()));
        break;
      case 2:
        feed(i, in.bytes(in.u16() % 2048));
        break;
      case 3:
        feed(i, kCanned[in.byte() % std::size(kCanned)]);
        break;
      case 4:  // the peer goes away (or resets) and someone else connects
        Connect(room, s);
        collect();
        break;
      case 5: {  // a reader that falls behind, or catches up
        const size_t b = options.max_buffered;
        const size_t levels[] = {0, b, b + 1};
        s.transport->setBufferedBytes(levels[in.byte() % 3]);
        break;
      }
      case 6:
        if (s.transport->readingPaused()) {
          s.transport->resumeProducing();
        } else {
          s.transport->pauseProducing();
        }
        collect();
        break;
      case 7:  // several canned lines in one read
        feed(i, absl::StrCat(kCanned[in.byte() % std::size(kCanned)],
                             kCanned[in.byte() % std::size(kCanned)]));
        break;
    }
    check_room();
  }
  for (Slot& s : slots) s.transport->disconnect();
  collect();
  TWIST_FUZZ_CHECK(kTarget, room.userCount() == 0, "users left in the room after every disconnect");
  return 0;
}

}  // namespace chat
}  // namespace fuzz
}  // namespace twist
