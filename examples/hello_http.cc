// The seeds' first server done properly: an HTTP/1.1 server on twist that
// answers every GET with "Hello, World" (text/plain), or serves the files
// under --root.
//
//   ./tools/bazel run //examples:hello_http            # port 8080
//   curl -i http://127.0.0.1:8080/
//   ./tools/bazel run //examples:hello_http -- --root=/var/www --port=8000

#include <limits>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "examples/listen_flags.h"
#include "examples/server_main.h"
#include "examples/usage.h"
#include "gflags/gflags.h"
#include "protocols/http.h"
#include "protocols/http_static.h"

DEFINE_string(root, "", "Serve the files under this directory instead of Hello, World.");
DEFINE_int64(max_body, 1 << 20,
             "Largest request body accepted, in bytes (413 Content Too Large beyond).");
DEFINE_double(keepalive_timeout, 60,
              "Seconds a keep-alive connection may wait for its next request; 0: forever.");

namespace {

// "Hello, World" for GET (and HEAD) of every path.
class Hello : public twist::Resource {
 public:
  bool isLeaf() const override { return true; }
  void render_GET(twist::Request& request) override {
    request.setHeader("Content-Type", "text/plain");
    request.write("Hello, World");
    request.finish();
  }
};

}  // namespace

int main(int argc, char** argv) {
  constexpr char kProgram[] = "hello_http";
  gflags::SetUsageMessage(
      "HTTP/1.1 server: Hello, World for every GET, or the files under --root.\n"
      "Usage: hello_http [--host=127.0.0.1] [--port=8080] [--reactor=epoll]\n"
      "       [--root=DIR] [--max_body=BYTES] [--keepalive_timeout=SECONDS]\n"
      "       hello_http --listen=ENDPOINT [--listen=ENDPOINT ...]");
  gflags::SetCommandLineOptionWithMode("port", "8080", gflags::SET_FLAGS_DEFAULT);
  if (absl::Status s = twist::ParseServerFlags(&argc, &argv); !s.ok()) {
    return twist::BadUsage(kProgram, s.message());
  }
  if (FLAGS_max_body < 0) {
    return twist::BadUsage(kProgram, absl::StrCat("invalid --max_body ", FLAGS_max_body,
                                                  ": must be >= 0 bytes"));
  }
  if (!(FLAGS_keepalive_timeout >= 0) || FLAGS_keepalive_timeout > 1e9) {
    return twist::BadUsage(kProgram, absl::StrCat("invalid --keepalive_timeout ",
                                                  FLAGS_keepalive_timeout,
                                                  ": must be 0..1e9 seconds"));
  }
  std::unique_ptr<twist::Resource> root;
  if (FLAGS_root.empty()) {
    root = std::make_unique<Hello>();
  } else {
    absl::StatusOr<std::unique_ptr<twist::File>> files = twist::File::Open(FLAGS_root);
    if (!files.ok()) return twist::BadUsage(kProgram, absl::StrCat("--root: ", files.status().message()));
    root = std::move(*files);
  }
  twist::HttpOptions options;
  options.limits.max_body = static_cast<uint64_t>(FLAGS_max_body);
  options.keepalive_timeout = absl::Seconds(FLAGS_keepalive_timeout);
  // A Site needs its reactor (Date, timeouts), so ServeForever makes one
  // per reactor; the resources are shared (they keep no state). The
  // placeholder factory is never used.
  twist::Factory placeholder;
  return twist::ServeForever(
      kProgram, &placeholder,
      [&](twist::Reactor* reactor, twist::Factory*) -> std::unique_ptr<twist::Factory> {
        return std::make_unique<twist::Site>(reactor, root.get(), options);
      });
}
