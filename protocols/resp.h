#ifndef TWIST_PROTOCOLS_RESP_H_
#define TWIST_PROTOCOLS_RESP_H_

// RESP, the Redis serialization protocol: the reply type, an incremental
// reply parser, and the command writer (issue 17). RESP2 and the RESP3 types
// a server sends after HELLO 3 (map, set, null, double, boolean, big number,
// verbatim string, push, attribute, blob error). Streamed RESP3 strings and
// aggregates ("$?", "*?"), which Redis never sends, are a protocol error.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace twist {

/// One reply from a Redis server (or one element of an aggregate reply).
struct RedisReply {
  enum class Type {
    kSimpleString,  // +OK
    kError,         // -ERR ... (RESP2) and !<len> blob errors (RESP3)
    kInteger,       // :42
    kBulkString,    // $3 foo
    kNull,          // $-1, *-1 (RESP2), _ (RESP3)
    kArray,         // *2 ...
    kMap,           // %2 ... (RESP3): elements are key, value, key, value, ...
    kSet,           // ~2 ... (RESP3)
    kDouble,        // ,3.14 (RESP3): `str` is the text, `number` its value
    kBoolean,       // #t (RESP3): `integer` is 1 or 0
    kBigNumber,     // (1234567890123456789012 (RESP3): `str` holds the digits
    kVerbatim,      // =15 txt:Some string (RESP3): `format` "txt", `str` the text
    kPush,          // >3 ... (RESP3): out-of-band (pub/sub messages)
  };

  Type type = Type::kNull;
  /// Simple and bulk strings, errors, big numbers, verbatim text, the text
  /// of a double.
  std::string str;
  /// Integers and booleans.
  int64_t integer = 0;
  /// Doubles.
  double number = 0;
  /// Verbatim strings: the three-letter format ("txt", "mkd").
  std::string format;
  /// Arrays, sets, pushes; maps as key, value, key, value, ...
  std::vector<RedisReply> elements;
  /// RESP3 attributes ("|") sent before this reply, as key, value, ...;
  /// usually empty.
  std::vector<RedisReply> attributes;

  static RedisReply SimpleString(std::string s);
  static RedisReply Error(std::string s);
  static RedisReply Integer(int64_t i);
  static RedisReply Bulk(std::string s);
  static RedisReply Null();
  static RedisReply Array(std::vector<RedisReply> elements);

  bool isNull() const { return type == Type::kNull; }
  bool isError() const { return type == Type::kError; }
  /// A string of any kind (simple, bulk, verbatim, big number).
  bool isString() const {
    return type == Type::kSimpleString || type == Type::kBulkString ||
           type == Type::kVerbatim || type == Type::kBigNumber;
  }
  /// An array, set or push (a sequence of elements; not a map).
  bool isSequence() const {
    return type == Type::kArray || type == Type::kSet || type == Type::kPush;
  }

  /// Readable, for messages and tests: "OK", "\"foo\"", "(integer) 42",
  /// "(error) ERR ...", "(nil)", "[1, 2]", "{k: v}", "~{a}", ">[...]".
  std::string DebugString() const;

  friend bool operator==(const RedisReply& a, const RedisReply& b);
  friend bool operator!=(const RedisReply& a, const RedisReply& b) { return !(a == b); }
};

/// For gtest and logs.
void PrintTo(const RedisReply& reply, std::ostream* os);
const char* RedisReplyTypeName(RedisReply::Type type);

/// The status an error reply becomes: UNKNOWN, with the server's text as the
/// message ("WRONGTYPE Operation against a key holding the wrong kind of
/// value"), marked so that IsRedisError() tells it from a local failure.
absl::Status RedisError(absl::string_view text);
/// The status is an error reply from the server (RedisError).
bool IsRedisError(const absl::Status& status);
/// The error's first word ("ERR", "WRONGTYPE", "NOAUTH"), or "" for a
/// status that is not a RedisError.
std::string RedisErrorCode(const absl::Status& status);

/// What a parser accepts before it calls the input hostile. A reply that
/// exceeds one is a protocol error (INVALID_ARGUMENT naming the limit),
/// found from its header, before anything is allocated for it.
struct RespLimits {
  /// Longest bulk string, blob error or verbatim string (Redis's own
  /// proto-max-bulk-len default).
  int64_t max_bulk_length = 512 * 1024 * 1024;
  /// Most elements in one array, set or push (a map or attribute counts
  /// its keys and values).
  int64_t max_aggregate_length = 16 * 1024 * 1024;
  /// Deepest nesting of aggregates (attributes included); 1 is a flat array.
  int max_depth = 64;
  /// Longest header or simple line (simple string, error, number), its
  /// type byte included, CRLF excluded: what the parser holds while the line is unfinished.
  size_t max_line_length = 64 * 1024;
};

/// Parses replies from a stream of bytes however it is split: append() what
/// arrives, then call next() until it returns nullopt. Linear in the input:
/// each byte is copied at most twice (into the buffer, then into the reply)
/// and looked at once, and what is held between calls is one unfinished
/// line at most (bulk payloads move into their reply as they arrive).
/// An aggregate reserves at most a few elements ahead of the ones received,
/// so a header that declares a huge length costs nothing until the data
/// comes.
///
/// A protocol error (malformed input, a limit exceeded) is final: next()
/// returns it from then on.
class RespParser {
 public:
  explicit RespParser(RespLimits limits = {});

  void append(absl::string_view data);
  /// The next complete reply; nullopt when more input is needed; an error
  /// (INVALID_ARGUMENT, "redis protocol error: ...") for bad input.
  absl::StatusOr<std::optional<RedisReply>> next();

  /// Bytes held: an unfinished line, or input not parsed yet.
  size_t buffered() const { return buf_.size() - pos_; }
  /// Whether a reply is under way (part of it parsed, or bytes held).
  bool midReply() const {
    return !stack_.empty() || bulk_ || buffered() > 0 || attributed_;
  }
  const RespLimits& limits() const { return limits_; }

 private:
  struct Frame {
    RedisReply reply;
    int64_t remaining;   // elements still to come
    bool attribute;      // an attribute map, not a value
  };
  absl::Status fail(absl::string_view why);
  // Parses one header or simple line; may complete a value into *done.
  absl::Status parseLine(absl::string_view line, std::optional<RedisReply>* done);
  // A value is complete: adds it to the open aggregate, closing those it
  // completes; sets *done when that completes a top-level reply.
  void complete(RedisReply value, std::optional<RedisReply>* done);
  RedisReply begin(RedisReply::Type type);

  RespLimits limits_;
  std::string buf_;
  size_t pos_ = 0;   // start of unparsed input in buf_
  size_t scan_ = 0;  // where the search for the current line's LF resumes
  std::vector<Frame> stack_;
  std::vector<RedisReply> attributes_;  // a finished attribute awaiting its value
  bool attributed_ = false;  // an attribute (even an empty one) awaits its value
  // A bulk payload being received: the reply, and bytes still to come
  // (payload, then CRLF).
  std::optional<RedisReply> bulk_;
  int64_t bulk_remaining_ = 0;
  absl::Status error_;
};

/// The whole of `data` as replies, for tests and the fuzzer: every
/// complete reply, and an error if the data is malformed or ends inside a
/// reply (OUT_OF_RANGE, "incomplete reply").
absl::StatusOr<std::vector<RedisReply>> ParseAllReplies(absl::string_view data,
                                                        RespLimits limits = {});

/// A command as Redis reads it: an array of bulk strings.
/// AppendCommand(&out, {"SET", "key", "value"}) appends
/// "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n".
void AppendCommand(std::string* out, absl::Span<const absl::string_view> args);
std::string EncodeCommand(absl::Span<const absl::string_view> args);

/// `reply` in RESP (RESP3 types as RESP3): what a server would send, for
/// test servers and the fuzzer. Attributes are written before the reply.
void AppendReply(std::string* out, const RedisReply& reply);
std::string EncodeReply(const RedisReply& reply);

}  // namespace twist

#endif  // TWIST_PROTOCOLS_RESP_H_
