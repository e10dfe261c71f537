// Fuzz target for the RESP reply parser (protocols/resp.h, issue 17): the
// input is fed to RespParser in pieces whose sizes the input also picks,
// and the outcome (replies, error, unfinished) is checked against a plain
// model: a recursive-descent parser over the whole input at once, written
// separately here from the wire format's rules. Also checked: what the
// parser holds between calls stays within one line, and every reply
// written back with AppendReply parses to itself.

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_util.h"
#include "fuzz/targets.h"
#include "protocols/resp.h"

namespace twist {
namespace fuzz {
namespace resp {
namespace {

constexpr const char* kTarget = "resp";

// ---- The model ----------------------------------------------------------

class Model {
 public:
  enum class End { kComplete, kIncomplete, kError };

  Model(absl::string_view data, const RespLimits& limits) : d_(data), limits_(limits) {}

  // Every reply, then how the input ends.
  End run(std::vector<RedisReply>* out) {
    while (pos_ < d_.size()) {
      RedisReply r;
      const Outcome o = value(0, &r);
      if (o != Outcome::kOk) return o == Outcome::kMore ? End::kIncomplete : End::kError;
      out->push_back(std::move(r));
    }
    return End::kComplete;
  }

 private:
  enum class Outcome { kOk, kMore, kBad };

  // A line from pos_ to its CRLF (not included), advancing past it.
  Outcome line(absl::string_view* l) {
    size_t lf = d_.find('\n', pos_);
    if (lf == absl::string_view::npos) {
      return d_.size() - pos_ > limits_.max_line_length + 1 ? Outcome::kBad : Outcome::kMore;
    }
    if (lf - pos_ > limits_.max_line_length + 1) return Outcome::kBad;
    if (lf == pos_ || d_[lf - 1] != '\r') return Outcome::kBad;
    *l = d_.substr(pos_, lf - 1 - pos_);
    pos_ = lf + 1;
    return Outcome::kOk;
  }

  static bool Int(absl::string_view s, int64_t* v) {
    if (s.empty()) return false;
    size_t i = s[0] == '-' ? 1 : 0;
    if (i == s.size()) return false;
    for (size_t k = i; k < s.size(); ++k) {
      if (s[k] < '0' || s[k] > '9') return false;
    }
    const std::string z(s);
    errno = 0;
    char* end = nullptr;
    const long long x = std::strtoll(z.c_str(), &end, 10);
    if (errno == ERANGE || end != z.c_str() + z.size()) return false;
    *v = x;
    return true;
  }

  static bool Double(absl::string_view s) {
    if (s == "inf" || s == "+inf" || s == "-inf" || s == "nan" || s == "-nan") return true;
    if (s.empty()) return false;
    for (char c : s) {
      if (!((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.' || c == 'e' || c == 'E')) {
        return false;
      }
    }
    double d;
    return absl::SimpleAtod(s, &d);
  }

  // One value at `depth` open aggregates, attributes before it included.
  Outcome value(int depth, RedisReply* r) {
    std::vector<RedisReply> attrs;
    while (true) {
      if (pos_ >= d_.size()) return Outcome::kMore;
      absl::string_view l;
      if (Outcome o = line(&l); o != Outcome::kOk) return o;
      if (l.empty()) return Outcome::kBad;
      const char t = l[0];
      const absl::string_view body = l.substr(1);
      if (body.find('\r') != absl::string_view::npos) return Outcome::kBad;
      RedisReply v;
      int64_t n = 0;
      switch (t) {
        case '+': v.type = RedisReply::Type::kSimpleString; v.str = std::string(body); break;
        case '-': v.type = RedisReply::Type::kError; v.str = std::string(body); break;
        case ':':
          v.type = RedisReply::Type::kInteger;
          if (!Int(body, &v.integer)) return Outcome::kBad;
          break;
        case '_':
          if (!body.empty()) return Outcome::kBad;
          v.type = RedisReply::Type::kNull;
          break;
        case '#':
          if (body != "t" && body != "f") return Outcome::kBad;
          v.type = RedisReply::Type::kBoolean;
          v.integer = body == "t";
          break;
        case ',':
          if (!Double(body)) return Outcome::kBad;
          v.type = RedisReply::Type::kDouble;
          v.str = std::string(body);
          break;
        case '(': {
          absl::string_view digits = body;
          if (!digits.empty() && digits[0] == '-') digits.remove_prefix(1);
          if (digits.empty() || digits.find_first_not_of("0123456789") != absl::string_view::npos) {
            return Outcome::kBad;
          }
          v.type = RedisReply::Type::kBigNumber;
          v.str = std::string(body);
          break;
        }
        case '$':
        case '!':
        case '=': {
          if (!Int(body, &n)) return Outcome::kBad;
          if (t == '$' && n == -1) {
            v.type = RedisReply::Type::kNull;
            break;
          }
          if (n < 0 || n > limits_.max_bulk_length) return Outcome::kBad;
          if (t == '=' && n < 4) return Outcome::kBad;
          const size_t len = static_cast<size_t>(n);
          // Payload, then exactly CRLF; a wrong byte is an error even
          // before the rest arrives.
          const size_t have = d_.size() - pos_;
          if (have < len) return Outcome::kMore;
          absl::string_view payload = d_.substr(pos_, len);
          for (size_t k = 0; k < 2; ++k) {
            if (have < len + k + 1) return Outcome::kMore;
            if (d_[pos_ + len + k] != "\r\n"[k]) return Outcome::kBad;
          }
          pos_ += len + 2;
          v.type = t == '$'   ? RedisReply::Type::kBulkString
                   : t == '!' ? RedisReply::Type::kError
                              : RedisReply::Type::kVerbatim;
          v.str = std::string(payload);
          if (t == '=') {
            if (v.str[3] != ':') return Outcome::kBad;
            v.format = v.str.substr(0, 3);
            v.str = v.str.substr(4);
          }
          break;
        }
        case '*':
        case '%':
        case '~':
        case '>':
        case '|': {
          if (!Int(body, &n)) return Outcome::kBad;
          if (t == '*' && n == -1) {
            v.type = RedisReply::Type::kNull;
            break;
          }
          const bool paired = t == '%' || t == '|';
          if (n < 0) return Outcome::kBad;
          if (n > (paired ? limits_.max_aggregate_length / 2 : limits_.max_aggregate_length)) {
            return Outcome::kBad;
          }
          const int64_t count = paired ? 2 * n : n;
          if (count > 0 && depth >= limits_.max_depth) return Outcome::kBad;
          std::vector<RedisReply> elements;
          for (int64_t k = 0; k < count; ++k) {
            RedisReply e;
            if (Outcome o = value(depth + 1, &e); o != Outcome::kOk) return o;
            elements.push_back(std::move(e));
          }
          if (t == '|') {
            for (RedisReply& e : elements) attrs.push_back(std::move(e));
            continue;  // the value they describe follows
          }
          v.type = t == '*'   ? RedisReply::Type::kArray
                   : t == '%' ? RedisReply::Type::kMap
                   : t == '~' ? RedisReply::Type::kSet
                              : RedisReply::Type::kPush;
          v.elements = std::move(elements);
          break;
        }
        default:
          return Outcome::kBad;
      }
      v.attributes = std::move(attrs);
      *r = std::move(v);
      return Outcome::kOk;
    }
  }

  absl::string_view d_;
  const RespLimits& limits_;
  size_t pos_ = 0;
};

}  // namespace

int FuzzOne(const uint8_t* data, size_t size) {
  Input in(data, size);
  const uint8_t flags = in.byte();
  // Piece sizes, cycled: 1..16 bytes each, or everything at once.
  std::vector<size_t> pieces;
  const int n_pieces = in.byte() % 8;
  for (int i = 0; i < n_pieces; ++i) pieces.push_back(1 + in.byte() % 16);
  const absl::string_view wire = in.bytes(size);

  RespLimits limits;
  if (flags & 1) {
    limits.max_bulk_length = 64;
    limits.max_aggregate_length = 8;
    limits.max_depth = 1 + (flags >> 4) % 4;
    limits.max_line_length = 24;
  }

  RespParser parser(limits);
  std::vector<RedisReply> got;
  absl::Status error;
  size_t at = 0;
  for (size_t i = 0; at < wire.size() && error.ok(); ++i) {
    const size_t n = pieces.empty() ? wire.size() : pieces[i % pieces.size()];
    parser.append(wire.substr(at, n));
    at += std::min(n, wire.size() - at);
    while (true) {
      absl::StatusOr<std::optional<RedisReply>> r = parser.next();
      if (!r.ok()) {
        error = r.status();
        TWIST_FUZZ_CHECK(kTarget, absl::IsInvalidArgument(error), error.ToString());
        break;
      }
      if (!r->has_value()) {
        TWIST_FUZZ_CHECK(kTarget, parser.buffered() <= limits.max_line_length + 1,
                         absl::StrCat("holds ", parser.buffered(), " bytes between calls"));
        break;
      }
      got.push_back(std::move(**r));
    }
  }

  std::vector<RedisReply> want;
  const Model::End end = Model(wire, limits).run(&want);
  TWIST_FUZZ_CHECK(kTarget, (end == Model::End::kError) == !error.ok(),
                   absl::StrCat("model error: ", end == Model::End::kError, "; parser: ",
                                error.ToString(), "; input ", Show(wire)));
  if (error.ok()) {
    TWIST_FUZZ_CHECK(kTarget, (end == Model::End::kIncomplete) == parser.midReply(),
                     absl::StrCat("model incomplete: ", end == Model::End::kIncomplete,
                                  "; input ", Show(wire)));
  }
  TWIST_FUZZ_CHECK(kTarget, got == want,
                   absl::StrCat(got.size(), " replies, the model ", want.size(), "; input ",
                                Show(wire)));

  // Written back, each reply parses to itself (under the default limits: a
  // blob error may come back as a line longer than the small limit).
  for (const RedisReply& r : got) {
    const std::string again = EncodeReply(r);
    absl::StatusOr<std::vector<RedisReply>> back = ParseAllReplies(again);
    TWIST_FUZZ_CHECK(kTarget, back.ok() && back->size() == 1 && (*back)[0] == r,
                     absl::StrCat(r.DebugString(), " written as ", Show(again), ": ",
                                  back.status().ToString()));
  }
  return 0;
}

}  // namespace resp
}  // namespace fuzz
}  // namespace twist
