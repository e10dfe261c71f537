#ifndef TWIST_PROTOCOLS_BASIC_H_
#define TWIST_PROTOCOLS_BASIC_H_

// Framing protocols users subclass (twisted.protocols.basic): lines,
// 32-bit length-prefixed strings and netstrings.
//
// Every receiver here gives the same sequence of callbacks whatever the
// chunking of its input: all at once, byte by byte or split anywhere.
// A string_view handed to a callback is valid until that callback returns.
// Each keeps at most one frame's worth of input (its maximum length plus the
// framing), so a peer cannot make it grow without bound.

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "framework/protocol.h"

namespace twist {

/// The buffering, re-entrancy and pausing the receivers below share (the
/// _PauseableMixin of Twisted). Not used directly.
///
/// Pausing: pauseProducing() stops the callbacks at once, even in the
/// middle of input already received, and stops reading from the transport;
/// resumeProducing() delivers what was held back, then reads again. Pausing
/// the transport itself (transport()->pauseProducing(), e.g. from a
/// callback) holds back the following frames the same way, until
/// transport()->resumeProducing().
///
/// Closing: once transport()->disconnecting() is true (loseConnection(),
/// abortConnection(), stopProducing(), e.g. from a callback), no more frames
/// are delivered, and input is no longer buffered, as in Twisted, whose
/// LineReceiver stops while `transport.disconnecting`. LineReceiver's raw
/// mode is the exception, as in Twisted: rawDataReceived() still gets what
/// arrives or is held (but a lineReceived() that switches to raw mode and
/// closes ends delivery).
///
/// Cost: each received byte is copied at most a constant number of times,
/// whatever the frame size and however the input is split: a read is parsed
/// where it lies, and only an unfinished frame is held, by appending.
class FramedReceiver : public Protocol, public BufferingProtocol {
 public:
  void dataReceived(absl::string_view data) override;
  void readingResumed() override;

  /// Holds back further callbacks and stops reading from the transport.
  void pauseProducing();
  /// Delivers what was held back (unless a callback pauses again), then
  /// reads from the transport again.
  void resumeProducing();
  /// No more callbacks; loses the connection.
  void stopProducing();
  bool paused() const { return paused_; }
  /// Input held back: an unfinished frame, or what a pause or a re-entrant
  /// call left. Outside a callback, while not paused, it is less than one
  /// frame of maxLength() plus its framing.
  size_t heldBytes() const { return input_.size() - start_ + pending_.size(); }

 protected:
  /// Parses the unconsumed input and makes at most one callback. Returns
  /// false when it needs more input or must stop.
  virtual bool deliverNext() = 0;

  /// Input received and not consumed yet.
  absl::string_view unconsumed() const {
    return input_.substr(start_);
  }
  /// Marks the first n bytes of unconsumed() as consumed. Views into it
  /// stay valid until the current callback returns.
  void consume(size_t n) { start_ += n; }
  /// Consumes everything buffered, including input that arrived re-entrantly
  /// during a callback, and returns a copy of it.
  std::string takeBuffer();
  /// Stops delivering: nothing more is parsed until the connection ends.
  /// Used after a framing error.
  void stopDelivering() { stopped_ = true; }
  bool stopped() const { return stopped_; }
  /// The unfinished frame at the start of unconsumed() is `total` bytes
  /// long, framing included: the buffer holding it is sized once. Callers
  /// bound `total` by their maximum length.
  void expectFrame(size_t total) { frame_hint_ = total; }
  /// Whether delivery starts while the transport is disconnecting (raw mode).
  void deliverWhileDisconnecting(bool yes) { deliver_while_disconnecting_ = yes; }
  /// Called by deliverNext() before a raw callback: delivery goes on after
  /// it even if the transport is disconnecting.
  void rawCallback() { raw_callback_ = true; }

 private:
  void deliver();
  // Paused, stopped, or the transport is paused or (unless
  // even_if_disconnecting) closing.
  bool blocked(bool even_if_disconnecting) const;
  // Makes buffer_ hold exactly the unconsumed input plus pending_.
  void keepUnconsumed();

  // The input being parsed: the caller's read itself when nothing was held
  // back (no copy; valid until dataReceived returns), else buffer_, which
  // holds what earlier reads left.
  absl::string_view input_;
  std::string buffer_;
  size_t start_ = 0;     // input_[0, start_) is consumed
  std::string pending_;  // input that arrived during a callback
  size_t frame_hint_ = 0;  // from expectFrame(), for the next keepUnconsumed()
  bool in_buffer_ = false;  // input_ views buffer_, not the caller's read
  bool busy_ = false;    // inside deliver(): callbacks may re-enter
  bool paused_ = false;
  bool stopped_ = false;
  bool deliver_while_disconnecting_ = false;
  bool raw_callback_ = false;  // the last deliverNext() called rawDataReceived()
};

/// A protocol that receives lines (twisted.protocols.basic.LineReceiver).
///
///   class Shout : public twist::LineReceiver {
///     void lineReceived(absl::string_view line) override {
///       sendLine(absl::AsciiStrToUpper(line));
///     }
///   };
///
/// Lines end with delimiter() (default "\r\n"), which is not part of the
/// line passed to lineReceived(). A line longer than maxLength() (default
/// 16384 bytes) calls lineLengthExceeded(), which closes the connection
/// unless overridden; it is detected as soon as maxLength() + the delimiter's
/// length bytes have arrived without a delimiter.
class LineReceiver : public FramedReceiver {
 public:
  static constexpr size_t kDefaultMaxLength = 16384;

  /// Called for each complete line, without its delimiter.
  virtual void lineReceived(absl::string_view line) = 0;
  /// Called in raw mode with the data as it arrives.
  virtual void rawDataReceived(absl::string_view data) {}
  /// Called with the offending line (and whatever was buffered after it;
  /// that input is discarded). By default closes the connection.
  virtual void lineLengthExceeded(absl::string_view line);

  /// Writes `line` followed by the delimiter.
  void sendLine(absl::string_view line);

  /// Must not be empty. Takes effect for the next line looked for.
  void setDelimiter(absl::string_view delimiter);
  const std::string& delimiter() const { return delimiter_; }
  void setMaxLength(size_t max_length) { max_length_ = max_length; }
  size_t maxLength() const { return max_length_; }

  /// From now on, input (including what is already buffered after the
  /// current line) goes to rawDataReceived().
  void setRawMode();
  /// Back to lines; `rest` is input to parse first, e.g. the bytes a raw
  /// protocol read past its end.
  void setLineMode(absl::string_view rest = {});
  bool lineMode() const { return line_mode_; }
  /// Discards and returns everything buffered and not yet delivered.
  std::string clearLineBuffer();

 protected:
  bool deliverNext() override;

 private:
  std::string delimiter_ = "\r\n";
  size_t max_length_ = kDefaultMaxLength;
  // Where the delimiter search resumes, as an offset into unconsumed(): a
  // long line arriving in small pieces is scanned once, not once per piece.
  size_t scanned_ = 0;
  bool line_mode_ = true;
};

/// The base of receivers of strings framed by the peer
/// (twisted.protocols.basic's IntNStringReceiver and NetstringReceiver).
class StringReceiver : public FramedReceiver {
 public:
  /// Called for each complete string.
  virtual void stringReceived(absl::string_view data) = 0;

  void setMaxLength(size_t max_length) { max_length_ = max_length; }
  size_t maxLength() const { return max_length_; }

  /// Why the peer's input was rejected, once it was: then no more strings
  /// are delivered and the connection is being closed. OK until then.
  const absl::Status& brokenPeer() const { return broken_peer_; }

 protected:
  explicit StringReceiver(size_t max_length) : max_length_(max_length) {}
  /// Records `why` in brokenPeer(), stops delivering and closes the
  /// connection (after what was already written is sent). Overriders should
  /// call it.
  virtual void framingError(absl::Status why);

 private:
  size_t max_length_;
  absl::Status broken_peer_;
};

/// Strings prefixed by their length as a 4-byte big-endian unsigned integer
/// (twisted.protocols.basic.Int32StringReceiver).
class Int32StringReceiver : public StringReceiver {
 public:
  static constexpr size_t kDefaultMaxLength = 99999;  // as in Twisted
  static constexpr size_t kPrefixLength = 4;

  Int32StringReceiver() : StringReceiver(kDefaultMaxLength) {}

  /// Writes the prefix and `data`. Fails, writing nothing, if `data` is
  /// longer than the prefix can say (4 GiB - 1).
  absl::Status sendString(absl::string_view data);

  /// The peer announced a string longer than maxLength(). By default a
  /// framing error that closes the connection.
  virtual void lengthLimitExceeded(uint64_t length);

 protected:
  bool deliverNext() override;
};

/// Netstrings, "LENGTH:DATA," with LENGTH in decimal
/// (https://cr.yp.to/proto/netstrings.txt,
/// twisted.protocols.basic.NetstringReceiver). A length with a leading zero,
/// a non-digit, a length over maxLength() or a missing comma is a framing
/// error: brokenPeer() says which, and the connection is closed.
class NetstringReceiver : public StringReceiver {
 public:
  static constexpr size_t kDefaultMaxLength = 99999;  // as in Twisted

  NetstringReceiver() : StringReceiver(kDefaultMaxLength) {}

  void sendString(absl::string_view data);

 protected:
  bool deliverNext() override;
};

}  // namespace twist

#endif  // TWIST_PROTOCOLS_BASIC_H_
