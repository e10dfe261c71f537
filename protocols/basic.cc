#include "protocols/basic.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace twist {

// ---- FramedReceiver ---------------------------------------------------------

namespace {
// A held buffer keeps up to this much capacity between frames; beyond it,
// capacity left over from a large frame is given back.
constexpr size_t kKeptCapacity = 4096;
}  // namespace

bool FramedReceiver::blocked(bool even_if_disconnecting) const {
  if (paused_ || stopped_) return true;
  const Transport* t = transport();
  return t != nullptr &&
         (t->readingPaused() || (!even_if_disconnecting && t->disconnecting()));
}

void FramedReceiver::dataReceived(absl::string_view data) {
  if (stopped_) return;  // after a framing error: never buffer what is not parsed
  if (!deliver_while_disconnecting_ && transport() != nullptr &&
      transport()->disconnecting()) {
    return;  // would never be delivered: nothing after loseConnection()
  }
  if (busy_) {
    // Re-entered from a callback (e.g. setLineMode(rest)): buffer_ must not
    // move while the callback may still hold a view into it.
    pending_.append(data.data(), data.size());
    return;
  }
  if (buffer_.empty()) {
    // Nothing held from earlier reads: parse this one where it lies, and
    // copy only what is left of it at the end.
    input_ = data;
    in_buffer_ = false;
  } else {
    // Appending costs the new bytes only (amortised), never the held ones.
    buffer_.append(data.data(), data.size());
    input_ = buffer_;
    in_buffer_ = true;
  }
  deliver();
}

void FramedReceiver::keepUnconsumed() {
  // No callback is running: nothing views input_ any more. Every byte moved
  // here arrived in the current read (or re-entrantly during it): if start_
  // is past 0, the frame held before this read was completed by it. So the
  // cost per received byte does not depend on the frame size.
  const size_t rest = input_.size() - start_;
  const size_t need = std::max(rest + pending_.size(), frame_hint_);
  frame_hint_ = 0;
  if (in_buffer_) {
    if (start_ > 0) buffer_.erase(0, start_);
    if (buffer_.capacity() > kKeptCapacity && buffer_.capacity() / 4 > need) {
      // Give back what a large finished frame left (copies at most `rest`).
      std::string smaller;
      smaller.reserve(need);
      smaller.append(buffer_);
      buffer_.swap(smaller);
    }
  } else {
    if (need > buffer_.capacity()) buffer_.reserve(need);
    buffer_.assign(input_.data() + start_, rest);
  }
  if (need > buffer_.capacity()) buffer_.reserve(need);
  if (!pending_.empty()) {
    buffer_.append(pending_);
    if (pending_.capacity() > kKeptCapacity) {
      std::string().swap(pending_);
    } else {
      pending_.clear();
    }
  }
  input_ = buffer_;
  in_buffer_ = true;
  start_ = 0;
}

void FramedReceiver::deliver() {
  busy_ = true;
  // Checked once here and after each callback, the only code that can
  // pause, stop or close. As in Twisted, raw mode goes on while the
  // connection is closing, but a line callback that closes stops delivery
  // even if it switched to raw mode.
  if (!blocked(deliver_while_disconnecting_)) {
    while (true) {
      // Input that arrived during the last callback joins what is left; no
      // callback is running now, so nothing views the old buffer.
      if (!pending_.empty()) keepUnconsumed();
      raw_callback_ = false;
      const bool called_back = deliverNext();
      if (!called_back && pending_.empty()) break;
      if (blocked(raw_callback_)) break;
    }
  }
  keepUnconsumed();
  busy_ = false;
}

std::string FramedReceiver::takeBuffer() {
  std::string out(unconsumed());
  out += pending_;
  pending_.clear();
  start_ = input_.size();  // the input itself is left alone: views stay valid
  return out;
}

void FramedReceiver::pauseProducing() {
  paused_ = true;
  if (transport() != nullptr) transport()->pauseProducing();
}

void FramedReceiver::resumeProducing() {
  paused_ = false;
  if (transport() != nullptr && transport()->readingPaused()) {
    // Delivers what was held back through readingResumed(); a callback
    // that pauses again leaves the transport paused.
    transport()->resumeProducing();
  } else if (!busy_) {
    deliver();  // inside a callback the running loop goes on by itself
  }
}

void FramedReceiver::readingResumed() {
  if (!busy_ && !paused_) deliver();
}

void FramedReceiver::stopProducing() {
  stopped_ = true;
  if (transport() != nullptr) transport()->stopProducing();
}

// ---- LineReceiver -----------------------------------------------------------

void LineReceiver::lineLengthExceeded(absl::string_view line) {
  transport()->loseConnection();
}

void LineReceiver::sendLine(absl::string_view line) {
  absl::string_view pieces[] = {line, delimiter_};
  transport()->writeSequence(pieces);
}

void LineReceiver::setDelimiter(absl::string_view delimiter) {
  if (delimiter.empty()) return;  // would match everywhere
  delimiter_ = std::string(delimiter);
  scanned_ = 0;
}

std::string LineReceiver::clearLineBuffer() {
  scanned_ = 0;  // the next input is searched from its start
  return takeBuffer();
}

void LineReceiver::setRawMode() {
  line_mode_ = false;
  scanned_ = 0;
  deliverWhileDisconnecting(true);  // Twisted checks disconnecting after lines only
}

void LineReceiver::setLineMode(absl::string_view rest) {
  line_mode_ = true;
  scanned_ = 0;
  deliverWhileDisconnecting(false);
  if (!rest.empty()) dataReceived(rest);
}

bool LineReceiver::deliverNext() {
  absl::string_view in = unconsumed();
  if (in.empty()) return false;
  if (!line_mode_) {
    consume(in.size());
    rawCallback();
    rawDataReceived(in);
    return true;
  }
  if (scanned_ > in.size()) scanned_ = 0;  // the buffer was cleared meanwhile
  const size_t pos = in.find(delimiter_, scanned_);
  if (pos == absl::string_view::npos) {
    // No delimiter in maxLength() + delimiter bytes: the line is too long,
    // and waiting for the rest would let the buffer grow without bound.
    if (in.size() >= delimiter_.size() &&
        in.size() - delimiter_.size() >= max_length_) {
      consume(in.size());
      scanned_ = 0;
      lineLengthExceeded(in);
      return false;
    }
    // The delimiter may start in the last delimiter_.size() - 1 bytes.
    scanned_ = in.size() >= delimiter_.size() ? in.size() - delimiter_.size() + 1 : 0;
    return false;
  }
  scanned_ = 0;
  if (pos > max_length_) {
    consume(in.size());
    lineLengthExceeded(in);
    return false;
  }
  consume(pos + delimiter_.size());
  lineReceived(in.substr(0, pos));
  return true;
}

// ---- StringReceiver ---------------------------------------------------------

void StringReceiver::framingError(absl::Status why) {
  if (broken_peer_.ok()) broken_peer_ = std::move(why);
  stopDelivering();
  takeBuffer();
  if (transport() != nullptr) transport()->loseConnection();
}

// ---- Int32StringReceiver ----------------------------------------------------

absl::Status Int32StringReceiver::sendString(absl::string_view data) {
  if (data.size() > UINT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a string of ", data.size(), " bytes does not fit a 32-bit length prefix"));
  }
  const uint32_t n = static_cast<uint32_t>(data.size());
  const char prefix[kPrefixLength] = {
      static_cast<char>(n >> 24), static_cast<char>(n >> 16),
      static_cast<char>(n >> 8), static_cast<char>(n)};
  absl::string_view pieces[] = {absl::string_view(prefix, kPrefixLength), data};
  transport()->writeSequence(pieces);
  return absl::OkStatus();
}

void Int32StringReceiver::lengthLimitExceeded(uint64_t length) {
  framingError(absl::InvalidArgumentError(
      absl::StrCat("the peer announced a string of ", length,
                   " bytes; the maximum is ", maxLength())));
}

bool Int32StringReceiver::deliverNext() {
  absl::string_view in = unconsumed();
  if (in.size() < kPrefixLength) return false;
  const auto byte = [&](int i) { return static_cast<uint32_t>(static_cast<uint8_t>(in[i])); };
  const uint32_t length = byte(0) << 24 | byte(1) << 16 | byte(2) << 8 | byte(3);
  if (length > maxLength()) {
    // Whatever follows cannot be parsed any more: drop it for good.
    stopDelivering();
    takeBuffer();
    lengthLimitExceeded(length);
    return false;
  }
  if (in.size() - kPrefixLength < length) {
    expectFrame(kPrefixLength + length);
    return false;
  }
  consume(kPrefixLength + length);
  stringReceived(in.substr(kPrefixLength, length));
  return true;
}

// ---- NetstringReceiver ------------------------------------------------------

void NetstringReceiver::sendString(absl::string_view data) {
  const std::string length = absl::StrCat(data.size(), ":");
  absl::string_view pieces[] = {length, data, ","};
  transport()->writeSequence(pieces);
}

bool NetstringReceiver::deliverNext() {
  absl::string_view in = unconsumed();
  if (in.empty()) return false;
  size_t max_digits = 1;
  for (size_t m = maxLength(); m >= 10; m /= 10) ++max_digits;
  size_t colon = 0;
  while (colon < in.size() && in[colon] != ':') {
    const char c = in[colon];
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      framingError(absl::InvalidArgumentError(absl::StrFormat(
          "bad netstring: length contains %s",
          absl::ascii_isprint(static_cast<unsigned char>(c))
              ? absl::StrCat("'", absl::string_view(&c, 1), "'")
              : absl::StrFormat("byte 0x%02x", static_cast<unsigned char>(c)))));
      return false;
    }
    if (++colon > max_digits) {
      framingError(absl::InvalidArgumentError(absl::StrCat(
          "bad netstring: length has more than ", max_digits,
          " digits; the maximum is ", maxLength())));
      return false;
    }
  }
  if (colon == in.size()) return false;  // the length is not complete yet
  if (colon == 0) {
    framingError(absl::InvalidArgumentError("bad netstring: empty length"));
    return false;
  }
  if (colon > 1 && in[0] == '0') {
    framingError(absl::InvalidArgumentError("bad netstring: length has a leading zero"));
    return false;
  }
  uint64_t length = 0;
  if (!absl::SimpleAtoi(in.substr(0, colon), &length) || length > maxLength()) {
    framingError(absl::InvalidArgumentError(absl::StrCat(
        "bad netstring: length ", in.substr(0, colon), " exceeds the maximum ",
        maxLength())));
    return false;
  }
  const size_t body = colon + 1;
  if (in.size() - body <= length) {  // data and comma not all here
    expectFrame(body + length + 1);
    return false;
  }
  if (in[body + length] != ',') {
    framingError(absl::InvalidArgumentError(absl::StrCat(
        "bad netstring: missing ',' after ", length, " bytes of data")));
    return false;
  }
  consume(body + length + 1);
  stringReceived(in.substr(body, length));
  return true;
}

}  // namespace twist
