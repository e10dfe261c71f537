#ifndef TWIST_PROTOCOLS_HTTP_STATIC_H_
#define TWIST_PROTOCOLS_HTTP_STATIC_H_

// Static files (twisted.web.static.File): a leaf resource that serves the
// files under one directory.
//
// Safety: the path below the resource is split into segments, each
// percent-decoded; a segment that decodes to "." or "..", or holds '/' or
// NUL, is 404 and nothing is opened. The rest is walked one segment at a
// time with openat(O_NOFOLLOW) from a descriptor of the directory opened at
// start, so no symlink is followed (403) and nothing outside the directory
// can be named. Only regular files are served (a directory serves its
// index.html, else 403; no listings).

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "protocols/http.h"

namespace twist {

class File : public Resource {
 public:
  /// Serves the files under `dir`; fails if it is not an openable directory.
  static absl::StatusOr<std::unique_ptr<File>> Open(const std::string& dir);
  ~File() override;

  bool isLeaf() const override { return true; }
  /// 200 with Content-Type (by extension), Content-Length and Last-Modified;
  /// 304 when If-Modified-Since is not older than the file. Files over
  /// 64 KiB are streamed by a producer, 64 KiB per read, paced by the
  /// client: the server never holds more than the transport's high water
  /// mark plus one chunk of a file.
  void render_GET(Request& request) override;

 private:
  explicit File(int dir_fd) : dir_fd_(dir_fd) {}
  int dir_fd_;
};

/// The Content-Type for a file name, by its extension;
/// application/octet-stream if unknown.
absl::string_view ContentTypeFor(absl::string_view name);

/// An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT").
std::string HttpDate(int64_t unix_seconds);

}  // namespace twist

#endif  // TWIST_PROTOCOLS_HTTP_STATIC_H_
