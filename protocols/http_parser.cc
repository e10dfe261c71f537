#include "protocols/http_parser.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace twist {

namespace {

constexpr size_t kMaxChunkLine = 4096;  // chunk size plus extensions

bool IsFieldValueChar(unsigned char c) {
  return c == '\t' || (c >= 0x20 && c != 0x7f);  // VCHAR, SP, HTAB, obs-text
}

absl::string_view TrimOws(absl::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls f(token) for each element of a comma-separated list, trimmed and
// lowercase-compared by the caller; empty elements are skipped (RFC 9110 5.6.1).
template <typename F>
void ForEachToken(absl::string_view list, F f) {
  while (true) {
    const size_t comma = list.find(',');
    absl::string_view t = TrimOws(list.substr(0, comma));
    if (!t.empty()) f(t);
    if (comma == absl::string_view::npos) return;
    list.remove_prefix(comma + 1);
  }
}

}  // namespace

absl::string_view HttpReason(int code) {
  switch (code) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

HttpParser::Event HttpParser::fail(int status) {
  state_ = State::kFailed;
  error_ = status;
  return Event::kError;
}

void HttpParser::reset() {
  state_ = State::kStart;
  head_.clear();
  line_.clear();
  line_start_ = headers_start_ = 0;
  spans_.clear();
  fields_.clear();
  minor_ = 1;
  hosts_ = 0;
  keep_alive_ = true;
  conn_close_ = conn_keep_alive_ = expect_continue_ = false;
  chunked_ = has_length_ = te_seen_ = false;
  content_length_ = remaining_ = body_seen_ = 0;
  trailer_bytes_ = trailer_count_ = 0;
}

bool HttpParser::takeLine(absl::string_view* input, std::string* buf) {
  const void* lf = std::memchr(input->data(), '\n', input->size());
  const size_t n = lf == nullptr
                       ? input->size()
                       : static_cast<size_t>(static_cast<const char*>(lf) - input->data()) + 1;
  buf->append(input->data(), n);
  input->remove_prefix(n);
  return lf != nullptr;
}

// Strips the line ending (LF or CRLF; a bare LF is accepted, RFC 9112 2.2).
static absl::string_view StripEol(absl::string_view line) {
  line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

HttpParser::Event HttpParser::parse(absl::string_view* input, absl::string_view* body) {
  if (state_ == State::kDone) reset();
  while (true) {
    switch (state_) {
      case State::kStart: {
        // Empty lines before a request line are ignored (RFC 9112 2.2).
        if (head_.empty()) {
          while (!input->empty() && (input->front() == '\r' || input->front() == '\n')) {
            input->remove_prefix(1);
          }
          if (input->empty()) return Event::kNeedMore;
          return headInPlace(input);
        }
        if (input->empty()) return Event::kNeedMore;
        if (!takeLine(input, &head_)) {
          // +1: room for the CR of a CRLF split from its LF.
          if (head_.size() > limits_.max_request_line + 1) return fail(414);
          return Event::kNeedMore;
        }
        absl::string_view line = StripEol(head_);
        if (line.size() > limits_.max_request_line) return fail(414);
        Event e = requestLine(line);
        if (e != Event::kNeedMore) return e;
        line_start_ = headers_start_ = head_.size();
        state_ = State::kHeaders;
        break;
      }
      case State::kHeaders: {
        if (input->empty()) return Event::kNeedMore;
        const bool whole = takeLine(input, &head_);
        // The field section: everything after the request line (whose
        // length is bounded separately).
        const size_t header_bytes = head_.size() - headers_start_;
        if (header_bytes > limits_.max_header_bytes + 2) return fail(431);  // +2: the empty line
        if (!whole) return Event::kNeedMore;
        const size_t start = line_start_;
        line_start_ = head_.size();
        size_t end = head_.size() - 1;
        if (end > start && head_[end - 1] == '\r') --end;
        if (end == start) return endOfHead();
        if (header_bytes > limits_.max_header_bytes) return fail(431);
        Event e = fieldLine(head_.data(), start, end);
        if (e != Event::kNeedMore) return e;
        break;
      }
      case State::kBodyLength: {
        if (remaining_ == 0) {
          state_ = State::kDone;
          return Event::kComplete;
        }
        if (input->empty()) return Event::kNeedMore;
        const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, input->size()));
        *body = input->substr(0, n);
        input->remove_prefix(n);
        remaining_ -= n;
        return Event::kBody;
      }
      case State::kChunkSize: {
        if (input->empty()) return Event::kNeedMore;
        if (!takeLine(input, &line_)) {
          if (line_.size() > kMaxChunkLine) return fail(400);
          return Event::kNeedMore;
        }
        if (line_.size() > kMaxChunkLine + 2) return fail(400);
        Event e = chunkSizeLine(StripEol(line_));
        line_.clear();
        if (e != Event::kNeedMore) return e;
        break;
      }
      case State::kChunkData: {
        if (input->empty()) return Event::kNeedMore;
        const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, input->size()));
        *body = input->substr(0, n);
        input->remove_prefix(n);
        remaining_ -= n;
        if (remaining_ == 0) state_ = State::kChunkDataEnd;
        return Event::kBody;
      }
      case State::kChunkDataEnd: {
        if (input->empty()) return Event::kNeedMore;
        if (!takeLine(input, &line_)) {
          if (line_.size() > 1) return fail(400);
          return Event::kNeedMore;
        }
        if (!StripEol(line_).empty()) return fail(400);
        line_.clear();
        state_ = State::kChunkSize;
        break;
      }
      case State::kTrailers: {
        // Trailer fields are read and dropped (RFC 9112 7.1.2 allows it),
        // under the header limits.
        if (input->empty()) return Event::kNeedMore;
        const bool whole = takeLine(input, &line_);
        if (trailer_bytes_ + line_.size() > limits_.max_header_bytes + 2) return fail(431);
        if (!whole) return Event::kNeedMore;
        absl::string_view t = StripEol(line_);
        trailer_bytes_ += line_.size();
        if (t.empty()) {
          line_.clear();
          state_ = State::kDone;
          return Event::kComplete;
        }
        const size_t colon = t.find(':');
        if (colon == 0 || colon == absl::string_view::npos) return fail(400);
        for (size_t i = 0; i < colon; ++i) {
          if (!IsHttpTokenChar(static_cast<unsigned char>(t[i]))) return fail(400);
        }
        for (size_t i = colon + 1; i < t.size(); ++i) {
          if (!IsFieldValueChar(static_cast<unsigned char>(t[i]))) return fail(400);
        }
        if (++trailer_count_ > limits_.max_headers) return fail(431);
        line_.clear();
        break;
      }
      case State::kDone:
        reset();
        break;
      case State::kFailed:
        input->remove_prefix(input->size());
        return Event::kError;
    }
  }
}

HttpParser::Event HttpParser::headInPlace(absl::string_view* input) {
  // The same steps as kStart and kHeaders in parse(), on lines where they
  // lie in the input: offsets from `base` are offsets into head_ once it is
  // copied there, in one piece, at the end of the head (or, if the input
  // ends first, of the input, and parse() goes on line by line).
  const char* const base = input->data();
  const size_t size = input->size();
  size_t pos = 0;  // where the current line starts
  while (true) {
    const void* lf = std::memchr(base + pos, '\n', size - pos);
    if (lf == nullptr) {
      head_.assign(base, size);
      input->remove_prefix(size);
      line_start_ = pos;
      if (state_ == State::kStart) {
        if (size > limits_.max_request_line + 1) return fail(414);
      } else if (size - headers_start_ > limits_.max_header_bytes + 2) {
        return fail(431);
      }
      return Event::kNeedMore;
    }
    const size_t next = static_cast<size_t>(static_cast<const char*>(lf) - base) + 1;
    Event e = Event::kNeedMore;
    if (state_ == State::kStart) {
      const absl::string_view line = StripEol(absl::string_view(base, next));
      e = line.size() > limits_.max_request_line ? fail(414) : requestLine(line);
      headers_start_ = next;
      if (e == Event::kNeedMore) state_ = State::kHeaders;
    } else {
      const size_t header_bytes = next - headers_start_;
      size_t end = next - 1;
      if (end > pos && base[end - 1] == '\r') --end;
      if (header_bytes > limits_.max_header_bytes + 2) {
        e = fail(431);
      } else if (end == pos) {
        head_.assign(base, next);
        input->remove_prefix(next);
        return endOfHead();
      } else if (header_bytes > limits_.max_header_bytes) {
        e = fail(431);
      } else {
        e = fieldLine(base, pos, end);
      }
    }
    if (e != Event::kNeedMore) {
      input->remove_prefix(next);
      return e;
    }
    pos = next;
  }
}

HttpParser::Event HttpParser::requestLine(absl::string_view line) {
  // method SP request-target SP HTTP-version (RFC 9112 3)
  size_t i = 0;
  while (i < line.size() && IsHttpTokenChar(static_cast<unsigned char>(line[i]))) ++i;
  if (i == 0 || i >= line.size() || line[i] != ' ') return fail(400);
  method_ = {0, static_cast<uint32_t>(i)};
  const size_t t0 = ++i;
  while (i < line.size()) {
    const unsigned char c = static_cast<unsigned char>(line[i]);
    if (c <= 0x20 || c >= 0x7f) break;
    ++i;
  }
  if (i == t0 || i >= line.size() || line[i] != ' ') return fail(400);
  target_ = {static_cast<uint32_t>(t0), static_cast<uint32_t>(i - t0)};
  absl::string_view v = line.substr(i + 1);
  if (v.size() != 8 || !absl::StartsWith(v, "HTTP/") || !absl::ascii_isdigit(v[5]) ||
      v[6] != '.' || !absl::ascii_isdigit(v[7])) {
    return fail(400);
  }
  if (v[5] != '1') return fail(505);
  minor_ = v[7] == '0' ? 0 : 1;
  const absl::string_view target = line.substr(target_.off, target_.len);
  const absl::string_view method = line.substr(0, method_.len);
  // origin-form, absolute-form, or "*" (OPTIONS) / authority-form (CONNECT).
  if (target[0] != '/' && !absl::StartsWithIgnoreCase(target, "http://") &&
      !absl::StartsWithIgnoreCase(target, "https://") && method != "OPTIONS" &&
      method != "CONNECT") {
    return fail(400);
  }
  return Event::kNeedMore;
}

HttpParser::Event HttpParser::fieldLine(const char* base, size_t start, size_t end) {
  absl::string_view line(base + start, end - start);
  if (line[0] == ' ' || line[0] == '\t') return fail(400);  // obs-fold
  size_t colon = 0;
  while (colon < line.size() && IsHttpTokenChar(static_cast<unsigned char>(line[colon]))) ++colon;
  if (colon == 0 || colon >= line.size() || line[colon] != ':') return fail(400);
  size_t v0 = colon + 1;
  size_t v1 = line.size();
  for (size_t i = v0; i < v1; ++i) {
    if (!IsFieldValueChar(static_cast<unsigned char>(line[i]))) return fail(400);
  }
  while (v0 < v1 && (line[v0] == ' ' || line[v0] == '\t')) ++v0;
  while (v1 > v0 && (line[v1 - 1] == ' ' || line[v1 - 1] == '\t')) --v1;
  if (spans_.size() / 2 >= limits_.max_headers) return fail(431);
  spans_.push_back({static_cast<uint32_t>(start), static_cast<uint32_t>(colon)});
  spans_.push_back({static_cast<uint32_t>(start + v0), static_cast<uint32_t>(v1 - v0)});
  const absl::string_view name = line.substr(0, colon);
  const absl::string_view value = line.substr(v0, v1 - v0);
  // The fields that frame the message or the connection, read now.
  switch (name.size()) {
    case 4:
      if (HttpEqualsIgnoreCase(name, "host")) ++hosts_;
      break;
    case 6:
      if (HttpEqualsIgnoreCase(name, "expect")) {
        if (!HttpEqualsIgnoreCase(value, "100-continue")) return fail(417);
        expect_continue_ = true;
      }
      break;
    case 10:
      if (HttpEqualsIgnoreCase(name, "connection")) {
        ForEachToken(value, [&](absl::string_view t) {
          if (HttpEqualsIgnoreCase(t, "close")) conn_close_ = true;
          if (HttpEqualsIgnoreCase(t, "keep-alive")) conn_keep_alive_ = true;
        });
      }
      break;
    case 14:
      if (HttpEqualsIgnoreCase(name, "content-length")) {
        // 1*DIGIT; a repeated field must agree (RFC 9112 6.3), a list is refused.
        if (value.empty() || value.size() > 15) return fail(value.size() > 15 ? 413 : 400);
        uint64_t n = 0;
        for (char c : value) {
          if (!absl::ascii_isdigit(c)) return fail(400);
          n = n * 10 + static_cast<uint64_t>(c - '0');
        }
        if (has_length_ && n != content_length_) return fail(400);
        has_length_ = true;
        content_length_ = n;
      }
      break;
    case 17:
      if (HttpEqualsIgnoreCase(name, "transfer-encoding")) {
        int status = 0;
        ForEachToken(value, [&](absl::string_view t) {
          if (!HttpEqualsIgnoreCase(t, "chunked")) {
            status = 501;  // a coding twist does not implement
          } else if (chunked_ && status == 0) {
            status = 400;  // chunked twice
          }
          chunked_ = true;
        });
        te_seen_ = true;
        if (status != 0) return fail(status);
        if (!chunked_) return fail(400);
      }
      break;
    default:
      break;
  }
  return Event::kNeedMore;
}

HttpParser::Event HttpParser::endOfHead() {
  if (minor_ == 1 && hosts_ != 1) return fail(400);  // RFC 9112 3.2
  // Both framings, or a transfer coding in HTTP/1.0: faulty framing
  // (request smuggling), RFC 9112 6.1 and 6.3.
  if (te_seen_ && (has_length_ || minor_ == 0)) return fail(400);
  keep_alive_ = minor_ == 1 ? !conn_close_ : (conn_keep_alive_ && !conn_close_);
  if (!chunked_ && content_length_ > limits_.max_body) return fail(413);
  fields_.clear();
  for (size_t i = 0; i + 1 < spans_.size(); i += 2) {
    fields_.push_back({view(spans_[i]), view(spans_[i + 1])});
  }
  remaining_ = content_length_;
  state_ = chunked_ ? State::kChunkSize : State::kBodyLength;
  return Event::kHead;
}

HttpParser::Event HttpParser::chunkSizeLine(absl::string_view line) {
  // chunk-size [ chunk-ext ]; extensions are ignored.
  size_t i = 0;
  uint64_t n = 0;
  while (i < line.size() && absl::ascii_isxdigit(line[i])) {
    if (i >= 15) return fail(413);
    const char c = line[i];
    n = n * 16 + static_cast<uint64_t>(absl::ascii_isdigit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
    ++i;
  }
  if (i == 0) return fail(400);
  for (size_t j = i; j < line.size(); ++j) {
    const unsigned char c = static_cast<unsigned char>(line[j]);
    if (c != '\t' && (c < 0x20 || c == 0x7f)) return fail(400);
  }
  if (i < line.size()) {
    absl::string_view ext = TrimOws(line.substr(i));
    if (!ext.empty() && ext[0] != ';') return fail(400);
  }
  if (n == 0) {
    state_ = State::kTrailers;
    return Event::kNeedMore;
  }
  body_seen_ += n;
  if (body_seen_ > limits_.max_body) return fail(413);
  remaining_ = n;
  state_ = State::kChunkData;
  return Event::kNeedMore;
}

}  // namespace twist
