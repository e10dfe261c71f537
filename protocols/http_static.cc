#include "protocols/http_static.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace twist {

namespace {

constexpr size_t kChunk = 64 * 1024;

// Sends the rest of a file, kChunk per read, while the client keeps up.
class FileProducer : public Producer {
 public:
  FileProducer(Request* request, int fd, uint64_t left)
      : request_(request), fd_(fd), left_(left) {}
  ~FileProducer() override { closeFile(); }

  void pauseProducing() override { paused_ = true; }
  void resumeProducing() override {
    paused_ = false;
    if (producing_ || fd_ < 0) return;
    producing_ = true;
    static thread_local char buf[kChunk];
    while (!paused_ && fd_ >= 0 && left_ > 0) {
      const ssize_t n = ::read(fd_, buf, static_cast<size_t>(std::min<uint64_t>(kChunk, left_)));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        // The file shrank or failed under us: the length sent cannot be
        // kept, so the connection is cut.
        closeFile();
        request_->transport()->abortConnection();
        producing_ = false;
        return;
      }
      left_ -= static_cast<uint64_t>(n);
      request_->write(absl::string_view(buf, static_cast<size_t>(n)));
    }
    producing_ = false;
    if (left_ == 0 && fd_ >= 0) {
      closeFile();
      request_->unregisterProducer();
      request_->finish();
    }
  }
  void stopProducing() override { closeFile(); }

 private:
  void closeFile() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  Request* request_;
  int fd_;
  uint64_t left_;
  bool paused_ = false;
  bool producing_ = false;
};

// -1 when the value is not an HTTP-date twist reads (IMF-fixdate only).
int64_t ParseHttpDate(absl::string_view value) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime("%a, %d %b %Y %H:%M:%S GMT", std::string(value), &t, &err)) return -1;
  return absl::ToUnixSeconds(t);
}

}  // namespace

std::string HttpDate(int64_t unix_seconds) {
  const time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  const size_t n = strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return std::string(buf, n);
}

absl::string_view ContentTypeFor(absl::string_view name) {
  static constexpr std::pair<const char*, const char*> kTypes[] = {
      {"html", "text/html; charset=utf-8"}, {"htm", "text/html; charset=utf-8"},
      {"txt", "text/plain; charset=utf-8"}, {"css", "text/css"},
      {"js", "text/javascript"},            {"mjs", "text/javascript"},
      {"json", "application/json"},         {"xml", "application/xml"},
      {"png", "image/png"},                 {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},               {"gif", "image/gif"},
      {"svg", "image/svg+xml"},             {"ico", "image/vnd.microsoft.icon"},
      {"webp", "image/webp"},               {"pdf", "application/pdf"},
      {"wasm", "application/wasm"},         {"woff2", "font/woff2"},
      {"woff", "font/woff"},                {"mp4", "video/mp4"},
      {"mp3", "audio/mpeg"},                {"zip", "application/zip"},
      {"gz", "application/gzip"},           {"tar", "application/x-tar"},
      {"csv", "text/csv"},                  {"md", "text/markdown"},
  };
  const size_t dot = name.rfind('.');
  if (dot != absl::string_view::npos) {
    const absl::string_view ext = name.substr(dot + 1);
    for (const auto& [e, type] : kTypes) {
      if (absl::EqualsIgnoreCase(ext, e)) return type;
    }
  }
  return "application/octet-stream";
}

absl::StatusOr<std::unique_ptr<File>> File::Open(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot open directory ", dir, ": ", strerror(errno)));
  }
  return std::unique_ptr<File>(new File(fd));
}

File::~File() { ::close(dir_fd_); }

void File::render_GET(Request& request) {
  // Walk the segments below this resource, never following a symlink.
  absl::string_view rest = request.postpath();
  int dir = dir_fd_;
  int fd = -1;
  std::string seg;
  absl::string_view name;
  auto fail = [&](int code) {
    if (dir != dir_fd_) ::close(dir);
    if (fd >= 0) ::close(fd);
    ErrorPage(request, code);
  };
  auto status_for = [](int err) { return err == ELOOP || err == EACCES || err == EPERM ? 403 : 404; };
  while (true) {
    const size_t slash = rest.find('/');
    absl::string_view raw = rest.substr(0, slash);
    const bool last = slash == absl::string_view::npos;
    rest = last ? absl::string_view() : rest.substr(slash + 1);
    if (!raw.empty()) {
      if (!PercentDecode(raw, &seg) || seg == "." || seg == ".." ||
          seg.find('/') != std::string::npos || seg.find('\0') != std::string::npos) {
        return fail(404);
      }
      const int next = ::openat(dir, seg.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
      if (next < 0) return fail(status_for(errno));
      if (dir != dir_fd_) ::close(dir);
      dir = next;
      name = raw;
    }
    if (last) break;
  }
  fd = dir == dir_fd_ ? ::openat(dir_fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : dir;
  dir = dir_fd_;
  if (fd < 0) return fail(404);
  struct stat st;
  if (::fstat(fd, &st) != 0) return fail(404);
  if (S_ISDIR(st.st_mode)) {
    if (!absl::EndsWith(request.path(), "/")) {
      // A directory's page is served at its name with a slash, as
      // Twisted's File redirects (302 there; 301 here, as nginx, see
      // docs/design.md): its relative links resolve below the directory.
      ::close(fd);
      absl::string_view uri = request.uri();
      const size_t query = uri.find('?');
      request.setResponseCode(301);
      request.setHeader("Location", absl::StrCat(request.path(), "/",
                                                 query == absl::string_view::npos
                                                     ? absl::string_view()
                                                     : uri.substr(query)));
      request.finish();
      return;
    }
    const int index = ::openat(fd, "index.html", O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    ::close(fd);
    fd = index;
    if (fd < 0 || ::fstat(fd, &st) != 0) return fail(403);  // no listings
    name = "index.html";
  }
  if (!S_ISREG(st.st_mode)) return fail(403);
  const int64_t mtime = static_cast<int64_t>(st.st_mtime);
  request.setHeader("Last-Modified", HttpDate(mtime));
  if (std::optional<absl::string_view> ims = request.getHeader("if-modified-since")) {
    const int64_t since = ParseHttpDate(*ims);
    if (since >= 0 && mtime <= since) {
      ::close(fd);
      request.setResponseCode(304);
      request.finish();
      return;
    }
  }
  request.setHeader("Content-Type", ContentTypeFor(name));
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  request.setHeader("Content-Length", absl::StrCat(size));
  if (request.method() == "HEAD" || size == 0) {
    ::close(fd);
    request.finish();
    return;
  }
  auto producer = std::make_unique<FileProducer>(&request, fd, size);
  FileProducer* p = producer.get();
  request.keep(std::move(producer));
  request.registerProducer(p, /*streaming=*/true);
  p->resumeProducing();
}

}  // namespace twist
