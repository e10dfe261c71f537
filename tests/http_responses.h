#ifndef TWIST_TESTS_HTTP_RESPONSES_H_
#define TWIST_TESTS_HTTP_RESPONSES_H_

// Reads HTTP/1.1 responses back out of what a server wrote, for the tests:
// status, headers (names lowercased), and the body framed by Content-Length,
// chunked coding, or the end of the data.

#include <map>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace twist {
namespace testing {

struct HttpResponse {
  int code = 0;
  std::map<std::string, std::string> headers;
  std::string body;
  bool chunked = false;
  bool has(const std::string& name) const { return headers.count(name) > 0; }
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

/// The responses in `data`, in order. `head[i]` says the i-th final
/// response answers a HEAD (no body whatever its framing). Stops at the
/// first response that is incomplete or malformed; `*rest` gets what is
/// left unparsed.
inline std::vector<HttpResponse> ParseResponses(absl::string_view data,
                                                const std::vector<bool>& head = {},
                                                std::string* rest = nullptr) {
  std::vector<HttpResponse> out;
  size_t finals = 0;
  while (!data.empty()) {
    const size_t end = data.find("\r\n\r\n");
    if (end == absl::string_view::npos) break;
    std::vector<absl::string_view> lines =
        absl::StrSplit(data.substr(0, end), "\r\n");
    HttpResponse r;
    if (lines.empty() || lines[0].size() < 12 || lines[0].substr(0, 9) != "HTTP/1.1 " ||
        !absl::SimpleAtoi(lines[0].substr(9, 3), &r.code)) {
      break;
    }
    for (size_t i = 1; i < lines.size(); ++i) {
      const size_t colon = lines[i].find(':');
      if (colon == absl::string_view::npos) break;
      r.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
          std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    }
    absl::string_view body = data.substr(end + 4);
    const bool informational = r.code >= 100 && r.code < 200;
    const bool is_head = !informational && finals < head.size() && head[finals];
    if (informational || is_head || r.code == 204 || r.code == 304) {
      data = body;
    } else if (r.has("content-length")) {
      size_t n = 0;
      if (!absl::SimpleAtoi(r.header("content-length"), &n) || body.size() < n) break;
      r.body = std::string(body.substr(0, n));
      data = body.substr(n);
    } else if (r.header("transfer-encoding") == "chunked") {
      r.chunked = true;
      bool done = false, bad = false;
      while (true) {
        const size_t eol = body.find("\r\n");
        if (eol == absl::string_view::npos) { bad = true; break; }
        size_t n = 0;
        if (!absl::SimpleHexAtoi(body.substr(0, eol), &n)) { bad = true; break; }
        body.remove_prefix(eol + 2);
        if (n == 0) {
          if (body.substr(0, 2) != "\r\n") { bad = true; break; }
          body.remove_prefix(2);
          done = true;
          break;
        }
        if (body.size() < n + 2) { bad = true; break; }
        r.body.append(body.data(), n);
        body.remove_prefix(n + 2);
      }
      if (bad || !done) break;
      data = body;
    } else {
      r.body = std::string(body);  // to the close
      data = {};
    }
    if (!informational) ++finals;
    out.push_back(std::move(r));
  }
  if (rest != nullptr) *rest = std::string(data);
  return out;
}

}  // namespace testing
}  // namespace twist

#endif  // TWIST_TESTS_HTTP_RESPONSES_H_
