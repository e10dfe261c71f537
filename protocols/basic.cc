#include "protocols/basic.h"

#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace twist {

// ---- FramedReceiver ---------------------------------------------------------

void FramedReceiver::dataReceived(absl::string_view data) {
  if (stopped_) return;  // after a framing error: never buffer what is not parsed
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
  } else {
    buffer_.append(data.data(), data.size());
    input_ = buffer_;
  }
  deliver();
}

void FramedReceiver::keepUnconsumed() {
  std::string rest(unconsumed());
  rest += pending_;
  pending_.clear();
  buffer_ = std::move(rest);
  input_ = buffer_;
  start_ = 0;
}

void FramedReceiver::deliver() {
  busy_ = true;
  while (!paused_ && !stopped_ &&
         !(transport() != nullptr && transport()->readingPaused())) {
    // Input that arrived during the last callback joins what is left; no
    // callback is running now, so nothing views the old buffer.
    if (!pending_.empty()) keepUnconsumed();
    if (!deliverNext() && pending_.empty()) break;
  }
  // A fresh string, sized to what is left: an idle connection does not keep
  // the capacity of its largest read.
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
}

void LineReceiver::setLineMode(absl::string_view rest) {
  line_mode_ = true;
  scanned_ = 0;
  if (!rest.empty()) dataReceived(rest);
}

bool LineReceiver::deliverNext() {
  absl::string_view in = unconsumed();
  if (in.empty()) return false;
  if (!line_mode_) {
    consume(in.size());
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
  if (in.size() - kPrefixLength < length) return false;
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
  const size_t max_digits = absl::StrCat(maxLength()).size();
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
  if (in.size() - body <= length) return false;  // data and comma not all here
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
