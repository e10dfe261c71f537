// The framing protocols of protocols/basic.h: unit tests on StringTransport
// (including the property that the chunking of the input never changes the
// callbacks), and loopback tests through the real reactor.

#include "protocols/basic.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_split.h"
#include "framework/errors.h"
#include "framework/reactor.h"
#include "framework/string_transport.h"
#include "framework/tcp_port.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace twist {
namespace {

// Bytes allocated through operator new so far (the replacement below): the
// copying tests measure what a read costs with it.
std::atomic<size_t> allocated_bytes{0};
size_t AllocatedBytes() { return allocated_bytes.load(std::memory_order_relaxed); }

}  // namespace
}  // namespace twist

void* operator new(size_t n) {
  twist::allocated_bytes.fetch_add(n, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace twist {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::BlockingClient;
using testing::RunUntil;

// Splits `input` into chunks whose sizes depend on `seed`: runs of single
// bytes, small pieces and large ones, so that every delimiter, prefix and
// length field gets split somewhere across the seeds.
std::vector<std::string> RandomSplit(absl::string_view input, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::string> chunks;
  while (!input.empty()) {
    size_t n;
    switch (rng() % 4) {
      case 0: n = 1; break;
      case 1: n = 1 + rng() % 4; break;
      case 2: n = 1 + rng() % 64; break;
      default: n = 1 + rng() % 4096; break;
    }
    n = std::min(n, input.size());
    chunks.emplace_back(input.substr(0, n));
    input.remove_prefix(n);
  }
  return chunks;
}

std::vector<std::string> ByteByByte(absl::string_view input) {
  std::vector<std::string> chunks;
  for (char c : input) chunks.emplace_back(1, c);
  return chunks;
}

// Records every callback as a string. Raw data is merged across callbacks,
// since its chunking follows the input's by design. A line "RAW n" switches
// to raw mode for the next n bytes, then back to lines with what follows.
class RecordingLines : public LineReceiver {
 public:
  std::vector<std::string> events;

  void lineReceived(absl::string_view line) override {
    events.push_back(absl::StrCat("line:", line));
    size_t n;
    if (absl::ConsumePrefix(&line, "RAW ") && absl::SimpleAtoi(line, &n)) {
      raw_left_ = n;
      setRawMode();
    }
  }
  void rawDataReceived(absl::string_view data) override {
    absl::string_view mine = data.substr(0, raw_left_);
    raw_left_ -= mine.size();
    if (events.empty() || !absl::StartsWith(events.back(), "raw:")) {
      events.push_back("raw:");
    }
    events.back().append(mine.data(), mine.size());
    if (raw_left_ == 0) setLineMode(data.substr(mine.size()));
  }
  void lineLengthExceeded(absl::string_view line) override {
    // What follows the first maxLength() + 1 bytes depends on the chunking.
    events.push_back(absl::StrCat("exceeded:", line.substr(0, maxLength() + 1)));
    LineReceiver::lineLengthExceeded(line);
  }

 private:
  size_t raw_left_ = 0;
};

std::vector<std::string> FeedLines(const std::vector<std::string>& chunks,
                                   absl::string_view delimiter = "\r\n",
                                   size_t max_length = LineReceiver::kDefaultMaxLength) {
  RecordingLines p;
  p.setDelimiter(delimiter);
  p.setMaxLength(max_length);
  StringTransport t;
  t.connect(&p);
  for (const std::string& c : chunks) t.receive(c);
  return p.events;
}

// ---- LineReceiver on StringTransport ----------------------------------------

TEST(LineReceiverTest, SplitsLinesAndKeepsPartialOne) {
  RecordingLines p;
  StringTransport t;
  t.connect(&p);
  t.receive("one\r\ntwo\r\n\r\nthr");
  EXPECT_THAT(p.events, ElementsAre("line:one", "line:two", "line:"));
  t.receive("ee\r");
  EXPECT_EQ(p.events.size(), 3u) << "a lone \\r is not a delimiter";
  t.receive("\n");
  EXPECT_THAT(p.events.back(), "line:three");
  EXPECT_FALSE(t.disconnecting());
}

TEST(LineReceiverTest, BareNewlineIsNotTheDefaultDelimiter) {
  EXPECT_THAT(FeedLines({"a\nb\r\n"}), ElementsAre("line:a\nb"));
}

TEST(LineReceiverTest, SendLineAppendsTheDelimiter) {
  RecordingLines p;
  StringTransport t;
  t.connect(&p);
  p.sendLine("hello");
  p.setDelimiter("\n");
  p.sendLine("");
  p.sendLine("x");
  EXPECT_EQ(t.value(), "hello\r\n\nx\n");
}

TEST(LineReceiverTest, CustomMultiByteDelimiterSplitAnywhere) {
  const std::string input = "aEN\r\nbENDcENENDdEND";
  const std::vector<std::string> want = {"line:aEN\r\nb", "line:cEN", "line:d"};
  // "cENEND": a partial match ("EN") right before the real delimiter.
  EXPECT_THAT(FeedLines({input}, "END"), ::testing::ElementsAreArray(want));
  EXPECT_THAT(FeedLines(ByteByByte(input), "END"), ::testing::ElementsAreArray(want));
  for (uint32_t seed = 0; seed < 50; ++seed) {
    EXPECT_EQ(FeedLines(RandomSplit(input, seed), "END"), want) << "seed " << seed;
  }
}

TEST(LineReceiverTest, LineOfExactlyMaxLengthIsAccepted) {
  const std::string line(100, 'x');
  std::vector<std::string> events = FeedLines({line + "\r\n"}, "\r\n", 100);
  EXPECT_THAT(events, ElementsAre("line:" + line));
  events = FeedLines(ByteByByte(line + "\r\n"), "\r\n", 100);
  EXPECT_THAT(events, ElementsAre("line:" + line));
}

TEST(LineReceiverTest, LongerLineWithDelimiterExceedsAndCloses) {
  RecordingLines p;
  p.setMaxLength(100);
  StringTransport t;
  t.connect(&p);
  t.receive("ok\r\n" + std::string(101, 'y') + "\r\nafter\r\n");
  EXPECT_THAT(p.events, ElementsAre("line:ok", "exceeded:" + std::string(101, 'y')));
  EXPECT_TRUE(t.disconnecting()) << "the default lineLengthExceeded closes";
  EXPECT_FALSE(t.aborted()) << "closing flushes what was written";
}

TEST(LineReceiverTest, OverlongLineWithoutDelimiterIsCaughtEarly) {
  // Byte by byte: the line must be refused as soon as maxLength() plus the
  // delimiter's length bytes have arrived without a delimiter, not later.
  RecordingLines p;
  p.setMaxLength(100);
  StringTransport t;
  t.connect(&p);
  size_t fed = 0;
  while (!t.disconnecting() && fed < 100000) {
    t.receive("z");
    ++fed;
  }
  EXPECT_EQ(fed, 102u);
  EXPECT_THAT(p.events, ElementsAre("exceeded:" + std::string(101, 'z')));
}

TEST(LineReceiverTest, OverlongLineInOneChunk) {
  RecordingLines p;
  p.setMaxLength(10);
  StringTransport t;
  t.connect(&p);
  t.receive(std::string(1 << 20, 'q'));
  EXPECT_THAT(p.events, ElementsAre("exceeded:" + std::string(11, 'q')));
  EXPECT_TRUE(t.disconnecting());
}

TEST(LineReceiverTest, RawModeAndBackMidChunk) {
  // The raw part contains delimiters that must not be taken for lines.
  EXPECT_THAT(FeedLines({"head\r\nRAW 7\r\nab\r\ncdeafter\r\nlast\r\n"}),
              ElementsAre("line:head", "line:RAW 7", "raw:ab\r\ncde",
                          "line:after", "line:last"));
}

class RawForever : public LineReceiver {
 public:
  std::vector<std::string> events;
  void lineReceived(absl::string_view line) override {
    events.push_back(absl::StrCat("line:", line));
    setRawMode();
  }
  void rawDataReceived(absl::string_view data) override {
    events.push_back(absl::StrCat("raw:", data));
  }
};

TEST(LineReceiverTest, RawModeGetsDataAsItComesWithoutLengthLimit) {
  RawForever p;
  p.setMaxLength(4);
  StringTransport t;
  t.connect(&p);
  t.receive("go\r\nabc");
  t.receive("0123456789\r\n");
  EXPECT_THAT(p.events, ElementsAre("line:go", "raw:abc", "raw:0123456789\r\n"));
  EXPECT_FALSE(t.disconnecting());
}

class Clearing : public LineReceiver {
 public:
  std::vector<std::string> events;
  std::string cleared;
  void lineReceived(absl::string_view line) override {
    events.push_back(std::string(line));
    if (line == "clear") cleared = clearLineBuffer();
  }
};

TEST(LineReceiverTest, ClearLineBufferDropsAndReturnsTheRest) {
  Clearing p;
  StringTransport t;
  t.connect(&p);
  t.receive("a\r\nclear\r\nb\r\nc");
  EXPECT_THAT(p.events, ElementsAre("a", "clear"));
  EXPECT_EQ(p.cleared, "b\r\nc");
  t.receive("d\r\n");
  EXPECT_THAT(p.events, ElementsAre("a", "clear", "d"));
}

TEST(LineReceiverTest, ClearLineBufferOutsideACallbackForgetsThePartialLine) {
  Clearing p;
  StringTransport t;
  t.connect(&p);
  t.receive("abcdefgh");  // a partial line, already searched for "\r\n"
  EXPECT_EQ(p.clearLineBuffer(), "abcdefgh");
  t.receive("x\r\nyyyyyyyy\r\n");  // the search starts afresh
  EXPECT_THAT(p.events, ElementsAre("x", "yyyyyyyy"));
}

// Pauses itself on each line starting with "pause".
class Pausing : public LineReceiver {
 public:
  std::vector<std::string> lines;
  void lineReceived(absl::string_view line) override {
    lines.emplace_back(line);
    if (absl::StartsWith(line, "pause")) pauseProducing();
  }
};

TEST(LineReceiverTest, PauseInsideLineReceivedHoldsBackLaterLines) {
  Pausing p;
  StringTransport t;
  t.connect(&p);
  t.receive("a\r\npause1\r\nb\r\npause2\r\nc\r\nd");
  EXPECT_THAT(p.lines, ElementsAre("a", "pause1"));
  EXPECT_TRUE(p.paused());
  EXPECT_EQ(t.producerState(), StringTransport::ProducerState::kPaused)
      << "pausing the protocol stops reading from the transport";
  t.receive("\r\ne\r\n");  // data the transport had already read
  EXPECT_THAT(p.lines, ElementsAre("a", "pause1"));

  p.resumeProducing();  // delivers b, then pauses again on pause2
  EXPECT_THAT(p.lines, ElementsAre("a", "pause1", "b", "pause2"));
  EXPECT_EQ(t.producerState(), StringTransport::ProducerState::kPaused)
      << "paused again during delivery: the transport must stay paused";

  p.resumeProducing();
  EXPECT_THAT(p.lines, ElementsAre("a", "pause1", "b", "pause2", "c", "d", "e"));
  EXPECT_FALSE(p.paused());
  EXPECT_EQ(t.producerState(), StringTransport::ProducerState::kProducing);
}

// Pauses its transport (not itself) on each line starting with "pause".
class TransportPausing : public LineReceiver {
 public:
  std::vector<std::string> lines;
  void lineReceived(absl::string_view line) override {
    lines.emplace_back(line);
    if (absl::StartsWith(line, "pause")) transport()->pauseProducing();
  }
};

TEST(LineReceiverTest, PausingTheTransportInsideLineReceivedHoldsBackLaterLines) {
  TransportPausing p;
  StringTransport t;
  t.connect(&p);
  t.receive("a\r\npause1\r\nb\r\npause2\r\nc\r\nd");
  EXPECT_THAT(p.lines, ElementsAre("a", "pause1"));
  EXPECT_FALSE(p.paused());  // the protocol was not asked, its transport was
  t.receive("\r\ne\r\n");
  EXPECT_THAT(p.lines, ElementsAre("a", "pause1"));
  t.resumeProducing();  // delivers b, then pauses again on pause2
  EXPECT_THAT(p.lines, ElementsAre("a", "pause1", "b", "pause2"));
  EXPECT_EQ(t.producerState(), StringTransport::ProducerState::kPaused);
  t.resumeProducing();
  EXPECT_THAT(p.lines, ElementsAre("a", "pause1", "b", "pause2", "c", "d", "e"));
}

// The central property: whatever the chunking, the same callbacks.
TEST(LineReceiverTest, RandomSplitsGiveTheSameCallbacks) {
  std::mt19937 rng(7);
  std::string input;
  for (int i = 0; i < 400; ++i) {
    switch (rng() % 6) {
      case 0: input += "\r\n"; break;                        // empty line
      case 1: input += absl::StrCat("line ", i, "\r\r\n"); break;  // \r inside
      case 2: {
        std::string raw = testing::Pattern(rng() % 300, i);
        input += absl::StrCat("RAW ", raw.size(), "\r\n", raw);
        break;
      }
      case 3: input += std::string(rng() % 200, 'L') + "\r\n"; break;
      default: input += absl::StrCat("x\ny ", i, "\r\n"); break;   // bare \n
    }
  }
  input += std::string(300, 'T') + "\r\nnever delivered\r\n";  // over the limit
  const std::vector<std::string> whole = FeedLines({input}, "\r\n", 250);
  ASSERT_GT(whole.size(), 300u);
  EXPECT_TRUE(absl::StartsWith(whole.back(), "exceeded:TTT")) << whole.back();
  EXPECT_EQ(FeedLines(ByteByByte(input), "\r\n", 250), whole);
  for (uint32_t seed = 1; seed <= 300; ++seed) {
    ASSERT_EQ(FeedLines(RandomSplit(input, seed), "\r\n", 250), whole)
        << "seed " << seed;
  }
}

// ---- Int32StringReceiver ----------------------------------------------------

class RecordingInt32 : public Int32StringReceiver {
 public:
  std::vector<std::string> strings;
  std::vector<uint64_t> exceeded;
  void stringReceived(absl::string_view data) override { strings.emplace_back(data); }
  void lengthLimitExceeded(uint64_t length) override {
    exceeded.push_back(length);
    Int32StringReceiver::lengthLimitExceeded(length);
  }
};

std::string Int32Frame(absl::string_view data) {
  const uint32_t n = static_cast<uint32_t>(data.size());
  std::string out = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                     static_cast<char>(n >> 8), static_cast<char>(n)};
  return absl::StrCat(out, data);
}

TEST(Int32StringReceiverTest, SendStringWritesABigEndianPrefix) {
  RecordingInt32 p;
  StringTransport t;
  t.connect(&p);
  ASSERT_TRUE(p.sendString("abc").ok());
  ASSERT_TRUE(p.sendString(std::string(258, 'z')).ok());
  EXPECT_EQ(t.value(), absl::StrCat(std::string("\0\0\0\3abc", 7),
                                    std::string("\0\0\1\2", 4), std::string(258, 'z')));
}

TEST(Int32StringReceiverTest, RandomSplitsGiveTheSameStrings) {
  std::vector<std::string> sent;
  std::string input;
  std::mt19937 rng(3);
  for (int i = 0; i < 300; ++i) {
    sent.push_back(testing::Pattern(i % 5 == 0 ? 0 : rng() % 1000, i));
    input += Int32Frame(sent.back());
  }
  for (uint32_t seed = 0; seed <= 300; ++seed) {
    RecordingInt32 p;
    StringTransport t;
    t.connect(&p);
    for (const std::string& c : seed == 0 ? ByteByByte(input) : RandomSplit(input, seed)) {
      t.receive(c);
    }
    ASSERT_EQ(p.strings, sent) << "seed " << seed;
    EXPECT_TRUE(p.brokenPeer().ok());
    EXPECT_FALSE(t.disconnecting());
  }
}

TEST(Int32StringReceiverTest, MaximumLengthIsAcceptedOneMoreCloses) {
  RecordingInt32 p;
  p.setMaxLength(10);
  StringTransport t;
  t.connect(&p);
  t.receive(Int32Frame(std::string(10, 'a')));
  EXPECT_THAT(p.strings, ElementsAre(std::string(10, 'a')));
  // The announced length alone is enough: the body never has to arrive.
  t.receive(absl::StrCat(std::string("\0\0\0\13", 4), "b"));
  EXPECT_THAT(p.exceeded, ElementsAre(11u));
  EXPECT_TRUE(t.disconnecting());
  EXPECT_TRUE(absl::IsInvalidArgument(p.brokenPeer())) << p.brokenPeer();
  EXPECT_THAT(std::string(p.brokenPeer().message()),
              HasSubstr("announced a string of 11 bytes; the maximum is 10"));
  EXPECT_THAT(p.strings, ElementsAre(std::string(10, 'a')));
}

// An override that neither closes nor calls the base: nothing more is
// delivered, and nothing more is kept.
class KeepsConnectionOpen : public Int32StringReceiver {
 public:
  std::vector<std::string> strings;
  void stringReceived(absl::string_view data) override { strings.emplace_back(data); }
  void lengthLimitExceeded(uint64_t length) override {}
  size_t buffered() const { return unconsumed().size(); }
};

TEST(Int32StringReceiverTest, NothingIsDeliveredAfterTheLimitWasExceeded) {
  KeepsConnectionOpen p;
  p.setMaxLength(4);
  StringTransport t;
  t.connect(&p);
  t.receive(Int32Frame("ok") + Int32Frame("too long") + Int32Frame("ok"));
  for (int i = 0; i < 100; ++i) t.receive(Int32Frame("ok"));
  EXPECT_THAT(p.strings, ElementsAre("ok"));
  EXPECT_EQ(p.buffered(), 0u);
}

TEST(Int32StringReceiverTest, HugeAnnouncedLengthIsRefusedWithoutBuffering) {
  RecordingInt32 p;  // default maximum 99999
  StringTransport t;
  t.connect(&p);
  t.receive(std::string("\xff\xff\xff\xff", 4));
  EXPECT_THAT(p.exceeded, ElementsAre(0xffffffffu));
  EXPECT_TRUE(t.disconnecting());
}

// ---- NetstringReceiver ------------------------------------------------------

class RecordingNetstring : public NetstringReceiver {
 public:
  std::vector<std::string> strings;
  void stringReceived(absl::string_view data) override { strings.emplace_back(data); }
};

TEST(NetstringReceiverTest, SendStringFormat) {
  RecordingNetstring p;
  StringTransport t;
  t.connect(&p);
  p.sendString("hello world!");
  p.sendString("");
  EXPECT_EQ(t.value(), "12:hello world!,0:,");
}

TEST(NetstringReceiverTest, RandomSplitsGiveTheSameStrings) {
  std::vector<std::string> sent;
  std::string input;
  std::mt19937 rng(5);
  for (int i = 0; i < 300; ++i) {
    // Binary data, containing ':' and ',' at times.
    sent.push_back(testing::Pattern(i % 7 == 0 ? 0 : rng() % 2000, i));
    absl::StrAppend(&input, sent.back().size(), ":", sent.back(), ",");
  }
  for (uint32_t seed = 0; seed <= 300; ++seed) {
    RecordingNetstring p;
    StringTransport t;
    t.connect(&p);
    for (const std::string& c : seed == 0 ? ByteByByte(input) : RandomSplit(input, seed)) {
      t.receive(c);
    }
    ASSERT_EQ(p.strings, sent) << "seed " << seed;
    EXPECT_TRUE(p.brokenPeer().ok()) << p.brokenPeer();
  }
}

struct BadNetstring {
  std::string input;
  std::string reason;  // a part of brokenPeer()'s message
};

class NetstringErrorTest : public ::testing::TestWithParam<BadNetstring> {};

TEST_P(NetstringErrorTest, ClosesWithAClearReason) {
  for (bool byte_by_byte : {false, true}) {
    RecordingNetstring p;
    p.setMaxLength(1000);
    StringTransport t;
    t.connect(&p);
    const std::string input = "3:abc," + GetParam().input + "2:no,";
    for (const std::string& c : byte_by_byte ? ByteByByte(input)
                                             : std::vector<std::string>{input}) {
      t.receive(c);
    }
    EXPECT_THAT(p.strings, ElementsAre("abc"));
    EXPECT_TRUE(t.disconnecting());
    EXPECT_TRUE(absl::IsInvalidArgument(p.brokenPeer())) << p.brokenPeer();
    EXPECT_THAT(std::string(p.brokenPeer().message()), HasSubstr(GetParam().reason));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Bad, NetstringErrorTest,
    ::testing::Values(BadNetstring{"x:", "length contains 'x'"},
                      BadNetstring{"1a:", "length contains 'a'"},
                      BadNetstring{"\n", "length contains byte 0x0a"},
                      BadNetstring{":", "empty length"},
                      BadNetstring{"01:a,", "leading zero"},
                      BadNetstring{"3:abcd", "missing ','"},
                      BadNetstring{"1001:", "exceeds the maximum 1000"},
                      BadNetstring{"99999", "more than 4 digits"}));

// ---- StringTransport --------------------------------------------------------

class Closer : public Protocol {
 public:
  std::vector<std::string> events;
  void connectionMade() override { events.push_back("made"); }
  void dataReceived(absl::string_view data) override {
    events.push_back(absl::StrCat("data:", data));
    transport()->write(data);
    if (data == "abort") transport()->abortConnection();
    if (data == "close") transport()->loseConnection();
    transport()->write("!");
  }
  void connectionLost(const absl::Status& reason) override {
    events.push_back(absl::StrCat("lost:", absl::StatusCodeToString(reason.code())));
  }
};

TEST(StringTransportTest, RecordsWritesAndCloses) {
  Closer p;
  StringTransport t;
  t.connect(&p);
  t.receive("hi");
  EXPECT_EQ(t.take(), "hi!");
  EXPECT_EQ(t.value(), "");
  t.receive("close");
  EXPECT_EQ(t.take(), "close!") << "writes after loseConnection are still sent";
  EXPECT_TRUE(t.disconnecting());
  EXPECT_FALSE(t.aborted());
  t.receive("ignored");
  t.disconnect();
  t.disconnect();
  EXPECT_THAT(p.events, ElementsAre("made", "data:hi", "data:close", "lost:OK"));
}

TEST(StringTransportTest, AbortGivesConnectionAborted) {
  Closer p;
  StringTransport t;
  t.connect(&p);
  t.receive("abort");
  EXPECT_EQ(t.value(), "abort") << "writes after abortConnection are dropped";
  EXPECT_TRUE(t.aborted());
  t.disconnect();
  EXPECT_THAT(p.events, ElementsAre("made", "data:abort", "lost:ABORTED"));
}

TEST(StringTransportTest, ProducersAndOptions) {
  Closer p;
  StringTransport t;
  t.connect(&p);
  EXPECT_TRUE(t.registerProducer(&t, true).ok());
  EXPECT_FALSE(t.registerProducer(&t, true).ok()) << "one producer at a time";
  EXPECT_EQ(t.producer(), &t);
  EXPECT_TRUE(t.streaming());
  t.unregisterProducer();
  EXPECT_EQ(t.producer(), nullptr);
  EXPECT_TRUE(t.setTcpNoDelay(true).ok());
  EXPECT_TRUE(t.tcpNoDelay());
  t.setBufferedBytes(123);
  EXPECT_EQ(t.bufferedBytes(), 123u);
  EXPECT_EQ(t.getPeer().ToString(), "127.0.0.1:54321");
  t.disconnect(ConnectionLost("reset by test"));
  EXPECT_EQ(p.events.back(), "lost:UNAVAILABLE");
}

// ---- Nothing after loseConnection() ------------------------------------------

// How a callback ends the connection.
enum class Close { kLose, kAbort, kStop };

void CloseBy(FramedReceiver* p, Close how) {
  switch (how) {
    case Close::kLose: p->transport()->loseConnection(); break;
    case Close::kAbort: p->transport()->abortConnection(); break;
    case Close::kStop: p->stopProducing(); break;
  }
}

// Ends the connection from the callback for the first frame.
class ClosingLines : public LineReceiver {
 public:
  explicit ClosingLines(Close how) : how_(how) {}
  std::vector<std::string> lines;
  void lineReceived(absl::string_view line) override {
    lines.emplace_back(line);
    CloseBy(this, how_);
  }

 private:
  Close how_;
};

template <typename Base>
class ClosingStrings : public Base {
 public:
  explicit ClosingStrings(Close how) : how_(how) {}
  std::vector<std::string> strings;
  void stringReceived(absl::string_view data) override {
    strings.emplace_back(data);
    CloseBy(this, how_);
  }

 private:
  Close how_;
};

std::string Netstring(absl::string_view data) { return absl::StrCat(data.size(), ":", data, ","); }

// Twisted's receivers stop while transport.disconnecting: the lines after
// the one that closed are never delivered, however the input was split.
TEST(ClosingTest, LineReceiverDeliversNoLineAfterLoseConnection) {
  for (Close how : {Close::kLose, Close::kAbort, Close::kStop}) {
    ClosingLines p(how);
    StringTransport t;
    t.connect(&p);
    t.receive("one\r\ntwo\r\nthree\r\n");
    EXPECT_THAT(p.lines, ElementsAre("one")) << static_cast<int>(how);
    EXPECT_TRUE(t.disconnecting());
    t.disconnect();
    EXPECT_THAT(p.lines, ElementsAre("one"));
  }
}

// `input` holds the frames "one", "two" and "three", in one read.
template <typename Receiver>
void ExpectNoStringAfterTheFirstCloses(const std::string& input) {
  for (Close how : {Close::kLose, Close::kAbort, Close::kStop}) {
    ClosingStrings<Receiver> p(how);
    StringTransport t;
    t.connect(&p);
    t.receive(input);
    EXPECT_THAT(p.strings, ElementsAre("one")) << static_cast<int>(how);
    EXPECT_TRUE(t.disconnecting());
  }
}

TEST(ClosingTest, Int32StringReceiverDeliversNoStringAfterLoseConnection) {
  ExpectNoStringAfterTheFirstCloses<Int32StringReceiver>(Int32Frame("one") + Int32Frame("two") +
                                                         Int32Frame("three"));
}

TEST(ClosingTest, NetstringReceiverDeliversNoStringAfterLoseConnection) {
  ExpectNoStringAfterTheFirstCloses<NetstringReceiver>(Netstring("one") + Netstring("two") +
                                                       Netstring("three"));
}

// Lines held back by a pause stay undelivered once the connection is closing,
// even when the receiver is resumed (Twisted would deliver one more here).
TEST(ClosingTest, HeldLinesAreNotDeliveredAfterLoseConnection) {
  RecordingLines p;
  StringTransport t;
  t.connect(&p);
  p.pauseProducing();
  t.receive("one\r\ntwo\r\n");
  t.loseConnection();
  p.resumeProducing();
  EXPECT_THAT(p.events, IsEmpty());
  EXPECT_EQ(p.heldBytes(), 10u);  // held, and dropped with the connection
}

// Raw mode follows Twisted's LineReceiver.dataReceived: it checks
// transport.disconnecting after lineReceived() only, so a line that switches
// to raw mode and closes gets no raw data, but raw data already held when the
// connection started closing is still handed over.
class RawThenClose : public LineReceiver {
 public:
  std::vector<std::string> events;
  bool close_in_line = true;
  void lineReceived(absl::string_view line) override {
    events.push_back(absl::StrCat("line:", line));
    setRawMode();
    if (close_in_line) transport()->loseConnection();
  }
  void rawDataReceived(absl::string_view data) override {
    events.push_back(absl::StrCat("raw:", data));
  }
};

TEST(ClosingTest, LineThatSwitchesToRawModeAndClosesGetsNoRawData) {
  RawThenClose p;
  StringTransport t;
  t.connect(&p);
  t.receive("go\r\nraw bytes");
  EXPECT_THAT(p.events, ElementsAre("line:go"));
}

TEST(ClosingTest, RawDataHeldWhenClosingStartsIsStillDelivered) {
  RawThenClose p;
  p.close_in_line = false;
  StringTransport t;
  t.connect(&p);
  t.receive("go\r\n");
  p.pauseProducing();
  t.receive("raw bytes");
  t.loseConnection();
  p.resumeProducing();
  EXPECT_THAT(p.events, ElementsAre("line:go", "raw:raw bytes"));
}

// ---- Cost of frames split across reads ----------------------------------------

template <typename Receiver>
class CountingFrames : public Receiver {
 public:
  int frames = 0;
  size_t bytes = 0;
  void stringReceived(absl::string_view data) override { ++frames; bytes += data.size(); }
};

class CountingLineFrames : public LineReceiver {
 public:
  int frames = 0;
  size_t bytes = 0;
  void lineReceived(absl::string_view line) override { ++frames; bytes += line.size(); }
};

// Bytes allocated (operator new, counted below) while `frame` arrives one
// byte per read. A receiver that copied its held frame on every read
// allocates about size^2/2 bytes here (2 GiB for 64 KiB).
template <typename Receiver>
size_t AllocatedFeedingByteByByte(const std::string& frame, Receiver& p) {
  p.setMaxLength(1 << 20);
  StringTransport t;
  t.connect(&p);
  const size_t before = AllocatedBytes();
  for (size_t i = 0; i < frame.size(); ++i) t.receive(absl::string_view(&frame[i], 1));
  const size_t allocated = AllocatedBytes() - before;
  EXPECT_EQ(p.frames, 1);
  EXPECT_FALSE(t.disconnecting());
  return allocated;
}

TEST(FramingCostTest, AFrameArrivingByteByByteIsNotCopiedOnEveryRead) {
  const size_t kSize = 64 * 1024;
  const std::string body(kSize - 8, 'a');
  {
    CountingLineFrames p;
    EXPECT_LT(AllocatedFeedingByteByByte(body + "\r\n", p), 4 * kSize);
    EXPECT_EQ(p.bytes, body.size());
  }
  {
    CountingFrames<Int32StringReceiver> p;
    EXPECT_LT(AllocatedFeedingByteByByte(Int32Frame(body), p), 4 * kSize);
    EXPECT_EQ(p.bytes, body.size());
  }
  {
    CountingFrames<NetstringReceiver> p;
    EXPECT_LT(AllocatedFeedingByteByByte(Netstring(body), p), 4 * kSize);
    EXPECT_EQ(p.bytes, body.size());
  }
}

// The held buffer is sized once from the announced length, within the
// maximum: an announced length over it reserves nothing.
TEST(FramingCostTest, AnnouncedLengthReservesAtMostTheMaximum) {
  CountingFrames<Int32StringReceiver> p;
  p.setMaxLength(1000);
  StringTransport t;
  t.connect(&p);
  const std::string start = Int32Frame(std::string(1000, 'a')).substr(0, 10);
  size_t before = AllocatedBytes();
  t.receive(start);
  EXPECT_LE(AllocatedBytes() - before, 1100u);
  EXPECT_EQ(p.heldBytes(), 10u);
  CountingFrames<Int32StringReceiver> q;
  q.setMaxLength(1000);
  StringTransport u;
  u.connect(&q);
  const std::string huge("\x7f\xff\xff\xff", 4);
  before = AllocatedBytes();
  u.receive(huge);
  EXPECT_LT(AllocatedBytes() - before, 1000u);
  EXPECT_TRUE(u.disconnecting());
}

// ---- Through the reactor ----------------------------------------------------

struct PauseRecord {
  std::vector<std::string> lines;
  std::vector<std::string> events;
  LineReceiver* protocol = nullptr;
  bool lost = false;
};

// Pauses itself on "pause"; the test resumes it.
class LoopbackPausing : public LineReceiver {
 public:
  explicit LoopbackPausing(PauseRecord* r) : r_(r) {}
  void connectionMade() override { r_->protocol = this; }
  void lineReceived(absl::string_view line) override {
    r_->lines.emplace_back(line);
    if (line == "pause") pauseProducing();
    if (line == "pause-transport") transport()->pauseProducing();
    if (line == "quit") {
      sendLine(absl::StrCat("got ", r_->lines.size()));
      transport()->loseConnection();
    }
  }
  void connectionLost(const absl::Status& reason) override {
    r_->lost = true;
    r_->protocol = nullptr;
  }

 private:
  PauseRecord* r_;
};

class BasicLoopbackTest : public ::testing::TestWithParam<std::string> {};

TEST_P(BasicLoopbackTest, PauseHoldsBackLinesAcrossLoopIterations) {
  PauseRecord r;
  Factory factory([&] { return std::make_unique<LoopbackPausing>(&r); });
  auto reactor = testing::MakeReactor(GetParam());
  absl::StatusOr<Port*> port = reactor->listenTCP(0, &factory, 50, "127.0.0.1");
  ASSERT_TRUE(port.ok()) << port.status();
  absl::StatusOr<BlockingClient> c = BlockingClient::Connect((*port)->getHost());
  ASSERT_TRUE(c.ok()) << c.status();
  // One send: everything arrives in one read, behind the pause.
  ASSERT_TRUE(c->SendAll("a\r\npause\r\nb\r\nc\r\n").ok());
  ASSERT_TRUE(RunUntil(*reactor, [&] { return r.lines.size() >= 2; }));
  ASSERT_TRUE(c->SendAll("d\r\nquit\r\n").ok());
  // Turn the loop a while: nothing may be delivered.
  for (int i = 0; i < 20; ++i) reactor->iterate(absl::Milliseconds(5));
  EXPECT_THAT(r.lines, ElementsAre("a", "pause"));
  ASSERT_NE(r.protocol, nullptr);
  r.protocol->resumeProducing();
  ASSERT_TRUE(RunUntil(*reactor, [&] { return r.lost; }));
  EXPECT_THAT(r.lines, ElementsAre("a", "pause", "b", "c", "d", "quit"));
  absl::StatusOr<std::string> reply = c->ReadToEof();
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(*reply, "got 6\r\n");
}

TEST_P(BasicLoopbackTest, PausingTheTransportHoldsBackLinesUntilItResumes) {
  PauseRecord r;
  Factory factory([&] { return std::make_unique<LoopbackPausing>(&r); });
  auto reactor = testing::MakeReactor(GetParam());
  absl::StatusOr<Port*> port = reactor->listenTCP(0, &factory, 50, "127.0.0.1");
  ASSERT_TRUE(port.ok()) << port.status();
  absl::StatusOr<BlockingClient> c = BlockingClient::Connect((*port)->getHost());
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->SendAll("a\r\npause-transport\r\nb\r\nc\r\n").ok());
  ASSERT_TRUE(RunUntil(*reactor, [&] { return r.lines.size() >= 2; }));
  ASSERT_TRUE(c->SendAll("d\r\nquit\r\n").ok());
  for (int i = 0; i < 20; ++i) reactor->iterate(absl::Milliseconds(5));
  EXPECT_THAT(r.lines, ElementsAre("a", "pause-transport"));
  ASSERT_NE(r.protocol, nullptr);
  // Resumed from a timer, as an application would: the held lines come
  // first, with no new input needed to wake them, then the rest.
  reactor->callLater(absl::ZeroDuration(),
                     [&] { r.protocol->transport()->resumeProducing(); });
  ASSERT_TRUE(RunUntil(*reactor, [&] { return r.lost; }));
  EXPECT_THAT(r.lines, ElementsAre("a", "pause-transport", "b", "c", "d", "quit"));
  absl::StatusOr<std::string> reply = c->ReadToEof();
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(*reply, "got 6\r\n");
}

// Closes on the first line and records the size of each read.
struct CloseRecord {
  std::vector<size_t> reads;
  std::vector<std::string> lines;
  bool lost = false;
};

class FirstLineCloses : public LineReceiver {
 public:
  explicit FirstLineCloses(CloseRecord* r) : r_(r) {}
  void dataReceived(absl::string_view data) override {
    r_->reads.push_back(data.size());
    LineReceiver::dataReceived(data);
  }
  void lineReceived(absl::string_view line) override {
    r_->lines.emplace_back(line);
    sendLine("bye");
    transport()->loseConnection();
  }
  void connectionLost(const absl::Status& reason) override { r_->lost = true; }

 private:
  CloseRecord* r_;
};

TEST_P(BasicLoopbackTest, NoLinesAfterLoseConnectionOverASocket) {
  CloseRecord r;
  Factory factory([&] { return std::make_unique<FirstLineCloses>(&r); });
  auto reactor = testing::MakeReactor(GetParam());
  absl::StatusOr<Port*> port = reactor->listenTCP(0, &factory, 50, "127.0.0.1");
  ASSERT_TRUE(port.ok()) << port.status();
  absl::StatusOr<BlockingClient> c = BlockingClient::Connect((*port)->getHost());
  ASSERT_TRUE(c.ok()) << c.status();
  const std::string input = "one\r\ntwo\r\nthree\r\n";
  ASSERT_TRUE(c->SendAll(input).ok());
  ASSERT_TRUE(RunUntil(*reactor, [&] { return r.lost; }));
  // The case under test: all three lines in the read that closes.
  ASSERT_FALSE(r.reads.empty());
  ASSERT_EQ(r.reads[0], input.size());
  EXPECT_THAT(r.lines, ElementsAre("one"));
  absl::StatusOr<std::string> reply = c->ReadToEof();
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(*reply, "bye\r\n");
}

INSTANTIATE_TEST_SUITE_P(AllPollers, BasicLoopbackTest,
                         ::testing::ValuesIn(PollerNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace twist
