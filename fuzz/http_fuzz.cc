// Fuzz target for the HTTP server protocol (protocols/http.h): a Site on a
// StringTransport with a fake clock, fed the input split as the input
// itself decides, and a resource that answers each request now, later, or
// as a stream, as the input decides.
//
// Input: byte 0 chooses the mode (bit 0: a stream of valid requests built
// from the input, else raw bytes) and the limits (bit 1: small ones);
// bytes 1..8 are the handler's decisions, in turn per request; then pairs
// of (length, bytes): each piece is one read, or part of one structured
// request.
//
// Invariants:
// - no crash, leak or undefined behaviour (the sanitizers);
// - bounded memory: the channel holds at most two reads of unparsed input
//   (reading pauses while a response is under way), the parser at most its
//   limits, the body at most max_body;
// - every request the handler saw is answered exactly once, in order
//   (each answer names its sequence number), followed by at most one error
//   response, after which the connection is closing and nothing more is
//   answered; the output is whole HTTP/1.1 responses and nothing else;
// - the output does not depend on how the input was split (the whole input
//   in one read gives the same bytes, Date aside);
// - a stream of valid requests is answered all, with 200, and no error.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/string_transport.h"
#include "framework/task_clock.h"
#include "fuzz/fuzz_util.h"
#include "fuzz/targets.h"
#include "protocols/http.h"
#include "tests/http_responses.h"

namespace twist {
namespace fuzz {
namespace http {

namespace {

constexpr char kTarget[] = "http";

class Root : public Resource {
 public:
  explicit Root(std::vector<uint8_t> decisions) : decisions_(std::move(decisions)) {}
  bool isLeaf() const override { return true; }
  void render(Request& request) override {
    const int seq = ++calls;
    heads.push_back(request.method() == "HEAD");
    const uint8_t d = decisions_.empty() ? 0 : decisions_[static_cast<size_t>(seq) % decisions_.size()];
    const std::string body = absl::StrCat("seq=", seq, ";", request.content().size(), ";");
    switch (d % 4) {
      case 0:  // answered at once
        request.setHeader("Content-Type", "text/plain");
        request.write(body);
        request.finish();
        break;
      case 1:  // answered later, whole
        later_.push_back({&request, body, false});
        break;
      case 2:  // begun now, finished later (chunked)
        request.write(body);
        later_.push_back({&request, "", true});
        break;
      default:  // a Content-Length of its own, written in two pieces
        request.setHeader("Content-Length", absl::StrCat(body.size()));
        request.write(body.substr(0, 3));
        request.write(body.substr(3));
        request.finish();
        break;
    }
  }
  // Finishes what was left for later; true if there was any.
  bool finishLater() {
    if (later_.empty()) return false;
    std::vector<Later> now;
    now.swap(later_);
    for (Later& l : now) {
      l.request->write(l.body);
      l.request->finish();
    }
    return true;
  }
  int calls = 0;
  std::vector<bool> heads;

 private:
  struct Later {
    Request* request;
    std::string body;
    bool streaming;
  };
  std::vector<uint8_t> decisions_;
  std::vector<Later> later_;
};

struct Outcome {
  std::string out;
  int calls = 0;
  std::vector<bool> heads;
  bool closing = false;
};

// Runs the reads through a new connection, as a reactor would: nothing is
// delivered while the channel has paused reading.
Outcome Run(const std::vector<std::string>& reads, const std::vector<uint8_t>& decisions,
            const HttpOptions& options) {
  task::Clock clock;
  Root root(decisions);
  Site site(&clock, &root, options);
  StringTransport t;
  std::unique_ptr<Protocol> p = site.buildProtocol(Address());
  auto* channel = static_cast<HttpChannel*>(p.get());
  t.connect(p.get());
  std::vector<std::string> held;  // reads the paused channel has not taken
  size_t next_held = 0;
  size_t max_read = 1;
  for (const std::string& r : reads) max_read = std::max(max_read, r.size());
  const HttpLimits& lim = options.limits;
  auto check_memory = [&] {
    TWIST_FUZZ_CHECK(kTarget, channel->bufferedInput() <= 2 * max_read,
                     absl::StrCat(channel->bufferedInput(), " bytes held, reads of ", max_read));
  };
  auto deliver = [&] {
    // Up to the settling of every pending answer, bounded.
    for (int round = 0; round < 100000; ++round) {
      bool moved = false;
      while (next_held < held.size() && t.producerState() != StringTransport::ProducerState::kPaused &&
             !t.disconnecting()) {
        t.receive(held[next_held++]);
        check_memory();
        moved = true;
      }
      if (root.finishLater()) moved = true;
      clock.advance(absl::ZeroDuration());
      if (!moved) return;
    }
    Fail(kTarget, "the exchange does not settle");
  };
  for (const std::string& r : reads) {
    held.push_back(r);
    deliver();
  }
  deliver();
  (void)lim;
  Outcome o;
  o.out = t.value();
  o.calls = root.calls;
  o.heads = root.heads;
  o.closing = t.disconnecting();
  t.disconnect();
  return o;
}

std::string WithoutDates(std::string s) {
  for (size_t p = s.find("\r\nDate: "); p != std::string::npos; p = s.find("\r\nDate: ", p + 1)) {
    s.replace(p + 8, 29, 29, '-');
  }
  return s;
}

void CheckAnswers(const Outcome& o, bool all_valid) {
  std::string rest;
  std::vector<testing::HttpResponse> r = testing::ParseResponses(o.out, o.heads, &rest);
  std::vector<testing::HttpResponse> finals;
  for (auto& x : r) {
    if (x.code >= 200) finals.push_back(std::move(x));
  }
  const size_t calls = static_cast<size_t>(o.calls);
  TWIST_FUZZ_CHECK(kTarget, finals.size() == calls || finals.size() == calls + 1,
                   absl::StrCat(finals.size(), " answers to ", calls, " requests: ", Show(o.out)));
  for (size_t i = 0; i < calls; ++i) {
    TWIST_FUZZ_CHECK(kTarget, finals[i].code == 200,
                     absl::StrCat("answer ", i + 1, " is ", finals[i].code, ": ", Show(o.out)));
    if (!o.heads[i]) {
      TWIST_FUZZ_CHECK(kTarget, absl::StartsWith(finals[i].body, absl::StrCat("seq=", i + 1, ";")),
                       absl::StrCat("answer ", i + 1, " out of order: ", Show(finals[i].body)));
    }
  }
  if (finals.size() == calls + 1) {
    const int code = finals.back().code;
    TWIST_FUZZ_CHECK(kTarget, code >= 400 && code < 600, absl::StrCat("last answer ", code));
    TWIST_FUZZ_CHECK(kTarget, finals.back().header("connection") == "close", "error without close");
    TWIST_FUZZ_CHECK(kTarget, o.closing, "error and the connection stays open");
    TWIST_FUZZ_CHECK(kTarget, !all_valid, absl::StrCat("valid requests got ", code, ": ", Show(o.out)));
  }
  // Bytes after the last response: only a close-delimited body (HTTP/1.0
  // streaming) leaves none; anything unparsed is a defect.
  TWIST_FUZZ_CHECK(kTarget, rest.empty(), absl::StrCat("unparsed output: ", Show(rest)));
}

// A valid request built from the input.
std::string MakeRequest(Input& in, int index, bool last) {
  static const char* kMethods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"};
  const uint8_t b = in.byte();
  const char* method = kMethods[b % 6];
  std::string path = absl::StrCat("/p", index);
  for (char c : in.bytes(in.byte() % 8)) {
    path.push_back("abcXYZ019-._~%/"[static_cast<uint8_t>(c) % 14]);
  }
  std::string req = absl::StrCat(method, " ", path, (b & 0x40) ? "?q=1&r" : "", " HTTP/1.1\r\n");
  if (b & 0x80) req = "\r\n" + req;  // an empty line before a request is ignored
  absl::StrAppend(&req, "Host: h", index, "\r\n");
  const int extra = in.byte() % 4;
  for (int i = 0; i < extra; ++i) absl::StrAppend(&req, "X-", i, ":  v", in.byte(), " \r\n");
  const uint8_t body_kind = in.byte() % 3;
  const size_t n = in.byte() % 40;
  std::string body(n, 'b');
  if (last && (b & 0x20)) req += "Connection: close\r\n";
  if (body_kind == 1) {
    absl::StrAppend(&req, "Content-Length: ", n, "\r\n\r\n", body);
  } else if (body_kind == 2) {
    absl::StrAppend(&req, "Transfer-Encoding: chunked\r\n\r\n");
    size_t left = n;
    while (left > 0) {
      const size_t c = std::min<size_t>(left, 1 + in.byte() % 16);
      absl::StrAppend(&req, absl::Hex(c), ";x=y\r\n", std::string(c, 'c'), "\r\n");
      left -= c;
    }
    req += "0\r\n\r\n";
  } else {
    req += "\r\n";
  }
  return req;
}

}  // namespace

int FuzzOne(const uint8_t* data, size_t size) {
  Input in(data, size);
  const uint8_t mode = in.byte();
  std::vector<uint8_t> decisions;
  for (absl::string_view d = in.bytes(8); !d.empty(); d.remove_prefix(1)) {
    decisions.push_back(static_cast<uint8_t>(d[0]));
  }
  HttpOptions options;
  if (mode & 2) {
    options.limits.max_request_line = 64;
    options.limits.max_header_bytes = 128;
    options.limits.max_headers = 4;
    options.limits.max_body = 50;
  }
  const bool structured = mode & 1;
  int count = 0;
  std::string all;
  std::vector<std::string> reads;
  if (structured) {
    // Valid requests, then split by the rest of the input.
    count = 1 + in.byte() % 8;
    for (int i = 0; i < count; ++i) all += MakeRequest(in, i, i == count - 1);
    size_t at = 0;
    while (at < all.size()) {
      const size_t n = 1 + in.byte() % 64;
      reads.push_back(all.substr(at, n));
      at += n;
    }
    options.limits.max_body = 1 << 20;
    options.limits.max_headers = 100;
    options.limits.max_header_bytes = 32768;
    options.limits.max_request_line = 8192;
  } else {
    while (!in.empty()) {
      const size_t n = in.byte();
      reads.emplace_back(in.bytes(n));
      all += reads.back();
    }
  }
  const Outcome split = Run(reads, decisions, options);
  CheckAnswers(split, structured);
  const Outcome whole = Run({all}, decisions, options);
  CheckAnswers(whole, structured);
  TWIST_FUZZ_CHECK(kTarget, WithoutDates(split.out) == WithoutDates(whole.out),
                   absl::StrCat("split: ", Show(split.out), " whole: ", Show(whole.out)));
  if (structured) {
    TWIST_FUZZ_CHECK(kTarget, split.calls == count && whole.calls == count,
                     absl::StrCat(count, " requests sent, ", split.calls, " and ", whole.calls,
                                  " handled: ", Show(all)));
  }
  return 0;
}

}  // namespace http
}  // namespace fuzz
}  // namespace twist
