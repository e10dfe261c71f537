// The HTTP server protocol through an in-memory transport and a fake clock:
// every status, keep-alive and close for HTTP/1.0 and 1.1, pipelining,
// bodies split at every byte, 100-continue, HEAD, streaming, the keep-alive
// timeout and the resource tree. Over real sockets: http_loopback_test.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "framework/string_transport.h"
#include "framework/task_clock.h"
#include "gtest/gtest.h"
#include "protocols/http.h"
#include "tests/http_responses.h"

namespace twist {
namespace {

using testing::HttpResponse;
using testing::ParseResponses;

// Answers every method with "METHOD path postpath|body".
class EchoLeaf : public Resource {
 public:
  bool isLeaf() const override { return true; }
  void render(Request& request) override {
    request.setHeader("Content-Type", "text/plain");
    request.write(absl::StrCat(request.method(), " ", request.path(), " ", request.postpath(),
                               "|", request.content()));
    request.finish();
  }
};

// Keeps its requests unfinished: the test finishes them.
class LaterLeaf : public Resource {
 public:
  bool isLeaf() const override { return true; }
  void render_GET(Request& request) override {
    pending.push_back(&request);
    request.notifyFinish([this](const absl::Status& s) { results.push_back(s); });
  }
  std::vector<Request*> pending;
  std::vector<absl::Status> results;
};

class Hello : public Resource {
 public:
  void render_GET(Request& request) override {
    request.setHeader("Content-Type", "text/plain");
    request.write("Hello, World");
    request.finish();
  }
};

class Args : public Resource {
 public:
  void render_GET(Request& request) override { render_POST(request); }
  void render_POST(Request& request) override {
    std::string out;
    for (const auto& [k, v] : request.args()) absl::StrAppend(&out, k, "=", v, ";");
    request.write(out);
    request.finish();
  }
  absl::string_view allowedMethods() const override { return "GET, HEAD, POST"; }
};

// Answers with the request's X-A header, or "-".
class HeaderLeaf : public Resource {
 public:
  bool isLeaf() const override { return true; }
  void render_GET(Request& request) override {
    request.write(request.getHeader("x-a").value_or("-"));
    request.finish();
  }
};

// Answers with what its arguments say: t= the Content-Type, b= the body,
// c= the status, x= an X-A header (each left alone when absent).
class VaryLeaf : public Resource {
 public:
  bool isLeaf() const override { return true; }
  void render_GET(Request& request) override {
    if (auto c = request.arg("c")) {
      int code = 0;
      if (absl::SimpleAtoi(*c, &code)) request.setResponseCode(code);
    }
    if (auto t = request.arg("t")) request.setHeader("Content-Type", *t);
    if (auto x = request.arg("x")) request.setHeader("X-A", *x);
    request.write(request.arg("b").value_or(""));
    request.finish();
  }
};

class HttpTest : public ::testing::Test {
 protected:
  HttpTest() {
    options_.limits.max_body = 1000;
    options_.keepalive_timeout = absl::Seconds(10);
    root_.putChild("", std::make_unique<Hello>());
    root_.putChild("echo", std::make_unique<EchoLeaf>());
    auto later = std::make_unique<LaterLeaf>();
    later_ = later.get();
    root_.putChild("later", std::move(later));
    root_.putChild("args", std::make_unique<Args>());
    root_.putChild("header", std::make_unique<HeaderLeaf>());
    root_.putChild("vary", std::make_unique<VaryLeaf>());
    site_ = std::make_unique<Site>(&clock_, &root_, options_);
    Connect();
  }
  ~HttpTest() override {
    if (!t_->disconnected()) t_->disconnect();
  }
  // A new connection (the old one, if any, is lost first).
  void Connect() {
    if (t_ != nullptr && !t_->disconnected()) t_->disconnect();
    t_ = std::make_unique<StringTransport>();
    proto_ = site_->buildProtocol(Address());
    t_->connect(proto_.get());
  }
  HttpChannel* channel() { return static_cast<HttpChannel*>(proto_.get()); }
  // Sends `request` whole and returns the responses it got.
  std::vector<HttpResponse> Roundtrip(absl::string_view request, std::vector<bool> head = {}) {
    t_->receive(request);
    return ParseResponses(t_->take(), head);
  }
  // The one response to `request`, which must close the connection.
  void ExpectClosingError(absl::string_view request, int code) {
    SCOPED_TRACE(absl::CHexEscape(request.substr(0, 200)));
    t_->receive(request);
    const std::string out = t_->take();
    std::vector<HttpResponse> r = ParseResponses(out);
    ASSERT_EQ(r.size(), 1u) << out;
    EXPECT_EQ(r[0].code, code);
    EXPECT_EQ(r[0].header("connection"), "close");
    EXPECT_TRUE(t_->disconnecting());
    EXPECT_FALSE(t_->aborted()) << "the answer is flushed, not dropped";
    t_->receive("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(t_->take(), "") << "nothing is answered after the error";
  }

  task::Clock clock_;
  HttpOptions options_;
  Resource root_;
  LaterLeaf* later_;
  std::unique_ptr<Site> site_;
  std::unique_ptr<StringTransport> t_;
  std::unique_ptr<Protocol> proto_;
};

TEST_F(HttpTest, HelloWorld) {
  t_->receive("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string out = t_->take();
  std::vector<HttpResponse> r = ParseResponses(out);
  ASSERT_EQ(r.size(), 1u) << out;
  EXPECT_EQ(r[0].code, 200);
  EXPECT_EQ(r[0].body, "Hello, World");
  EXPECT_EQ(r[0].header("content-type"), "text/plain");
  EXPECT_EQ(r[0].header("content-length"), "12");
  EXPECT_EQ(r[0].header("date").size(), 29u) << r[0].header("date");
  EXPECT_FALSE(r[0].has("connection"));
  EXPECT_FALSE(t_->disconnecting()) << "HTTP/1.1 is persistent by default";
  EXPECT_TRUE(t_->tcpNoDelay()) << "streamed pieces must not wait for a delayed ACK";
}

TEST_F(HttpTest, ErrorStatusesCloseTheConnection) {
  struct Case {
    std::string request;
    int code;
  };
  const std::string ok_line = "GET /echo/" + std::string(8192 - 19, 'a') + " HTTP/1.1";
  ASSERT_EQ(ok_line.size(), 8192u);
  std::string many_fields, big_fields;
  for (int i = 0; i < 101; ++i) absl::StrAppend(&many_fields, "X-", i, ": v\r\n");
  for (int i = 0; i < 33; ++i) absl::StrAppend(&big_fields, "X-", i, ": ", std::string(1000, 'v'), "\r\n");
  const std::vector<Case> cases = {
      {"GET /echo/" + std::string(8192 - 18, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
      {"GET /" + std::string(20000, 'a'), 414},  // detected before the line ends
      {"GET / HTTP/1.1\r\nHost: a\r\n" + many_fields + "\r\n", 431},
      {"GET / HTTP/1.1\r\nHost: a\r\n" + big_fields + "\r\n", 431},
      {"GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(40000, 'v'), 431},  // unfinished
      {"GET / HTTP/1.1\r\n\r\n", 400},                          // no Host
      {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},    // two
      {"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400},
      {"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET / HTTX/1.1\r\nHost: a\r\n\r\n", 400},
      {"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET foo HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},              // space before colon
      {"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400},    // obs-fold
      {"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 400},            // bare CR
      {"GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
      {"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", 400},
      {"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n", 413},
      {"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n", 413},
      {"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
       "1f4\r\n" + std::string(500, 'x') + "\r\n1f5\r\n", 413},
      {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
      {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 501},
      {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
      {"GET / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n", 417},
  };
  for (const Case& c : cases) {
    ExpectClosingError(c.request, c.code);
    Connect();
  }
  // The same when the head arrives in pieces: a head that arrives whole is
  // parsed where it lies in the input, one in pieces is gathered first.
  for (const Case& c : cases) {
    for (size_t split : {size_t{1}, c.request.size() / 2, c.request.size() - 1}) {
      SCOPED_TRACE(absl::StrCat("split at ", split));
      t_->receive(absl::string_view(c.request).substr(0, split));
      ExpectClosingError(absl::string_view(c.request).substr(split), c.code);
      Connect();
    }
  }
  // The limits themselves pass.
  EXPECT_EQ(Roundtrip(ok_line + "\r\nHost: a\r\n\r\n").at(0).code, 200);
  std::string hundred;
  for (int i = 0; i < 99; ++i) absl::StrAppend(&hundred, "X-", i, ": v\r\n");
  EXPECT_EQ(Roundtrip("GET / HTTP/1.1\r\nHost: a\r\n" + hundred + "\r\n").at(0).code, 200);
  EXPECT_FALSE(t_->disconnecting());
}

TEST_F(HttpTest, KeepAliveRules) {
  // 1.1: persistent unless Connection: close.
  EXPECT_EQ(Roundtrip("GET / HTTP/1.1\r\nHost: a\r\n\r\n").at(0).code, 200);
  EXPECT_FALSE(t_->disconnecting());
  std::vector<HttpResponse> r = Roundtrip("GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].header("connection"), "close");
  EXPECT_TRUE(t_->disconnecting());

  // 1.0: closed unless Connection: keep-alive.
  Connect();
  r = Roundtrip("GET / HTTP/1.0\r\n\r\n");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].body, "Hello, World");
  EXPECT_EQ(r[0].header("connection"), "close");
  EXPECT_TRUE(t_->disconnecting());

  Connect();
  r = Roundtrip("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].header("connection"), "keep-alive");
  EXPECT_FALSE(t_->disconnecting());
  r = Roundtrip("GET /echo HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].header("connection"), "close");
  EXPECT_TRUE(t_->disconnecting());
}

TEST_F(HttpTest, PipelinedRequestsAnsweredInOrderInOneWrite) {
  std::string in;
  for (int i = 0; i < 20; ++i) absl::StrAppend(&in, "GET /echo/", i, " HTTP/1.1\r\nHost: a\r\n\r\n");
  absl::StrAppend(&in, "POST /echo/last HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\nxyz");
  absl::StrAppend(&in, "GET /echo/never HTTP/1.1\r\nHost: a\r\n\r\n");
  std::vector<HttpResponse> r = Roundtrip(in);
  ASSERT_EQ(r.size(), 21u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(r[i].body, absl::StrCat("GET /echo/", i, " ", i, "|"));
  EXPECT_EQ(r[20].body, "POST /echo/last last|xyz");
  EXPECT_TRUE(t_->disconnecting());
  EXPECT_EQ(channel()->requestsStarted(), 21u) << "nothing after Connection: close";
}

TEST_F(HttpTest, PipelinedBehindAnUnfinishedResponseWaitsItsTurn) {
  t_->receive("GET /later HTTP/1.1\r\nHost: a\r\n\r\nGET /echo/2 HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(t_->value(), "") << "nothing is answered before the first request";
  EXPECT_EQ(t_->producerState(), StringTransport::ProducerState::kPaused)
      << "no more is read while a response is under way";
  EXPECT_GT(channel()->bufferedInput(), 0u);
  ASSERT_EQ(later_->pending.size(), 1u);
  Request* first = later_->pending[0];
  first->write("one");
  first->write("two");
  first->finish();
  EXPECT_EQ(later_->results.size(), 1u);
  clock_.advance(absl::ZeroDuration());  // the held request is parsed on the next turn
  std::vector<HttpResponse> r = ParseResponses(t_->take());
  ASSERT_EQ(r.size(), 2u);
  EXPECT_TRUE(r[0].chunked) << "written after render: chunked";
  EXPECT_EQ(r[0].body, "onetwo");
  EXPECT_EQ(r[1].body, "GET /echo/2 2|");
  EXPECT_EQ(t_->producerState(), StringTransport::ProducerState::kProducing);
  EXPECT_EQ(channel()->bufferedInput(), 0u);
}

TEST_F(HttpTest, StreamingToHttp10IsCloseDelimited) {
  t_->receive("GET /later HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  ASSERT_EQ(later_->pending.size(), 1u);
  later_->pending[0]->write("abc");
  later_->pending[0]->finish();
  const std::string out = t_->take();
  EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("Transfer-Encoding"), std::string::npos) << out;
  EXPECT_EQ(out.substr(out.size() - 5), "\r\nabc");
  EXPECT_TRUE(t_->disconnecting());
}

TEST_F(HttpTest, LostConnectionTellsTheUnfinishedRequest) {
  t_->receive("GET /later HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_EQ(later_->pending.size(), 1u);
  t_->disconnect(absl::UnavailableError("reset"));
  ASSERT_EQ(later_->results.size(), 1u);
  EXPECT_FALSE(later_->results[0].ok());
}

TEST_F(HttpTest, FinishAfterTheConnectionIsLostSchedulesNothing) {
  t_->receive("GET /later HTTP/1.1\r\nHost: a\r\n\r\nGET /echo/2 HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_EQ(later_->pending.size(), 1u);
  ASSERT_GT(channel()->bufferedInput(), 0u);
  t_->disconnect();
  const size_t calls = clock_.pendingCalls();
  later_->pending[0]->write("late");
  later_->pending[0]->finish();
  EXPECT_TRUE(later_->pending[0]->finished());
  EXPECT_EQ(clock_.pendingCalls(), calls) << "no parse of held input after connectionLost";
  clock_.advance(absl::ZeroDuration());
  EXPECT_EQ(t_->value(), "");
}

TEST_F(HttpTest, GetHeaderIsTheLastValueAsInTwisted) {
  std::vector<HttpResponse> r = Roundtrip(
      "GET /header HTTP/1.1\r\nHost: a\r\nX-A: one\r\nx-a: two\r\n\r\n"
      "GET /header HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].body, "two");
  EXPECT_EQ(r[1].body, "-");
}

// The same requests fed whole, a byte at a time and split at every byte
// give the same answers.
TEST_F(HttpTest, BodiesSplitAtEveryByte) {
  const std::string in =
      "POST /echo/c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n1\r\n,\r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n"
      "POST /echo/l HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world"
      "GET /echo/g HTTP/1.1\r\nHost: a\r\n\r\n";
  t_->receive(in);
  const std::string whole = t_->take();
  std::vector<HttpResponse> r = ParseResponses(whole);
  ASSERT_EQ(r.size(), 3u) << whole;
  EXPECT_EQ(r[0].body, "POST /echo/c c|hello,0123456789");
  EXPECT_EQ(r[1].body, "POST /echo/l l|hello world");
  EXPECT_EQ(r[2].body, "GET /echo/g g|");
  auto strip_dates = [](std::string s) {
    for (size_t p = s.find("Date: "); p != std::string::npos; p = s.find("Date: ", p + 1)) {
      s.replace(p + 6, 29, 29, '-');
    }
    return s;
  };
  for (size_t split = 1; split < in.size(); ++split) {
    Connect();
    t_->receive(in.substr(0, split));
    t_->receive(in.substr(split));
    ASSERT_EQ(strip_dates(t_->take()), strip_dates(whole)) << "split at " << split;
  }
  Connect();
  for (char c : in) t_->receive(std::string(1, c));
  EXPECT_EQ(strip_dates(t_->take()), strip_dates(whole)) << "a byte at a time";
}

TEST_F(HttpTest, ExpectContinue) {
  t_->receive("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(t_->take(), "HTTP/1.1 100 Continue\r\n\r\n");
  t_->receive("body");
  std::vector<HttpResponse> r = ParseResponses(t_->take());
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].body, "POST /echo |body");
  // Too large: 413 at once, and no 100.
  std::vector<HttpResponse> big = Roundtrip(
      "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n");
  ASSERT_EQ(big.size(), 1u);
  EXPECT_EQ(big[0].code, 413);
  EXPECT_TRUE(t_->disconnecting());
}

TEST_F(HttpTest, HeadSendsHeadersOnly) {
  t_->receive("HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
  const std::string out = t_->take();
  std::vector<HttpResponse> r = ParseResponses(out, {true, false});
  ASSERT_EQ(r.size(), 2u) << out;
  EXPECT_EQ(r[0].header("content-length"), "12") << "the length a GET would have";
  EXPECT_EQ(out.find("Hello, World"), out.rfind("Hello, World")) << "one body only: " << out;
  EXPECT_EQ(r[1].body, "Hello, World");
}

TEST_F(HttpTest, EachResponseHeadFollowsItsOwnRequest) {
  // Heads with a final length are reused while what they are built from
  // stays the same: every difference must still show, in any order.
  struct Case {
    std::string request;
    int code;
    std::string type, length, connection, x;
    bool head = false;
  };
  const std::vector<Case> cases = {
      {"GET /vary?t=a&b=xy HTTP/1.1\r\nHost: a\r\n\r\n", 200, "a", "2", "", ""},
      {"GET /vary?t=a&b=xy HTTP/1.1\r\nHost: a\r\n\r\n", 200, "a", "2", "", ""},
      {"GET /vary?t=b&b=xy HTTP/1.1\r\nHost: a\r\n\r\n", 200, "b", "2", "", ""},
      {"GET /vary?t=b&b=xyz HTTP/1.1\r\nHost: a\r\n\r\n", 200, "b", "3", "", ""},
      {"GET /vary?t=b&b=xyz&x=1 HTTP/1.1\r\nHost: a\r\n\r\n", 200, "b", "3", "", "1"},
      {"GET /vary?t=b&b=xyz&x=2 HTTP/1.1\r\nHost: a\r\n\r\n", 200, "b", "3", "", "2"},
      {"GET /vary?b=xyz HTTP/1.1\r\nHost: a\r\n\r\n", 200, "text/html", "3", "", ""},
      {"GET /vary?t=b&b=xyz&c=404 HTTP/1.1\r\nHost: a\r\n\r\n", 404, "b", "3", "", ""},
      {"HEAD /vary?t=b&b=xyz HTTP/1.1\r\nHost: a\r\n\r\n", 200, "b", "3", "", "", true},
      {"GET /vary?t=b&b=xyz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 200, "b", "3",
       "keep-alive", ""},
      {"GET /vary?t=b&b=xyz HTTP/1.1\r\nHost: a\r\n\r\n", 200, "b", "3", "", ""},
      {"GET /vary?t=b&b=xyz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 200, "b",
       "3", "close", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.request);
    std::vector<HttpResponse> r = Roundtrip(c.request, {c.head});
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].code, c.code);
    EXPECT_EQ(r[0].header("content-type"), c.type);
    EXPECT_EQ(r[0].header("content-length"), c.length);
    EXPECT_EQ(r[0].header("connection"), c.connection);
    EXPECT_EQ(r[0].header("x-a"), c.x);
    EXPECT_EQ(r[0].header("date").size(), 29u);
  }
}

TEST_F(HttpTest, ResourceTree) {
  std::vector<HttpResponse> r = Roundtrip(
      "GET /nothing HTTP/1.1\r\nHost: a\r\n\r\n"
      "DELETE / HTTP/1.1\r\nHost: a\r\n\r\n"
      "GET /args?a=1&b=x+y&c=%41%42&flag HTTP/1.1\r\nHost: a\r\n\r\n"
      "POST /args?q=1 HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\n"
      "Content-Length: 7\r\n\r\nz=%2F+1"
      "GET /%65cho/x%20y HTTP/1.1\r\nHost: a\r\n\r\n"
      "GET http://example.com/echo/abs?q HTTP/1.1\r\nHost: example.com\r\n\r\n"
      "PUT /args HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_EQ(r.size(), 7u);
  EXPECT_EQ(r[0].code, 404);
  EXPECT_EQ(r[1].code, 405);
  EXPECT_EQ(r[1].header("allow"), "GET, HEAD");
  EXPECT_EQ(r[2].body, "a=1;b=x y;c=AB;flag=;");
  EXPECT_EQ(r[3].body, "q=1;z=/ 1;");
  EXPECT_EQ(r[4].body, "GET /%65cho/x%20y x%20y|") << "segments decoded to find children";
  EXPECT_EQ(r[5].body, "GET /echo/abs abs|") << "absolute-form";
  EXPECT_EQ(r[6].code, 405);
  EXPECT_EQ(r[6].header("allow"), "GET, HEAD, POST");
  EXPECT_FALSE(t_->disconnecting());
}

TEST_F(HttpTest, KeepAliveTimeout) {
  Roundtrip("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  clock_.advance(absl::Seconds(9));
  t_->receive("GET / HTTP/1.1\r\nHost: a\r\n\r\n");  // activity restarts the wait
  clock_.advance(absl::Seconds(9));
  EXPECT_FALSE(t_->disconnecting());
  clock_.advance(absl::Seconds(1));
  EXPECT_TRUE(t_->disconnecting());
  EXPECT_EQ(ParseResponses(t_->take()).size(), 1u) << "closed without an answer";

  // Half a request when the time is up: 408.
  Connect();
  t_->receive("GET / HTTP/1.1\r\nHo");
  clock_.advance(absl::Seconds(10));
  std::vector<HttpResponse> r = ParseResponses(t_->take());
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].code, 408);
  EXPECT_TRUE(t_->disconnecting());

  // A close the client does not let flush is cut off after another timeout
  // or two.
  Connect();
  t_->receive("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(t_->disconnecting());
  clock_.advance(absl::Seconds(10));
  EXPECT_FALSE(t_->aborted());
  clock_.advance(absl::Seconds(10));
  EXPECT_TRUE(t_->aborted());

  // A response under way is not idle.
  Connect();
  t_->receive("GET /later HTTP/1.1\r\nHost: a\r\n\r\n");
  clock_.advance(absl::Seconds(25));
  EXPECT_FALSE(t_->disconnecting());
}

TEST_F(HttpTest, EmptyLinesBeforeARequestAreIgnored) {
  std::vector<HttpResponse> r = Roundtrip("\r\n\r\nGET / HTTP/1.1\nHost: a\n\n");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].code, 200) << "bare LF line ends are accepted";
}

}  // namespace
}  // namespace twist
