// RESP parser and writer (protocols/resp.h): every reply type, split at
// every byte, limits, malformed input (issue 17).

#include "protocols/resp.h"

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace twist {
namespace {

using Type = RedisReply::Type;

// Feeds `pieces` in turn, draining the parser after each.
absl::StatusOr<std::vector<RedisReply>> ParsePieces(const std::vector<absl::string_view>& pieces) {
  RespParser p;
  std::vector<RedisReply> out;
  for (absl::string_view piece : pieces) {
    p.append(piece);
    while (true) {
      auto r = p.next();
      if (!r.ok()) return r.status();
      if (!r->has_value()) break;
      out.push_back(std::move(**r));
    }
  }
  if (p.midReply()) return absl::OutOfRangeError("incomplete reply");
  return out;
}

// In two pieces split at `at`.
absl::StatusOr<std::vector<RedisReply>> ParseSplit(absl::string_view data, size_t at) {
  return ParsePieces({data.substr(0, at), data.substr(at)});
}

// Byte by byte.
absl::StatusOr<std::vector<RedisReply>> ParseBytes(absl::string_view data) {
  std::vector<absl::string_view> bytes;
  for (size_t i = 0; i < data.size(); ++i) bytes.push_back(data.substr(i, 1));
  return ParsePieces(bytes);
}

// Every split of `wire` parses to `want`.
void ExpectEverySplit(absl::string_view wire, const std::vector<RedisReply>& want) {
  for (size_t at = 0; at <= wire.size(); ++at) {
    auto got = ParseSplit(wire, at);
    ASSERT_TRUE(got.ok()) << "split at " << at << ": " << got.status();
    ASSERT_EQ(*got, want) << "split at " << at;
  }
  auto bytes = ParseBytes(wire);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, want);
}

RedisReply Of(Type t) {
  RedisReply r;
  r.type = t;
  return r;
}

TEST(RespParserTest, Resp2TypesAtEverySplit) {
  std::string wire =
      "+OK\r\n-ERR unknown command 'foo'\r\n:42\r\n:-9223372036854775808\r\n"
      "$5\r\nhel\r\n\r\n$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n"
      "*3\r\n:1\r\n*2\r\n$1\r\na\r\n$-1\r\n-WRONGTYPE x\r\n";
  std::vector<RedisReply> want = {
      RedisReply::SimpleString("OK"),
      RedisReply::Error("ERR unknown command 'foo'"),
      RedisReply::Integer(42),
      RedisReply::Integer(INT64_MIN),
      RedisReply::Bulk("hel\r\n"),
      RedisReply::Bulk(""),
      RedisReply::Null(),
      RedisReply::Null(),
      RedisReply::Array({}),
      RedisReply::Array({RedisReply::Integer(1),
                         RedisReply::Array({RedisReply::Bulk("a"), RedisReply::Null()}),
                         RedisReply::Error("WRONGTYPE x")}),
  };
  ExpectEverySplit(wire, want);
}

TEST(RespParserTest, Resp3TypesAtEverySplit) {
  std::string wire =
      "_\r\n,3.25\r\n,-inf\r\n#t\r\n#f\r\n(3492890328409238509324850943850943825024385\r\n"
      "=15\r\ntxt:Some string\r\n!9\r\nSYNTAX x\n\r\n"
      "%2\r\n+a\r\n:1\r\n+b\r\n~1\r\n#t\r\n"
      ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"
      "|1\r\n+key-popularity\r\n*1\r\n,0.5\r\n*2\r\n:1\r\n|1\r\n+ttl\r\n:3\r\n:2\r\n";
  RedisReply d = Of(Type::kDouble);
  d.str = "3.25";
  RedisReply ninf = Of(Type::kDouble);
  ninf.str = "-inf";
  RedisReply t = Of(Type::kBoolean);
  t.integer = 1;
  RedisReply f = Of(Type::kBoolean);
  RedisReply big = Of(Type::kBigNumber);
  big.str = "3492890328409238509324850943850943825024385";
  RedisReply verb = Of(Type::kVerbatim);
  verb.format = "txt";
  verb.str = "Some string";
  RedisReply map = Of(Type::kMap);
  map.elements = {RedisReply::SimpleString("a"), RedisReply::Integer(1),
                  RedisReply::SimpleString("b"), Of(Type::kSet)};
  map.elements[3].elements = {t};
  RedisReply push = Of(Type::kPush);
  push.elements = {RedisReply::Bulk("message"), RedisReply::Bulk("ch"), RedisReply::Bulk("hi")};
  RedisReply half = Of(Type::kDouble);
  half.str = "0.5";
  RedisReply with_attr = RedisReply::Integer(2);
  with_attr.integer = 2;
  RedisReply attributed_inner = RedisReply::Integer(2);
  attributed_inner.attributes = {RedisReply::SimpleString("ttl"), RedisReply::Integer(3)};
  RedisReply top_attr = RedisReply::Array({half});
  top_attr.attributes = {RedisReply::SimpleString("key-popularity")};
  // "|1" then "+key-popularity" and "*1 ,0.5": the map's one value is the
  // array, so the attribute is {key-popularity: [0.5]} and applies to the
  // next reply, the array [1, 2].
  RedisReply attr_value = RedisReply::Array({RedisReply::Integer(1), attributed_inner});
  attr_value.attributes = {RedisReply::SimpleString("key-popularity"),
                           RedisReply::Array({half})};
  std::vector<RedisReply> want = {Of(Type::kNull), d, ninf, t, f, big, verb,
                                  RedisReply::Error("SYNTAX x\n"), map, push, attr_value};
  ExpectEverySplit(wire, want);
  auto all = ParseAllReplies(wire);
  ASSERT_TRUE(all.ok());
  EXPECT_DOUBLE_EQ((*all)[1].number, 3.25);
}

TEST(RespParserTest, EncodeReplyRoundTrips) {
  RedisReply verb = Of(Type::kVerbatim);
  verb.format = "mkd";
  verb.str = "# hi\r\n";
  RedisReply map = Of(Type::kMap);
  map.elements = {RedisReply::Bulk("k"), RedisReply::Array({RedisReply::Null(), verb})};
  map.attributes = {RedisReply::SimpleString("a"), RedisReply::Integer(-1)};
  std::vector<RedisReply> replies = {map, RedisReply::Error("multi\r\nline"),
                                     RedisReply::Bulk(std::string(100000, 'x'))};
  std::string wire;
  for (const auto& r : replies) AppendReply(&wire, r);
  auto back = ParseAllReplies(wire);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, replies);
}

TEST(RespParserTest, CommandWriter) {
  EXPECT_EQ(EncodeCommand({"SET", "key", "va\r\nl"}),
            "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nva\r\nl\r\n");
  EXPECT_EQ(EncodeCommand({}), "*0\r\n");
  std::string out = "x";
  AppendCommand(&out, {""});
  EXPECT_EQ(out, "x*1\r\n$0\r\n\r\n");
}

TEST(RespParserTest, MalformedInputIsAnErrorNotACrash) {
  for (absl::string_view bad :
       {"?\r\n", "+OK\n", "\r\n", ":12a\r\n", ":99999999999999999999\r\n", "$-2\r\n",
        "$3\r\nabcd\r\n", "$3\r\nabc\n\n", "*-2\r\n", "#x\r\n", "_x\r\n", ",1.2.3x\r\n",
        "(12a\r\n", "=3\r\ntxt\r\n", "=5\r\ntxtab\r\n", "$?\r\n", "*?\r\n", "+a\rb\r\n",
        ":+1\r\n", ": 1\r\n", "$\r\n"}) {
    auto r = ParseAllReplies(bad);
    ASSERT_FALSE(r.ok()) << absl::CHexEscape(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << absl::CHexEscape(bad) << r.status();
  }
  // An error is final.
  RespParser p;
  p.append("?\r\n");
  EXPECT_FALSE(p.next().ok());
  p.append("+OK\r\n");
  EXPECT_FALSE(p.next().ok());
}

TEST(RespParserTest, IncompleteIsNotAnError) {
  for (absl::string_view part : {"+O", "$5\r\nab", "*2\r\n:1\r\n", "|1\r\n+a\r\n+b\r\n", "$1\r\na\r", "|0\r\n"}) {
    RespParser p;
    p.append(part);
    auto r = p.next();
    ASSERT_TRUE(r.ok()) << part;
    EXPECT_FALSE(r->has_value()) << part;
    EXPECT_TRUE(p.midReply()) << part;
  }
}

TEST(RespParserTest, LimitsRejectBeforeAllocating) {
  RespLimits limits;
  limits.max_bulk_length = 10;
  limits.max_aggregate_length = 4;
  limits.max_depth = 3;
  limits.max_line_length = 8;
  EXPECT_TRUE(ParseAllReplies("$10\r\n0123456789\r\n", limits).ok());
  auto r = ParseAllReplies("$11\r\n", limits);
  EXPECT_TRUE(absl::IsInvalidArgument(r.status()));
  EXPECT_NE(r.status().message().find("bulk length 11 exceeds"), std::string::npos);
  EXPECT_TRUE(ParseAllReplies("*4\r\n:1\r\n:1\r\n:1\r\n:1\r\n", limits).ok());
  EXPECT_FALSE(ParseAllReplies("*5\r\n", limits).ok());
  EXPECT_FALSE(ParseAllReplies("%3\r\n", limits).ok());  // 6 elements
  EXPECT_TRUE(ParseAllReplies("*1\r\n*1\r\n*1\r\n:1\r\n", limits).ok());
  EXPECT_FALSE(ParseAllReplies("*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", limits).ok());
  EXPECT_TRUE(ParseAllReplies("+1234567\r\n", limits).ok());  // 8 with its '+'
  EXPECT_FALSE(ParseAllReplies("+12345678\r\n", limits).ok());
  // An unfinished line longer than the limit fails as soon as it is seen.
  RespParser p(limits);
  p.append("+1234567890");
  EXPECT_FALSE(p.next().ok());

  // A huge declared size holds nothing until its data arrives: the default
  // limits allow a 512 MiB bulk and 16 Mi elements, yet these hold a few
  // bytes.
  RespParser q;
  q.append("$536870912\r\nabc");
  ASSERT_TRUE(q.next().ok());
  EXPECT_EQ(q.buffered(), 0u);
  RespParser a;
  a.append("*16777216\r\n");
  ASSERT_TRUE(a.next().ok());
  EXPECT_EQ(a.buffered(), 0u);
}

TEST(RespParserTest, LinearInInputHoweverSplit) {
  // 20000 replies, byte by byte: the parser holds at most one line between
  // calls, so this is quick; a rescan of held input per byte would be
  // quadratic in a long line.
  std::string wire;
  for (int i = 0; i < 20000; ++i) absl::StrAppend(&wire, ":", i, "\r\n");
  std::string long_line = absl::StrCat("+", std::string(60000, 'a'), "\r\n");
  wire += long_line;
  RespParser p;
  size_t n = 0;
  size_t max_buffered = 0;
  for (char c : wire) {
    p.append(absl::string_view(&c, 1));
    while (true) {
      auto r = p.next();
      ASSERT_TRUE(r.ok());
      if (!r->has_value()) break;
      ++n;
    }
    max_buffered = std::max(max_buffered, p.buffered());
  }
  EXPECT_EQ(n, 20001u);
  EXPECT_LE(max_buffered, long_line.size());
}

// A bulk payload takes the read position past where the last line's scan
// stopped; dropping the consumed input then must not move the scan before
// the buffer (found by ASan in redis_server_test).
TEST(RespParserTest, CompactionAfterABulkPayload) {
  for (size_t len : {300, 5000}) {
    RespParser p;
    const std::string payload(len, 'x');
    p.append(absl::StrCat("$", len, "\r\n", payload, "\r\n+OK\r\n:1"));
    auto a = p.next();
    ASSERT_TRUE(a.ok() && a->has_value());
    EXPECT_EQ(**a, RedisReply::Bulk(payload));
    auto b = p.next();
    ASSERT_TRUE(b.ok() && b->has_value());
    EXPECT_EQ(**b, RedisReply::SimpleString("OK"));
    auto c = p.next();
    ASSERT_TRUE(c.ok());
    EXPECT_FALSE(c->has_value());
    p.append("\r\n");
    auto d = p.next();
    ASSERT_TRUE(d.ok() && d->has_value());
    EXPECT_EQ(**d, RedisReply::Integer(1));
  }
}

TEST(RespErrorTest, ErrorStatus) {
  absl::Status s = RedisError("WRONGTYPE Operation against a key");
  EXPECT_TRUE(IsRedisError(s));
  EXPECT_EQ(RedisErrorCode(s), "WRONGTYPE");
  EXPECT_EQ(s.message(), "WRONGTYPE Operation against a key");
  EXPECT_FALSE(IsRedisError(absl::UnknownError("WRONGTYPE x")));
}

}  // namespace
}  // namespace twist
