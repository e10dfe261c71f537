// Static files (protocols/http_static.h) on an in-memory transport: content
// types, Last-Modified and If-Modified-Since, HEAD, index.html, and every
// way out of the directory refused before anything outside it is opened.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "framework/string_transport.h"
#include "framework/task_clock.h"
#include "gtest/gtest.h"
#include "protocols/http.h"
#include "protocols/http_static.h"
#include "tests/http_responses.h"

namespace twist {
namespace {

using testing::HttpResponse;
using testing::ParseResponses;

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream f(path, std::ios::binary);
  f << content;
  ASSERT_TRUE(f.good()) << path;
}

class HttpStaticTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    base_ = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/http_static_XXXXXX");
    ASSERT_NE(mkdtemp(base_.data()), nullptr);
    root_ = base_ + "/www";
    ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir((root_ + "/sub").c_str(), 0755), 0);
    ASSERT_EQ(mkdir((root_ + "/noindex").c_str(), 0755), 0);
    WriteFile(root_ + "/a.txt", "text file\n");
    WriteFile(root_ + "/page.html", "<p>hi</p>");
    WriteFile(root_ + "/sub/index.html", "<p>index</p>");
    WriteFile(root_ + "/sub/data.bin", std::string(100000, 'd'));
    WriteFile(root_ + "/sp ace.css", "a{}");
    WriteFile(base_ + "/secret", "SECRET");
    ASSERT_EQ(symlink((base_ + "/secret").c_str(), (root_ + "/link").c_str()), 0);
    ASSERT_EQ(symlink(base_.c_str(), (root_ + "/dirlink").c_str()), 0);
    ASSERT_EQ(mkfifo((root_ + "/fifo").c_str(), 0644), 0);
    absl::StatusOr<std::unique_ptr<File>> f = File::Open(root_);
    ASSERT_TRUE(f.ok()) << f.status();
    file_ = std::move(*f);
    site_ = std::make_unique<Site>(&clock_, file_.get());
  }
  void TearDown() override { std::system(("rm -rf '" + base_ + "'").c_str()); }

  // One request on a new connection; its one response.
  HttpResponse Get(const std::string& target, const std::string& extra = "",
                   const std::string& method = "GET") {
    StringTransport t;
    std::unique_ptr<Protocol> p = site_->buildProtocol(Address());
    t.connect(p.get());
    t.receive(absl::StrCat(method, " ", target, " HTTP/1.1\r\nHost: a\r\n", extra, "\r\n"));
    std::vector<HttpResponse> r = ParseResponses(t.value(), {method == "HEAD"});
    t.disconnect();
    EXPECT_EQ(r.size(), 1u) << target << ": " << t.value().substr(0, 300);
    return r.empty() ? HttpResponse() : r[0];
  }

  task::Clock clock_;
  std::string base_, root_;
  std::unique_ptr<File> file_;
  std::unique_ptr<Site> site_;
};

TEST_F(HttpStaticTest, ServesFilesWithTypesAndDates) {
  HttpResponse r = Get("/a.txt");
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "text file\n");
  EXPECT_EQ(r.header("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(r.header("content-length"), "10");
  const std::string modified = r.header("last-modified");
  EXPECT_EQ(modified.size(), 29u) << modified;
  EXPECT_EQ(Get("/page.html").header("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(Get("/sp%20ace.css").header("content-type"), "text/css");
  r = Get("/sub/data.bin");
  EXPECT_EQ(r.body, std::string(100000, 'd')) << "streamed in chunks by a producer";
  EXPECT_EQ(r.header("content-type"), "application/octet-stream");
  EXPECT_EQ(Get("/sub/").body, "<p>index</p>");
  // A directory without its slash is redirected to it, as Twisted's File
  // does, so that the page's relative links resolve inside it.
  r = Get("/sub");
  EXPECT_EQ(r.code, 301);
  EXPECT_EQ(r.header("location"), "/sub/");
  EXPECT_EQ(Get("/sub?x=1&y").header("location"), "/sub/?x=1&y");
  EXPECT_EQ(Get("/noindex").code, 301);
  EXPECT_EQ(Get("/noindex/").code, 403) << "no listings";
  EXPECT_EQ(Get("/fifo").code, 403) << "regular files only";
  EXPECT_EQ(Get("/missing").code, 404);

  // If-Modified-Since: 304 when not older than the file, 200 otherwise.
  r = Get("/a.txt", "If-Modified-Since: " + modified + "\r\n");
  EXPECT_EQ(r.code, 304);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(Get("/a.txt", "If-Modified-Since: Thu, 01 Jan 1970 00:00:01 GMT\r\n").code, 200);
  EXPECT_EQ(Get("/a.txt", "If-Modified-Since: yesterday\r\n").code, 200);

  r = Get("/sub/data.bin", "", "HEAD");
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.header("content-length"), "100000");
  EXPECT_EQ(r.body, "");
}

TEST_F(HttpStaticTest, NothingOutsideTheDirectory) {
  for (const char* target :
       {"/../secret", "/%2e%2e/secret", "/%2E%2E/secret", "/sub/../../secret", "/sub/%2e%2e/a.txt",
        "/..%2fsecret", "/sub/..%2F..%2Fsecret", "/.%2e/secret", "/%2e%2e%2fsecret", "/./a.txt",
        "/a.txt%00", "/%"}) {
    HttpResponse r = Get(target);
    EXPECT_TRUE(r.code == 404 || r.code == 403) << target << " gave " << r.code;
    EXPECT_EQ(r.body.find("SECRET"), std::string::npos) << target;
  }
  EXPECT_EQ(Get("/link").code, 403) << "symlinks are not followed";
  EXPECT_EQ(Get("/dirlink/secret").code, 403);
  EXPECT_EQ(Get("/dirlink/www/a.txt").code, 403);
}

}  // namespace
}  // namespace twist
