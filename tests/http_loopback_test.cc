// The HTTP server over real loopback sockets on every poller: a client that
// reads slowly never makes the server queue more than the transport's high
// water mark plus one chunk (streamed chunked responses and large static
// files), and pipelined requests over a real connection.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "framework/reactor.h"
#include "gtest/gtest.h"
#include "protocols/http.h"
#include "protocols/http_static.h"
#include "tests/http_responses.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using testing::BlockingClient;
using testing::kSmallBuffers;
using testing::ParseResponses;
using testing::PollerTest;

constexpr size_t kChunk = 16 * 1024;
constexpr size_t kHighWater = 64 * 1024;  // the transport's default

// Streams `total` bytes of a pattern, kChunk per write, as a push producer.
class Streamer : public Resource {
 public:
  explicit Streamer(size_t total) : data_(testing::Pattern(total)) {}
  bool isLeaf() const override { return true; }
  void render_GET(Request& request) override {
    auto p = std::make_unique<Producing>(this, &request);
    Producing* raw = p.get();
    request.keep(std::move(p));
    request.registerProducer(raw, /*streaming=*/true);
    raw->resumeProducing();
  }
  const std::string& data() const { return data_; }
  size_t sent = 0;
  size_t max_buffered = 0;
  int pauses = 0;

 private:
  class Producing : public Producer {
   public:
    Producing(Streamer* s, Request* r) : s_(s), r_(r) {}
    void pauseProducing() override {
      paused_ = true;
      ++s_->pauses;
    }
    void resumeProducing() override {
      paused_ = false;
      if (busy_ || stopped_) return;
      busy_ = true;
      while (!paused_ && !stopped_ && s_->sent < s_->data_.size()) {
        const size_t n = std::min(kChunk, s_->data_.size() - s_->sent);
        r_->write(absl::string_view(s_->data_).substr(s_->sent, n));
        s_->sent += n;
        s_->max_buffered = std::max(s_->max_buffered, r_->transport()->bufferedBytes());
      }
      busy_ = false;
      if (s_->sent == s_->data_.size() && !stopped_) {
        stopped_ = true;
        r_->unregisterProducer();
        r_->finish();
      }
    }
    void stopProducing() override { stopped_ = true; }

   private:
    Streamer* s_;
    Request* r_;
    bool paused_ = false, busy_ = false, stopped_ = false;
  };
  std::string data_;
};

// Remembers the last connection it made, to look at its transport.
class WatchedSite : public Site {
 public:
  using Site::Site;
  std::unique_ptr<Protocol> buildProtocol(const Address& addr) override {
    std::unique_ptr<Protocol> p = Site::buildProtocol(addr);
    last = static_cast<HttpChannel*>(p.get());
    return p;
  }
  HttpChannel* last = nullptr;
};

using HttpLoopbackTest = PollerTest;

// Sends `request` (if any) and reads to the end beside the reactor; the
// responses read.
std::vector<testing::HttpResponse> ResponsesBeside(Reactor& reactor, BlockingClient& c,
                                                   absl::string_view request = "") {
  std::string got;
  EXPECT_TRUE(testing::RunBeside(reactor, [&] {
    ASSERT_TRUE(c.SendAll(request).ok());
    absl::StatusOr<std::string> r = c.ReadToEof();
    ASSERT_TRUE(r.ok()) << r.status();
    got = std::move(*r);
  }));
  return ParseResponses(got);
}

TEST_P(HttpLoopbackTest, SlowReaderOfAStreamedResponse) {
  constexpr size_t kTotal = 8 << 20;
  Streamer root(kTotal);
  std::unique_ptr<Site> site;
  std::unique_ptr<Reactor> reactor = NewReactor();
  site = std::make_unique<Site>(reactor.get(), &root);
  const Address addr = Listen(site.get(), kSmallBuffers);
  BlockingClient c = Connect(addr, kSmallBuffers);
  ASSERT_TRUE(c.SendAll("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").ok());
  // The client reads nothing: the kernel's buffers fill, then the server's
  // queue reaches its high water mark and the producer is paused.
  ASSERT_TRUE(testing::RunUntil(*reactor, [&] { return root.pauses > 0; }));
  Spin(*reactor, 50);
  EXPECT_LT(root.sent, kTotal / 4) << "produced without the client reading";
  EXPECT_LE(root.max_buffered, kHighWater + kChunk + 64);
  std::vector<testing::HttpResponse> r = ResponsesBeside(*reactor, c);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_TRUE(r[0].chunked);
  EXPECT_TRUE(r[0].body == root.data()) << "body of " << r[0].body.size() << " bytes differs";
  EXPECT_GT(root.pauses, 1) << "paused and resumed as the client read";
  EXPECT_LE(root.max_buffered, kHighWater + kChunk + 64);
}

TEST_P(HttpLoopbackTest, SlowReaderOfALargeFile) {
  testing::SocketDir dir;  // a temporary directory, removed with its files
  const std::string content = testing::Pattern(8 << 20, 7);
  {
    std::ofstream f(dir.path("big.bin"), std::ios::binary);
    f << content;
  }
  absl::StatusOr<std::unique_ptr<File>> files = File::Open(dir.path(""));
  ASSERT_TRUE(files.ok()) << files.status();
  std::unique_ptr<WatchedSite> site;
  std::unique_ptr<Reactor> reactor = NewReactor();
  site = std::make_unique<WatchedSite>(reactor.get(), files->get());
  const Address addr = Listen(site.get(), kSmallBuffers);
  BlockingClient c = Connect(addr, kSmallBuffers);
  ASSERT_TRUE(c.SendAll("GET /big.bin HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").ok());
  size_t max_buffered = 0;
  ASSERT_TRUE(testing::RunUntil(*reactor, [&] {
    if (site->last == nullptr) return false;
    max_buffered = std::max(max_buffered, site->last->transport()->bufferedBytes());
    return max_buffered > kHighWater;
  }));
  for (int i = 0; i < 50; ++i) {
    Spin(*reactor, 1);
    max_buffered = std::max(max_buffered, site->last->transport()->bufferedBytes());
  }
  EXPECT_LE(max_buffered, kHighWater + 64 * 1024) << "a file chunk past the high water mark at most";
  std::vector<testing::HttpResponse> r = ResponsesBeside(*reactor, c);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].header("content-length"), absl::StrCat(content.size()));
  EXPECT_TRUE(r[0].body == content) << "body of " << r[0].body.size() << " bytes differs";
}

class Hello : public Resource {
 public:
  bool isLeaf() const override { return true; }
  void render_GET(Request& request) override {
    request.setHeader("Content-Type", "text/plain");
    request.write(absl::StrCat("Hello ", request.path()));
    request.finish();
  }
};

TEST_P(HttpLoopbackTest, PipelinedOverARealConnection) {
  Hello root;
  std::unique_ptr<Site> site;
  std::unique_ptr<Reactor> reactor = NewReactor();
  site = std::make_unique<Site>(reactor.get(), &root);
  const Address addr = Listen(site.get());
  BlockingClient c = Connect(addr);
  std::string in;
  constexpr int kRequests = 500;
  for (int i = 0; i < kRequests; ++i) absl::StrAppend(&in, "GET /", i, " HTTP/1.1\r\nHost: a\r\n\r\n");
  absl::StrAppend(&in, "GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  std::vector<testing::HttpResponse> r = ResponsesBeside(*reactor, c, in);
  ASSERT_EQ(r.size(), static_cast<size_t>(kRequests + 1));
  for (int i = 0; i < kRequests; ++i) EXPECT_EQ(r[i].body, absl::StrCat("Hello /", i));
  EXPECT_EQ(r[kRequests].body, "Hello /last");
}

INSTANTIATE_TEST_SUITE_P(AllPollers, HttpLoopbackTest, ::testing::ValuesIn(PollerNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace twist
