#include "protocols/resp.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <ostream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace twist {

namespace {

constexpr absl::string_view kRedisErrorPayload = "type.twist/redis.error";
// How many elements an aggregate reserves ahead of those received: a
// header's count is only a claim until the elements arrive.
constexpr int64_t kReserveAhead = 16;
constexpr int64_t kBulkReserveAhead = 64 * 1024;
// Consumed input is dropped once it is at least this and half the buffer.
// Small, so that short fuzz inputs reach it too.
constexpr size_t kCompactAt = 256;

// Strict: an optional '-', then one or more digits, within int64.
bool ParseInt64(absl::string_view s, int64_t* out) {
  bool negative = false;
  if (!s.empty() && s[0] == '-') {
    negative = true;
    s.remove_prefix(1);
  }
  if (s.empty()) return false;
  uint64_t limit = negative ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (limit - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = negative ? static_cast<int64_t>(0 - v) : static_cast<int64_t>(v);
  return true;
}

bool ParseDouble(absl::string_view s, double* out) {
  if (s == "inf" || s == "+inf") {
    *out = std::numeric_limits<double>::infinity();
    return true;
  }
  if (s == "-inf") {
    *out = -std::numeric_limits<double>::infinity();
    return true;
  }
  if (s == "nan" || s == "-nan") {
    *out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) && c != '+' && c != '-' &&
        c != '.' && c != 'e' && c != 'E') {
      return false;
    }
  }
  return absl::SimpleAtod(s, out);
}

bool IsBigNumber(absl::string_view s) {
  if (!s.empty() && s[0] == '-') s.remove_prefix(1);
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

// ---- RedisReply -------------------------------------------------------------

RedisReply RedisReply::SimpleString(std::string s) {
  RedisReply r;
  r.type = Type::kSimpleString;
  r.str = std::move(s);
  return r;
}
RedisReply RedisReply::Error(std::string s) {
  RedisReply r;
  r.type = Type::kError;
  r.str = std::move(s);
  return r;
}
RedisReply RedisReply::Integer(int64_t i) {
  RedisReply r;
  r.type = Type::kInteger;
  r.integer = i;
  return r;
}
RedisReply RedisReply::Bulk(std::string s) {
  RedisReply r;
  r.type = Type::kBulkString;
  r.str = std::move(s);
  return r;
}
RedisReply RedisReply::Null() { return RedisReply(); }
RedisReply RedisReply::Array(std::vector<RedisReply> elements) {
  RedisReply r;
  r.type = Type::kArray;
  r.elements = std::move(elements);
  return r;
}

bool operator==(const RedisReply& a, const RedisReply& b) {
  if (a.type != b.type || a.attributes != b.attributes) return false;
  switch (a.type) {
    case RedisReply::Type::kSimpleString:
    case RedisReply::Type::kError:
    case RedisReply::Type::kBulkString:
    case RedisReply::Type::kBigNumber:
    case RedisReply::Type::kDouble:  // the text: NaN equals NaN
      return a.str == b.str;
    case RedisReply::Type::kVerbatim:
      return a.str == b.str && a.format == b.format;
    case RedisReply::Type::kInteger:
    case RedisReply::Type::kBoolean:
      return a.integer == b.integer;
    case RedisReply::Type::kNull:
      return true;
    case RedisReply::Type::kArray:
    case RedisReply::Type::kMap:
    case RedisReply::Type::kSet:
    case RedisReply::Type::kPush:
      return a.elements == b.elements;
  }
  return false;
}

const char* RedisReplyTypeName(RedisReply::Type type) {
  switch (type) {
    case RedisReply::Type::kSimpleString: return "simple string";
    case RedisReply::Type::kError: return "error";
    case RedisReply::Type::kInteger: return "integer";
    case RedisReply::Type::kBulkString: return "bulk string";
    case RedisReply::Type::kNull: return "null";
    case RedisReply::Type::kArray: return "array";
    case RedisReply::Type::kMap: return "map";
    case RedisReply::Type::kSet: return "set";
    case RedisReply::Type::kDouble: return "double";
    case RedisReply::Type::kBoolean: return "boolean";
    case RedisReply::Type::kBigNumber: return "big number";
    case RedisReply::Type::kVerbatim: return "verbatim string";
    case RedisReply::Type::kPush: return "push";
  }
  return "?";
}

std::string RedisReply::DebugString() const {
  std::string out;
  if (!attributes.empty()) {
    std::vector<std::string> parts;
    for (const RedisReply& a : attributes) parts.push_back(a.DebugString());
    absl::StrAppend(&out, "|", absl::StrJoin(parts, " "), "| ");
  }
  auto join = [this](absl::string_view sep) {
    std::vector<std::string> parts;
    for (const RedisReply& e : elements) parts.push_back(e.DebugString());
    return absl::StrJoin(parts, sep);
  };
  switch (type) {
    case Type::kSimpleString: absl::StrAppend(&out, str); break;
    case Type::kError: absl::StrAppend(&out, "(error) ", str); break;
    case Type::kInteger: absl::StrAppend(&out, "(integer) ", integer); break;
    case Type::kBulkString:
      absl::StrAppend(&out, "\"", absl::CHexEscape(str.substr(0, 200)),
                      str.size() > 200 ? "...\"" : "\"");
      break;
    case Type::kNull: absl::StrAppend(&out, "(nil)"); break;
    case Type::kArray: absl::StrAppend(&out, "[", join(", "), "]"); break;
    case Type::kSet: absl::StrAppend(&out, "~{", join(", "), "}"); break;
    case Type::kPush: absl::StrAppend(&out, ">[", join(", "), "]"); break;
    case Type::kMap: {
      std::vector<std::string> parts;
      for (size_t i = 0; i + 1 < elements.size(); i += 2) {
        parts.push_back(absl::StrCat(elements[i].DebugString(), ": ",
                                     elements[i + 1].DebugString()));
      }
      absl::StrAppend(&out, "{", absl::StrJoin(parts, ", "), "}");
      break;
    }
    case Type::kDouble: absl::StrAppend(&out, "(double) ", str); break;
    case Type::kBoolean: absl::StrAppend(&out, integer ? "(true)" : "(false)"); break;
    case Type::kBigNumber: absl::StrAppend(&out, "(big number) ", str); break;
    case Type::kVerbatim: absl::StrAppend(&out, "(", format, ") ", absl::CHexEscape(str)); break;
  }
  return out;
}

void PrintTo(const RedisReply& reply, std::ostream* os) { *os << reply.DebugString(); }

absl::Status RedisError(absl::string_view text) {
  absl::Status s(absl::StatusCode::kUnknown, text);
  s.SetPayload(kRedisErrorPayload, absl::Cord("1"));
  return s;
}

bool IsRedisError(const absl::Status& status) {
  return status.GetPayload(kRedisErrorPayload).has_value();
}

std::string RedisErrorCode(const absl::Status& status) {
  if (!IsRedisError(status)) return "";
  absl::string_view m = status.message();
  return std::string(m.substr(0, m.find(' ')));
}

// ---- RespParser -------------------------------------------------------------

RespParser::RespParser(RespLimits limits) : limits_(limits) {}

void RespParser::append(absl::string_view data) {
  if (!error_.ok()) return;
  buf_.append(data.data(), data.size());
}

absl::Status RespParser::fail(absl::string_view why) {
  error_ = absl::InvalidArgumentError(absl::StrCat("redis protocol error: ", why));
  buf_.clear();
  buf_.shrink_to_fit();
  pos_ = scan_ = 0;
  stack_.clear();
  attributes_.clear();
  attributed_ = false;
  bulk_.reset();
  return error_;
}

RedisReply RespParser::begin(RedisReply::Type type) {
  RedisReply r;
  r.type = type;
  attributed_ = false;
  if (!attributes_.empty()) {
    r.attributes = std::move(attributes_);
    attributes_.clear();
  }
  return r;
}

void RespParser::complete(RedisReply value, std::optional<RedisReply>* done) {
  while (true) {
    if (stack_.empty()) {
      *done = std::move(value);
      return;
    }
    Frame& f = stack_.back();
    f.reply.elements.push_back(std::move(value));
    if (--f.remaining > 0) return;
    Frame finished = std::move(f);
    stack_.pop_back();
    if (finished.attribute) {
      // Attributes describe the value that follows them: hold them for it
      // (with any that came before this attribute).
      attributes_ = std::move(finished.reply.attributes);
      for (RedisReply& e : finished.reply.elements) attributes_.push_back(std::move(e));
      attributed_ = true;
      return;
    }
    value = std::move(finished.reply);
  }
}

absl::Status RespParser::parseLine(absl::string_view line, std::optional<RedisReply>* done) {
  if (line.empty()) return fail("empty line where a reply was expected");
  const char t = line[0];
  absl::string_view body = line.substr(1);
  if (body.find('\r') != absl::string_view::npos) return fail("CR inside a line");
  switch (t) {
    case '+':
    case '-': {
      RedisReply r = begin(t == '+' ? RedisReply::Type::kSimpleString : RedisReply::Type::kError);
      r.str = std::string(body);
      complete(std::move(r), done);
      return absl::OkStatus();
    }
    case ':': {
      RedisReply r = begin(RedisReply::Type::kInteger);
      if (!ParseInt64(body, &r.integer)) {
        return fail(absl::StrCat("bad integer '", absl::CHexEscape(body.substr(0, 40)), "'"));
      }
      complete(std::move(r), done);
      return absl::OkStatus();
    }
    case '_':
      if (!body.empty()) return fail("null with a body");
      complete(begin(RedisReply::Type::kNull), done);
      return absl::OkStatus();
    case '#': {
      if (body != "t" && body != "f") return fail("boolean neither t nor f");
      RedisReply r = begin(RedisReply::Type::kBoolean);
      r.integer = body == "t" ? 1 : 0;
      complete(std::move(r), done);
      return absl::OkStatus();
    }
    case ',': {
      RedisReply r = begin(RedisReply::Type::kDouble);
      if (!ParseDouble(body, &r.number)) {
        return fail(absl::StrCat("bad double '", absl::CHexEscape(body.substr(0, 40)), "'"));
      }
      r.str = std::string(body);
      complete(std::move(r), done);
      return absl::OkStatus();
    }
    case '(': {
      if (!IsBigNumber(body)) return fail("bad big number");
      RedisReply r = begin(RedisReply::Type::kBigNumber);
      r.str = std::string(body);
      complete(std::move(r), done);
      return absl::OkStatus();
    }
    case '$':
    case '!':
    case '=': {
      if (body == "?") return fail("streamed strings are not supported");
      int64_t len;
      if (!ParseInt64(body, &len)) return fail("bad length");
      if (t == '$' && len == -1) {  // RESP2's null bulk string
        complete(begin(RedisReply::Type::kNull), done);
        return absl::OkStatus();
      }
      if (len < 0) return fail("negative length");
      if (len > limits_.max_bulk_length) {
        return fail(absl::StrCat("bulk length ", len, " exceeds the limit of ",
                                 limits_.max_bulk_length));
      }
      if (t == '=' && len < 4) return fail("verbatim string shorter than its format");
      bulk_ = begin(t == '$'   ? RedisReply::Type::kBulkString
                    : t == '!' ? RedisReply::Type::kError
                               : RedisReply::Type::kVerbatim);
      bulk_->str.reserve(static_cast<size_t>(std::min(len, kBulkReserveAhead)));
      bulk_remaining_ = len + 2;
      return absl::OkStatus();
    }
    case '*':
    case '%':
    case '~':
    case '>':
    case '|': {
      if (body == "?") return fail("streamed aggregates are not supported");
      int64_t n;
      if (!ParseInt64(body, &n)) return fail("bad aggregate length");
      if (t == '*' && n == -1) {  // RESP2's null array
        complete(begin(RedisReply::Type::kNull), done);
        return absl::OkStatus();
      }
      if (n < 0) return fail("negative aggregate length");
      const bool paired = t == '%' || t == '|';
      if (n > (paired ? limits_.max_aggregate_length / 2 : limits_.max_aggregate_length)) {
        return fail(absl::StrCat("aggregate of ", n, paired ? " pairs" : " elements",
                                 " exceeds the limit of ", limits_.max_aggregate_length,
                                 " elements"));
      }
      const RedisReply::Type type = t == '*'   ? RedisReply::Type::kArray
                                    : t == '~' ? RedisReply::Type::kSet
                                    : t == '>' ? RedisReply::Type::kPush
                                               : RedisReply::Type::kMap;
      const int64_t elements = paired ? 2 * n : n;
      if (elements == 0) {
        if (t == '|') {  // no attributes, but a value must still follow
          attributed_ = true;
          return absl::OkStatus();
        }
        complete(begin(type), done);
        return absl::OkStatus();
      }
      if (stack_.size() >= static_cast<size_t>(limits_.max_depth)) {
        return fail(absl::StrCat("replies nested deeper than the limit of ", limits_.max_depth));
      }
      Frame f{begin(type), elements, t == '|'};
      f.reply.elements.reserve(static_cast<size_t>(std::min(elements, kReserveAhead)));
      stack_.push_back(std::move(f));
      return absl::OkStatus();
    }
    default:
      return fail(absl::StrCat("unknown reply type byte 0x",
                               absl::Hex(static_cast<unsigned char>(t), absl::kZeroPad2)));
  }
}

absl::StatusOr<std::optional<RedisReply>> RespParser::next() {
  if (!error_.ok()) return error_;
  std::optional<RedisReply> done;
  while (!done.has_value()) {
    const size_t avail = buf_.size() - pos_;
    if (bulk_.has_value()) {
      if (avail == 0) break;
      if (bulk_remaining_ > 2) {
        const size_t take = static_cast<size_t>(
            std::min<int64_t>(static_cast<int64_t>(avail), bulk_remaining_ - 2));
        bulk_->str.append(buf_, pos_, take);
        pos_ += take;
        bulk_remaining_ -= static_cast<int64_t>(take);
        continue;
      }
      // The CRLF after the payload, which may arrive a byte at a time.
      if (buf_[pos_] != (bulk_remaining_ == 2 ? '\r' : '\n')) {
        return fail("bulk string not followed by CRLF");
      }
      ++pos_;
      if (--bulk_remaining_ > 0) continue;
      RedisReply r = std::move(*bulk_);
      bulk_.reset();
      if (r.type == RedisReply::Type::kVerbatim) {
        if (r.str[3] != ':') return fail("verbatim string without its 'fmt:' prefix");
        r.format = r.str.substr(0, 3);
        r.str.erase(0, 4);
      }
      complete(std::move(r), &done);
      continue;
    }
    const size_t from = std::max(scan_, pos_);
    const void* lf = std::memchr(buf_.data() + from, '\n', buf_.size() - from);
    if (lf == nullptr) {
      scan_ = buf_.size();
      if (avail > limits_.max_line_length + 1) {
        return fail(absl::StrCat("line longer than the limit of ", limits_.max_line_length));
      }
      break;
    }
    const size_t end = static_cast<size_t>(static_cast<const char*>(lf) - buf_.data());
    if (end - pos_ > limits_.max_line_length + 1) {
      return fail(absl::StrCat("line longer than the limit of ", limits_.max_line_length));
    }
    if (end == pos_ || buf_[end - 1] != '\r') return fail("line not ended by CRLF");
    const absl::string_view line(buf_.data() + pos_, end - 1 - pos_);
    pos_ = scan_ = end + 1;
    absl::Status s = parseLine(line, &done);
    if (!s.ok()) return s;
  }
  // Drop what is consumed: all of it, or the front once it is most of the
  // buffer (each byte moves at most once per halving: linear overall).
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = scan_ = 0;
  } else if (pos_ >= kCompactAt && pos_ * 2 >= buf_.size()) {
    buf_.erase(0, pos_);
    // A bulk payload may have taken pos_ past the last line's scan.
    scan_ = scan_ > pos_ ? scan_ - pos_ : 0;
    pos_ = 0;
  }
  return done;
}

absl::StatusOr<std::vector<RedisReply>> ParseAllReplies(absl::string_view data,
                                                        RespLimits limits) {
  RespParser p(limits);
  p.append(data);
  std::vector<RedisReply> out;
  while (true) {
    absl::StatusOr<std::optional<RedisReply>> r = p.next();
    if (!r.ok()) return r.status();
    if (!r->has_value()) break;
    out.push_back(std::move(**r));
  }
  if (p.midReply()) return absl::OutOfRangeError("incomplete reply");
  return out;
}

// ---- Writing ----------------------------------------------------------------

void AppendCommand(std::string* out, absl::Span<const absl::string_view> args) {
  // No reserve() to the exact size: appending command after command to one
  // buffer would then reallocate and copy it every time (quadratic).
  absl::StrAppend(out, "*", args.size(), "\r\n");
  for (absl::string_view a : args) {
    absl::StrAppend(out, "$", a.size(), "\r\n");
    out->append(a.data(), a.size());
    out->append("\r\n");
  }
}

std::string EncodeCommand(absl::Span<const absl::string_view> args) {
  std::string out;
  AppendCommand(&out, args);
  return out;
}

void AppendReply(std::string* out, const RedisReply& reply) {
  using Type = RedisReply::Type;
  if (!reply.attributes.empty()) {
    absl::StrAppend(out, "|", reply.attributes.size() / 2, "\r\n");
    for (const RedisReply& a : reply.attributes) AppendReply(out, a);
  }
  auto simple = [&](char c, absl::string_view s) {
    out->push_back(c);
    out->append(s.data(), s.size());
    out->append("\r\n");
  };
  auto blob = [&](char c, absl::string_view prefix, absl::string_view s) {
    absl::StrAppend(out, absl::string_view(&c, 1), prefix.size() + s.size(), "\r\n", prefix, s,
                    "\r\n");
  };
  auto aggregate = [&](char c, size_t n) {
    absl::StrAppend(out, absl::string_view(&c, 1), n, "\r\n");
    for (const RedisReply& e : reply.elements) AppendReply(out, e);
  };
  const bool has_crlf = reply.str.find_first_of("\r\n") != std::string::npos;
  switch (reply.type) {
    case Type::kSimpleString:
      if (has_crlf) {
        blob('$', "", reply.str);  // cannot be a line
      } else {
        simple('+', reply.str);
      }
      break;
    case Type::kError:
      if (has_crlf) {
        blob('!', "", reply.str);
      } else {
        simple('-', reply.str);
      }
      break;
    case Type::kInteger: simple(':', absl::StrCat(reply.integer)); break;
    case Type::kBulkString: blob('$', "", reply.str); break;
    case Type::kNull: simple('_', ""); break;
    case Type::kArray: aggregate('*', reply.elements.size()); break;
    case Type::kSet: aggregate('~', reply.elements.size()); break;
    case Type::kPush: aggregate('>', reply.elements.size()); break;
    case Type::kMap: aggregate('%', reply.elements.size() / 2); break;
    case Type::kDouble:
      simple(',', reply.str.empty() ? absl::StrCat(reply.number) : reply.str);
      break;
    case Type::kBoolean: simple('#', reply.integer ? "t" : "f"); break;
    case Type::kBigNumber: simple('(', reply.str); break;
    case Type::kVerbatim:
      blob('=', absl::StrCat(reply.format.empty() ? "txt" : reply.format.substr(0, 3), ":"),
           reply.str);
      break;
  }
}

std::string EncodeReply(const RedisReply& reply) {
  std::string out;
  AppendReply(&out, reply);
  return out;
}

}  // namespace twist
