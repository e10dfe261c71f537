// Fuzz targets for LineReceiver, Int32StringReceiver and NetstringReceiver
// over StringTransport.
//
// The input is a program: it picks the maximum length (and the delimiter),
// then interleaves reads of any size, pauses and resumes of the receiver and
// of the transport, loseConnection()/abortConnection()/stopProducing(), new
// length limits, and actions a frame callback takes (pause, close, re-entrant
// dataReceived, clearLineBuffer, raw mode). After every step the receiver is
// compared with a model: a plain, non-incremental parser of all the input it
// holds, written from the documented rules. Checked after every step:
//  - the callbacks so far are exactly the model's (every complete frame once,
//    in order, nothing after loseConnection() or a framing error);
//  - heldBytes() is exactly what the model holds, and, while not paused, less
//    than one frame of the largest maximum length plus its framing (more only
//    by what was read while paused);
//  - no callback after connectionLost().

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "framework/string_transport.h"
#include "fuzz/fuzz_util.h"
#include "fuzz/targets.h"
#include "protocols/basic.h"

namespace twist {
namespace fuzz {
namespace {

// What a frame callback does next, armed by the input.
enum class Act : uint8_t {
  kNone,
  kPause,           // the receiver's pauseProducing()
  kPauseTransport,  // transport()->pauseProducing()
  kLose,            // transport()->loseConnection()
  kAbort,           // transport()->abortConnection()
  kStop,            // the receiver's stopProducing()
  kInject,          // re-entrant dataReceived(inject)
  kClearOrRaw,      // clearLineBuffer() (raw == 0) or raw mode for `raw` bytes
};

struct Armed {
  Act act = Act::kNone;
  std::string inject;
  size_t raw = 0;
};

// Events as strings: "F:frame", "R:raw bytes" (merged: raw chunking follows
// the reads by design), "X:line too long", "E" (framing error),
// "C:what clearLineBuffer() returned".
void AddRaw(std::vector<std::string>* events, absl::string_view data) {
  if (!events->empty() && absl::StartsWith(events->back(), "R:")) {
    events->back().append(data.data(), data.size());
  } else {
    events->push_back(absl::StrCat("R:", data));
  }
}

// The receiver's side of the test: what the callbacks saw.
struct Record {
  explicit Record(const char* t) : target(t) {}
  const char* target;
  std::vector<std::string> events;
  Armed armed;
  bool lost = false;
};

// Applies the armed action from inside a frame callback; `self` is the
// receiver under test.
template <typename Receiver>
void ApplyArmed(Record* r, Receiver* self) {
  Armed a = std::exchange(r->armed, Armed());
  switch (a.act) {
    case Act::kNone: break;
    case Act::kPause: self->pauseProducing(); break;
    case Act::kPauseTransport: self->transport()->pauseProducing(); break;
    case Act::kLose: self->transport()->loseConnection(); break;
    case Act::kAbort: self->transport()->abortConnection(); break;
    case Act::kStop: self->stopProducing(); break;
    case Act::kInject: self->dataReceived(a.inject); break;
    case Act::kClearOrRaw: self->clearOrRaw(a.raw); break;
  }
}

class FuzzLines : public LineReceiver {
 public:
  explicit FuzzLines(Record* r) : r_(r) {}
  void lineReceived(absl::string_view line) override {
    TWIST_FUZZ_CHECK(r_->target, !r_->lost, "lineReceived after connectionLost");
    r_->events.push_back(absl::StrCat("F:", line));
    ApplyArmed(r_, this);
  }
  void rawDataReceived(absl::string_view data) override {
    TWIST_FUZZ_CHECK(r_->target, !r_->lost, "rawDataReceived after connectionLost");
    TWIST_FUZZ_CHECK(r_->target, raw_left_ > 0 && !data.empty(), "unexpected raw data");
    absl::string_view mine = data.substr(0, raw_left_);
    AddRaw(&r_->events, mine);
    raw_left_ -= mine.size();
    if (raw_left_ == 0) setLineMode(data.substr(mine.size()));
  }
  void lineLengthExceeded(absl::string_view line) override {
    TWIST_FUZZ_CHECK(r_->target, !r_->lost, "lineLengthExceeded after connectionLost");
    r_->events.push_back(absl::StrCat("X:", line));
    LineReceiver::lineLengthExceeded(line);
  }
  void connectionLost(const absl::Status&) override { r_->lost = true; }
  void clearOrRaw(size_t raw) {
    if (raw == 0) {
      r_->events.push_back(absl::StrCat("C:", clearLineBuffer()));
    } else {
      raw_left_ = raw;
      setRawMode();
    }
  }

 private:
  Record* r_;
  size_t raw_left_ = 0;
};

template <typename Base>
class FuzzStrings : public Base {
 public:
  explicit FuzzStrings(Record* r) : r_(r) {}
  void stringReceived(absl::string_view s) override {
    TWIST_FUZZ_CHECK(r_->target, !r_->lost, "stringReceived after connectionLost");
    r_->events.push_back(absl::StrCat("F:", s));
    ApplyArmed(r_, this);
  }
  void framingError(absl::Status why) override {
    TWIST_FUZZ_CHECK(r_->target, !r_->lost, "framing error after connectionLost");
    r_->events.push_back("E");
    Base::framingError(std::move(why));
  }
  void connectionLost(const absl::Status&) override { r_->lost = true; }
  void clearOrRaw(size_t) {}  // line receivers only

 private:
  Record* r_;
};

// ---- Models -----------------------------------------------------------------

// The documented behaviour, parsed the plain way: `stream` is all input held
// and not consumed; each step looks at the whole of it.
class Model {
 public:
  enum class Step { kNeed, kFrame, kRaw, kError };

  virtual ~Model() = default;

  std::string stream;
  std::vector<std::string> events;
  Armed armed;
  size_t max = 0;
  bool recv_paused = false;
  bool transport_paused = false;
  bool transport_stopped = false;
  bool closing = false;  // the transport is disconnecting
  bool stopped = false;  // the receiver's stopProducing() or a framing error

  virtual bool rawMode() const { return false; }
  bool blocked() const {
    return recv_paused || transport_paused || stopped || (closing && !rawMode());
  }

  // dataReceived(), from the transport or re-entrantly.
  void receive(absl::string_view data) {
    if (stopped || (closing && !rawMode())) return;
    stream.append(data.data(), data.size());
  }

  // Delivery starts unless blocked (in raw mode, even while closing); after
  // a frame callback a closing transport stops it (even if the callback
  // switched to raw mode), after a raw one it does not; an error ends it.
  void run() {
    if (blocked()) return;
    while (true) {
      std::string frame;
      const Step s = parseOne(&frame);
      if (s == Step::kNeed || s == Step::kError) break;
      if (s == Step::kFrame) {
        events.push_back(absl::StrCat("F:", frame));
        afterFrame();
        if (closing) break;
      }
      if (recv_paused || transport_paused || stopped) break;
    }
  }

  void pauseTransport() {
    if (!transport_stopped) transport_paused = true;
  }

 protected:
  // Consumes one frame into *frame (kFrame), or handles raw data (kRaw) or
  // an error (kError) itself, or needs more input (kNeed).
  virtual Step parseOne(std::string* frame) = 0;
  virtual void clearOrRaw(size_t raw) {}

  void framingError() {
    events.push_back("E");
    stream.clear();
    stopped = true;
    closing = true;
  }

 private:
  void afterFrame() {
    Armed a = std::exchange(armed, Armed());
    switch (a.act) {
      case Act::kNone: break;
      case Act::kPause: recv_paused = true; pauseTransport(); break;
      case Act::kPauseTransport: pauseTransport(); break;
      case Act::kLose:
      case Act::kAbort: closing = true; break;
      case Act::kStop:
        stopped = true;
        transport_stopped = true;
        transport_paused = false;
        closing = true;
        break;
      case Act::kInject: receive(a.inject); break;
      case Act::kClearOrRaw: clearOrRaw(a.raw); break;
    }
  }
};

class LineModel : public Model {
 public:
  std::string delimiter;

  bool rawMode() const override { return raw_left_ > 0; }

 protected:
  Step parseOne(std::string* frame) override {
    if (raw_left_ > 0) {
      if (stream.empty()) return Step::kNeed;
      const size_t n = std::min(raw_left_, stream.size());
      AddRaw(&events, absl::string_view(stream).substr(0, n));
      stream.erase(0, n);
      raw_left_ -= n;
      if (raw_left_ == 0) {
        // setLineMode(rest): the rest is received again, in line mode.
        std::string rest = std::exchange(stream, std::string());
        receive(rest);
      }
      return Step::kRaw;
    }
    const size_t pos = stream.find(delimiter);
    if (pos == std::string::npos) {
      if (stream.size() >= delimiter.size() + max) return tooLong();
      return Step::kNeed;
    }
    if (pos > max) return tooLong();
    *frame = stream.substr(0, pos);
    stream.erase(0, pos + delimiter.size());
    return Step::kFrame;
  }

  void clearOrRaw(size_t raw) override {
    if (raw == 0) {
      events.push_back(absl::StrCat("C:", stream));
      stream.clear();
    } else {
      raw_left_ = raw;
    }
  }

 private:
  // lineLengthExceeded(everything held), whose default loses the connection.
  Step tooLong() {
    events.push_back(absl::StrCat("X:", stream));
    stream.clear();
    closing = true;
    return Step::kError;
  }

  size_t raw_left_ = 0;
};

class Int32Model : public Model {
 protected:
  Step parseOne(std::string* frame) override {
    if (stream.size() < 4) return Step::kNeed;
    const auto b = [&](int i) { return static_cast<uint32_t>(static_cast<uint8_t>(stream[i])); };
    const uint32_t length = b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
    if (length > max) {
      framingError();
      return Step::kError;
    }
    if (stream.size() - 4 < length) return Step::kNeed;
    *frame = stream.substr(4, length);
    stream.erase(0, 4 + length);
    return Step::kFrame;
  }
};

class NetstringModel : public Model {
 protected:
  Step parseOne(std::string* frame) override {
    const size_t max_digits = absl::StrCat(max).size();
    const size_t colon = std::min(stream.find(':'), stream.size());
    for (size_t i = 0; i < colon; ++i) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(stream[i])) || i + 1 > max_digits) {
        framingError();
        return Step::kError;
      }
    }
    if (colon == stream.size()) return Step::kNeed;  // the length is not complete
    if (colon == 0 || (colon > 1 && stream[0] == '0')) {
      framingError();
      return Step::kError;
    }
    const uint64_t length = std::stoull(stream.substr(0, colon));
    if (length > max) {
      framingError();
      return Step::kError;
    }
    if (stream.size() < colon + 1 + length + 1) return Step::kNeed;
    if (stream[colon + 1 + length] != ',') {
      framingError();
      return Step::kError;
    }
    *frame = stream.substr(colon + 1, length);
    stream.erase(0, colon + 1 + length + 1);
    return Step::kFrame;
  }
};

// ---- The driver -------------------------------------------------------------

constexpr size_t kMaxLengths[] = {0, 1, 2, 3, 4, 5, 8, 16, 31, 64, 100, 255, 1000, 4096, 99999};
constexpr absl::string_view kDelimiters[] = {"\r\n", "\n", "x", "aba", "\r\n\r\n"};

size_t PickMax(Input& in) { return kMaxLengths[in.byte() % std::size(kMaxLengths)]; }

template <typename Receiver, typename ModelT>
int Drive(const char* target, Input& in, Receiver& p, ModelT& model, Record& rec,
          size_t framing) {
  StringTransport t;
  t.connect(&p);
  size_t max_ever = model.max;
  size_t fed_while_blocked = 0;
  std::string last_chunk;
  size_t checked = 0;  // events compared so far

  const auto check = [&](const char* step) {
    TWIST_FUZZ_CHECK(target, rec.events.size() == model.events.size(),
                     absl::StrCat("after ", step, ": ", rec.events.size(),
                                  " callbacks, expected ", model.events.size(), "; last: ",
                                  Show(rec.events.empty() ? "" : rec.events.back()),
                                  " vs ", Show(model.events.empty() ? "" : model.events.back())));
    for (; checked < rec.events.size(); ++checked) {
      TWIST_FUZZ_CHECK(target, rec.events[checked] == model.events[checked],
                       absl::StrCat("after ", step, ": callback ", checked, " is ",
                                    Show(rec.events[checked]), ", expected ",
                                    Show(model.events[checked])));
    }
    TWIST_FUZZ_CHECK(target, p.heldBytes() == model.stream.size(),
                     absl::StrCat("after ", step, ": holds ", p.heldBytes(),
                                  " bytes, expected ", model.stream.size()));
    TWIST_FUZZ_CHECK(target, t.disconnecting() == model.closing,
                     absl::StrCat("after ", step, ": disconnecting() is ", t.disconnecting()));
    // One unfinished frame; while blocked, plus what was read since the last
    // step that ended unblocked (and one re-entrant injection).
    const size_t bound = max_ever + framing + (model.blocked() ? fed_while_blocked + 32 : 0);
    TWIST_FUZZ_CHECK(target, p.heldBytes() < bound,
                     absl::StrCat("after ", step, ": holds ", p.heldBytes(),
                                  " bytes, bound ", bound));
    if (!model.blocked()) fed_while_blocked = 0;
  };

  const auto feed = [&](absl::string_view chunk) {
    if (!model.closing) {  // StringTransport reads nothing once closing
      fed_while_blocked += chunk.size();
      model.receive(chunk);
      model.run();
    }
    t.receive(chunk);
  };

  for (int ops = 0; ops < 4096 && !in.empty(); ++ops) {
    const uint8_t op = in.byte();
    switch (op % 16) {
      case 0: case 1: case 2: case 3:
        last_chunk = std::string(in.bytes(1 + (op >> 4)));
        feed(last_chunk);
        break;
      case 4: case 5:
        last_chunk = std::string(in.bytes(in.byte()));
        feed(last_chunk);
        break;
      case 6:
        last_chunk = std::string(in.bytes(in.u16() % 4096));
        feed(last_chunk);
        break;
      case 7:
        model.recv_paused = true;
        model.pauseTransport();
        p.pauseProducing();
        break;
      case 8:
        model.recv_paused = false;
        model.transport_paused = false;
        model.run();
        p.resumeProducing();
        break;
      case 9:
        model.pauseTransport();
        t.pauseProducing();
        break;
      case 10:
        if (model.transport_paused) {
          model.transport_paused = false;
          model.run();
        }
        t.resumeProducing();
        break;
      case 11: {
        const uint8_t a = in.byte();
        Armed armed;
        armed.act = static_cast<Act>(a % 8);
        if (armed.act == Act::kInject) armed.inject = std::string(in.bytes(in.byte() % 32));
        if (armed.act == Act::kClearOrRaw) armed.raw = a >> 4;  // 0: clearLineBuffer
        if (armed.act == Act::kClearOrRaw && !std::is_same_v<ModelT, LineModel>) {
          armed.act = Act::kNone;  // line receivers only
        }
        model.armed = armed;
        rec.armed = armed;
        break;
      }
      case 12: {
        const size_t max = PickMax(in);
        max_ever = std::max(max_ever, max);
        model.max = max;
        p.setMaxLength(max);
        break;
      }
      case 13:
        model.closing = true;
        t.loseConnection();
        break;
      case 14: {
        const int n = in.byte() % 64;
        for (int i = 0; i < n; ++i) feed(last_chunk);
        break;
      }
      case 15:
        model.stopped = true;
        model.transport_stopped = true;
        model.transport_paused = false;
        model.closing = true;
        p.stopProducing();
        break;
    }
    check("step");
  }
  t.disconnect();
  model.closing = true;
  TWIST_FUZZ_CHECK(target, rec.lost, "connectionLost was not called");
  t.receive("more\r\n");  // a closed transport reads nothing
  check("disconnect");
  return 0;
}

}  // namespace

namespace line {
int FuzzOne(const uint8_t* data, size_t size) {
  Input in(data, size);
  Record rec("line");
  LineModel model;
  model.max = PickMax(in);
  model.delimiter = std::string(kDelimiters[in.byte() % std::size(kDelimiters)]);
  FuzzLines p(&rec);
  p.setMaxLength(model.max);
  p.setDelimiter(model.delimiter);
  return Drive("line", in, p, model, rec, model.delimiter.size());
}
}  // namespace line

namespace int32 {
int FuzzOne(const uint8_t* data, size_t size) {
  Input in(data, size);
  Record rec("int32");
  Int32Model model;
  model.max = PickMax(in);
  FuzzStrings<Int32StringReceiver> p(&rec);
  p.setMaxLength(model.max);
  return Drive("int32", in, p, model, rec, 4);
}
}  // namespace int32

namespace netstring {
int FuzzOne(const uint8_t* data, size_t size) {
  Input in(data, size);
  Record rec("netstring");
  NetstringModel model;
  model.max = PickMax(in);
  FuzzStrings<NetstringReceiver> p(&rec);
  p.setMaxLength(model.max);
  return Drive("netstring", in, p, model, rec, 8);  // up to 6 digits, ':' and ','
}
}  // namespace netstring

}  // namespace fuzz
}  // namespace twist
