// TrafficLoggingFactory: the log's exact lines on StringTransport, every
// byte of binary traffic given back by the log (written, written as a
// sequence, received) with every close, the file names and their counter,
// and once over a real loopback connection through the reactor, on every
// poller, with the log in real files.

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <streambuf>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "framework/poller.h"
#include "framework/protocol.h"
#include "framework/reactor.h"
#include "framework/string_transport.h"
#include "gtest/gtest.h"
#include "protocols/echo.h"
#include "protocols/traffic_logging.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using testing::BlockingClient;
using testing::RunUntil;

// An ostream that appends to a string the test keeps: the log outlives the
// protocol that owns the stream.
class AppendBuf : public std::streambuf {
 public:
  explicit AppendBuf(std::string* out) : out_(out) {}

 protected:
  int_type overflow(int_type c) override {
    if (c != traits_type::eof()) out_->push_back(static_cast<char>(c));
    return c;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    out_->append(s, static_cast<size_t>(n));
    return n;
  }

 private:
  std::string* out_;
};

class StringLog : public std::ostream {
 public:
  explicit StringLog(std::string* out) : std::ostream(nullptr), buf_(out) { rdbuf(&buf_); }

 private:
  AppendBuf buf_;
};

// Logs in memory, by file name.
class MemoryLogging : public TrafficLoggingFactory {
 public:
  using TrafficLoggingFactory::TrafficLoggingFactory;
  std::unique_ptr<std::ostream> open(const std::string& name) override {
    return std::make_unique<StringLog>(&logs[name]);
  }
  std::map<std::string, std::string> logs;
};

// Does what the test tells it to, on its transport (the logging wrapper).
class Puppet : public Protocol, public HalfCloseableProtocol {
 public:
  void dataReceived(absl::string_view data) override { absl::StrAppend(&received, data); }
  void readConnectionLost() override { ++read_lost; }
  std::string received;
  int read_lost = 0;
};

// The strings quoted in a log line, unescaped.
std::vector<std::string> Quoted(absl::string_view line) {
  std::vector<std::string> out;
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] != '"') continue;
    size_t j = i + 1;
    while (j < line.size() && line[j] != '"') j += line[j] == '\\' ? 2 : 1;
    std::string s;
    EXPECT_TRUE(absl::CUnescape(line.substr(i + 1, j - i - 1), &s)) << line;
    out.push_back(std::move(s));
    i = j;
  }
  return out;
}

// What a log says was received and written, byte for byte.
struct Traffic {
  std::string received, written;
  std::vector<std::string> other;  // lines that carry no data
};

Traffic Parse(const std::string& log, int number) {
  Traffic t;
  const std::string c = absl::StrCat("C ", number, ": \"");
  const std::string s = absl::StrCat("S ", number, ": \"");
  const std::string sv = absl::StrCat("SV ", number, ": [");
  for (absl::string_view line : absl::StrSplit(log, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, c)) {
      for (const std::string& q : Quoted(line)) t.received += q;
    } else if (absl::StartsWith(line, s) || absl::StartsWith(line, sv)) {
      for (const std::string& q : Quoted(line)) t.written += q;
    } else {
      t.other.emplace_back(line);
    }
  }
  return t;
}

TEST(TrafficLoggingTest, LogsEachEventInTwistedsFormat) {
  Factory inner([] { return std::make_unique<Puppet>(); });
  MemoryLogging logging(&inner, "conn");
  std::unique_ptr<Protocol> p = logging.buildProtocol(Address());
  StringTransport t;
  t.connect(p.get());
  auto* wrapper = static_cast<TrafficLoggingProtocol*>(p.get());
  Transport* as_seen = wrapper->wrappedProtocol()->transport();  // the wrapper itself
  as_seen->write("hi\n");
  as_seen->writeSequence({"a", absl::string_view("b\0\"", 3)});
  t.receive("x\x01y");
  static_cast<HalfCloseableProtocol*>(wrapper)->readConnectionLost();
  as_seen->loseWriteConnection();
  as_seen->loseConnection();
  as_seen->abortConnection();
  t.disconnect();
  EXPECT_EQ(logging.logs["conn-1"],
            "*\n"
            "S 1: \"hi\\n\"\n"
            "SV 1: [\"a\", \"b\\x00\\\"\"]\n"
            "C 1: \"x\\x01y\"\n"
            "C 1: * write\n"
            "S 1: * write\n"
            "S 1: *\n"
            "S 1: * abort\n"
            "C 1: ABORTED: connection aborted\n");
  // And everything reached the real transport and the wrapped protocol.
  EXPECT_EQ(t.value(), absl::string_view("hi\nab\0\"", 7));
  auto* puppet = static_cast<Puppet*>(wrapper->wrappedProtocol());
  EXPECT_EQ(puppet->received, "x\x01y");
  EXPECT_EQ(puppet->read_lost, 1);
  EXPECT_TRUE(t.aborted());
}

TEST(TrafficLoggingTest, TheLogGivesBackEveryByteOfBinaryTraffic) {
  Factory inner([] { return std::make_unique<Puppet>(); });
  MemoryLogging logging(&inner, "conn");
  std::unique_ptr<Protocol> p = logging.buildProtocol(Address());
  StringTransport t;
  t.connect(p.get());
  Transport* as_seen = static_cast<ProtocolWrapper*>(p.get())->wrappedProtocol()->transport();
  std::mt19937 rng(12);
  std::string sent;  // by the peer
  for (int i = 0; i < 2000; ++i) {
    std::string chunk(rng() % 300, '\0');
    for (char& ch : chunk) ch = static_cast<char>(rng());  // every byte value
    switch (rng() % 3) {
      case 0:
        t.receive(chunk);
        sent += chunk;
        break;
      case 1:
        as_seen->write(chunk);
        break;
      default: {
        absl::string_view v(chunk);
        size_t cut = chunk.empty() ? 0 : rng() % chunk.size();
        as_seen->writeSequence({v.substr(0, cut), v.substr(cut)});
      }
    }
  }
  as_seen->loseConnection();
  t.disconnect();
  Traffic logged = Parse(logging.logs["conn-1"], 1);
  EXPECT_EQ(logged.received, sent);
  EXPECT_EQ(logged.written, t.value());
  EXPECT_EQ(logged.other, (std::vector<std::string>{"*", "S 1: *", "C 1: OK"}));
}

TEST(TrafficLoggingTest, LengthLimitElidesLongData) {
  Factory inner([] { return std::make_unique<Puppet>(); });
  MemoryLogging logging(&inner, "conn", /*length_limit=*/20);
  std::unique_ptr<Protocol> p = logging.buildProtocol(Address());
  StringTransport t;
  t.connect(p.get());
  t.receive(std::string(100, 'x'));
  t.receive(std::string(20, 'y'));  // at the limit: whole
  t.disconnect();
  EXPECT_EQ(logging.logs["conn-1"],
            "*\n"
            "C 1: \"xxxxxxxx\"<... 92 bytes elided>\n"
            "C 1: \"yyyyyyyyyyyyyyyyyyyy\"\n"
            "C 1: OK\n");
}

TEST(TrafficLoggingTest, EachConnectionHasALogNumberedFromOne) {
  Factory inner([] { return std::make_unique<Puppet>(); });
  MemoryLogging logging(&inner, "/logs/echo");
  auto a = logging.buildProtocol(Address());
  auto b = logging.buildProtocol(Address());
  EXPECT_EQ(logging.counter(), 2);
  logging.resetCounter();
  auto c = logging.buildProtocol(Address());
  std::vector<std::string> names;
  for (const auto& [name, log] : logging.logs) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"/logs/echo-1", "/logs/echo-2"}));
  StringTransport t;
  t.connect(b.get());
  t.receive("2");
  EXPECT_EQ(logging.logs["/logs/echo-2"], "*\nC 2: \"2\"\n");
  // A refusal of the wrapped factory takes no number.
  Factory refusing([]() -> std::unique_ptr<Protocol> { return nullptr; });
  MemoryLogging refused(&refusing, "r");
  EXPECT_EQ(refused.buildProtocol(Address()), nullptr);
  EXPECT_EQ(refused.counter(), 0);
  EXPECT_TRUE(refused.logs.empty());
}

std::string TempPrefix(absl::string_view name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name);
}

std::string ReadFile(const std::string& name) {
  std::ifstream in(name, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(TrafficLoggingTest, LogsToFilesAndRefusesAConnectionItCannotLog) {
  Factory inner([] { return std::make_unique<Puppet>(); });
  const std::string prefix = TempPrefix("files");
  TrafficLoggingFactory logging(&inner, prefix);
  std::unique_ptr<Protocol> p = logging.buildProtocol(Address());
  ASSERT_NE(p, nullptr) << logging.openError();
  StringTransport t;
  t.connect(p.get());
  t.receive("abc");
  // Flushed line by line: complete while the connection is still open.
  EXPECT_EQ(ReadFile(prefix + "-1"), "*\nC 1: \"abc\"\n");
  t.disconnect();

  TrafficLoggingFactory nowhere(&inner, TempPrefix("no/such/dir/x"));
  EXPECT_EQ(nowhere.buildProtocol(Address()), nullptr);
  EXPECT_TRUE(absl::StrContains(nowhere.openError().message(), "cannot open"))
      << nowhere.openError();
}

using TrafficLoggingLoopbackTest = testing::PollerTest;

TEST_P(TrafficLoggingLoopbackTest, AnEchoServersLogHasEveryByte) {
  std::unique_ptr<Factory> echo = Factory::forProtocol<Echo>();
  const std::string prefix = TempPrefix(absl::StrCat("loopback-", GetParam()));
  TrafficLoggingFactory logging(echo.get(), prefix);
  auto reactor = NewReactor();
  BlockingClient c = Connect(Listen(&logging));
  const std::string data = testing::Pattern(256 * 1024, 7);
  std::atomic<bool> done{false};
  std::string failure;
  std::thread client([&] {
    // Lockstep, so that nothing depends on how much the kernel buffers.
    std::mt19937 rng(3);
    for (size_t at = 0; at < data.size() && failure.empty();) {
      size_t n = std::min<size_t>(1 + rng() % 16384, data.size() - at);
      absl::Status s = c.SendAll(data.substr(at, n));
      absl::StatusOr<std::string> back = c.ReadExactly(n);
      if (!s.ok() || !back.ok() || *back != data.substr(at, n)) {
        failure = absl::StrCat("at byte ", at, ": ", s.ok() ? back.status().ToString() : s.ToString());
      }
      at += n;
    }
    c.ShutdownWrite();  // Echo closes once its echo is sent
    absl::StatusOr<std::string> rest = c.ReadToEof();
    if (failure.empty() && (!rest.ok() || !rest->empty())) failure = "no clean end of file";
    done = true;
  });
  bool closed = RunUntil(*reactor, [&] { return done && reactor->connectionCount() == 0; });
  if (!closed) c.Reset();  // unblocks the client before joining it
  client.join();
  ASSERT_TRUE(closed);
  ASSERT_EQ(failure, "");
  Traffic logged = Parse(ReadFile(prefix + "-1"), 1);
  EXPECT_EQ(logged.received.size(), data.size());
  EXPECT_TRUE(logged.received == data) << "the received bytes logged differ";
  EXPECT_TRUE(logged.written == data) << "the written bytes logged differ";
  EXPECT_EQ(logged.other, (std::vector<std::string>{"*", "C 1: * write", "S 1: *", "C 1: OK"}));
}

INSTANTIATE_TEST_SUITE_P(AllPollers, TrafficLoggingLoopbackTest,
                         ::testing::ValuesIn(PollerNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace twist
