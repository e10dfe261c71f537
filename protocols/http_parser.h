#ifndef TWIST_PROTOCOLS_HTTP_PARSER_H_
#define TWIST_PROTOCOLS_HTTP_PARSER_H_

// An incremental HTTP/1.1 request parser (RFC 9110/9112), the part of
// twisted.web's HTTPChannel that reads requests, without any I/O.
//
// Linear in its input however it is split: every byte is scanned a bounded
// number of times, the head is copied once into a buffer kept across
// requests (no allocation once it has grown; a head that arrives whole is
// parsed where it lies and copied in one piece), and body bytes are handed
// out as views of the caller's input, never copied here. Memory is bounded by
// the limits: one request line, one header section, one chunk-size line.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"

namespace twist {

/// The limits a request must keep; each broken one is an error status.
struct HttpLimits {
  size_t max_request_line = 8192;   // 414 URI Too Long beyond
  size_t max_header_bytes = 32768;  // 431 beyond (the field lines together)
  size_t max_headers = 100;         // 431 beyond
  uint64_t max_body = 1 << 20;      // 413 Content Too Large beyond
};

/// One header field of a request; views into the parser's head buffer,
/// valid until the next request's head is parsed.
struct HttpField {
  absl::string_view name;
  absl::string_view value;
};

class HttpParser {
 public:
  enum class Event {
    kNeedMore,  // every byte of the input is consumed; feed more
    kHead,      // the request line and headers are complete (see accessors)
    kBody,      // `*body` holds the next piece of the body
    kComplete,  // the request is complete; the next call starts another
    kError,     // error() is the status to answer with; stop feeding
  };

  explicit HttpParser(const HttpLimits& limits = {}) : limits_(limits) {}

  /// Consumes from the front of `*input` until an event; on kBody, `*body`
  /// is a view of the consumed input.
  Event parse(absl::string_view* input, absl::string_view* body);

  // ---- The current request, valid from kHead until the next parse() ----
  absl::string_view method() const { return view(method_); }
  absl::string_view target() const { return view(target_); }
  /// "HTTP/1.0" or "HTTP/1.1".
  absl::string_view version() const { return minor_ == 0 ? "HTTP/1.0" : "HTTP/1.1"; }
  int minorVersion() const { return minor_; }
  const std::vector<HttpField>& headers() const { return fields_; }
  /// Persistent after this request (1.1 without Connection: close, or 1.0
  /// with Connection: keep-alive).
  bool keepAlive() const { return keep_alive_; }
  bool expectContinue() const { return expect_continue_; }
  bool chunked() const { return chunked_; }
  /// Content-Length, or 0 (chunked() tells the other case).
  uint64_t contentLength() const { return content_length_; }
  /// Whether a body follows the head.
  bool hasBody() const { return chunked_ || content_length_ > 0; }

  /// The status of a kError: 400, 413, 414, 417, 431, 501 or 505.
  int error() const { return error_; }
  /// Whether some of the next request has arrived (for the idle timeout).
  bool midRequest() const { return state_ != State::kStart || !head_.empty(); }
  /// Bytes held: the head buffer and the line being read.
  size_t heldBytes() const { return head_.size() + line_.size(); }

 private:
  enum class State {
    kStart,       // before the request line (empty lines skipped)
    kHeaders,     // reading field lines
    kBodyLength,  // Content-Length body
    kChunkSize,   // chunk-size line
    kChunkData,
    kChunkDataEnd,  // the CRLF after chunk data
    kTrailers,
    kDone,        // kComplete returned; reset on the next call
    kFailed,
  };
  struct Span {
    uint32_t off = 0;
    uint32_t len = 0;
  };

  absl::string_view view(Span s) const { return absl::string_view(head_).substr(s.off, s.len); }
  Event fail(int status);
  void reset();
  // Moves bytes up to and including the next LF from `*input` to `buf`;
  // true when a whole line is there.
  static bool takeLine(absl::string_view* input, std::string* buf);
  // The request line and field lines parsed where they are in `*input`,
  // while nothing of this head is held (kStart, head_ empty): the head is
  // then copied once, not line by line.
  Event headInPlace(absl::string_view* input);
  // `line` is the request line, at offset 0 of the head.
  Event requestLine(absl::string_view line);
  // The field line [start, end) of the head that starts at `base`.
  Event fieldLine(const char* base, size_t start, size_t end);
  Event endOfHead();
  Event chunkSizeLine(absl::string_view line);

  HttpLimits limits_;
  State state_ = State::kStart;
  int error_ = 0;
  std::string head_;  // request line and field lines, as received
  std::string line_;  // a chunk-size or trailer line
  size_t line_start_ = 0;  // where the current line starts in head_
  size_t headers_start_ = 0;  // where the field lines start in head_
  Span method_, target_;
  std::vector<Span> spans_;  // name, value pairs, turned into fields_
  std::vector<HttpField> fields_;
  int minor_ = 1;
  int hosts_ = 0;
  bool keep_alive_ = true;
  bool conn_close_ = false;
  bool conn_keep_alive_ = false;
  bool expect_continue_ = false;
  bool chunked_ = false;
  bool has_length_ = false;
  bool te_seen_ = false;
  uint64_t content_length_ = 0;
  uint64_t remaining_ = 0;   // of the Content-Length body or the chunk
  uint64_t body_seen_ = 0;   // chunked bytes so far, against max_body
  size_t trailer_bytes_ = 0;
  size_t trailer_count_ = 0;
};

/// The standard reason phrase of a status code ("OK", "Not Found"), or
/// "Unknown".
absl::string_view HttpReason(int code);

namespace internal {
// RFC 9110 tchar: "!#$%&'*+-.^_`|~", digits and letters.
struct TokenTable {
  bool t[256] = {};
  constexpr TokenTable() {
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
    const char extra[] = "!#$%&'*+-.^_`|~";
    for (int i = 0; extra[i] != 0; ++i) t[static_cast<unsigned char>(extra[i])] = true;
  }
};
inline constexpr TokenTable kTokenTable{};
}  // namespace internal

/// Whether `c` is a token character (RFC 9110 tchar). Inline: the parser
/// asks it of every byte of every method and field name.
inline bool IsHttpTokenChar(unsigned char c) { return internal::kTokenTable.t[c]; }

/// ASCII case-insensitive equality of header names and tokens. Inline (a
/// table lookup per byte): absl::EqualsIgnoreCase is a call into a shared
/// library, made for every field of every request and response.
inline bool HttpEqualsIgnoreCase(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (absl::ascii_tolower(static_cast<unsigned char>(a[i])) !=
        absl::ascii_tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace twist

#endif  // TWIST_PROTOCOLS_HTTP_PARSER_H_
