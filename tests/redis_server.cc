#include "tests/redis_server.h"

#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace twist {
namespace testing {

std::string RedisServerBinary() {
  if (const char* env = getenv("TWIST_REDIS_SERVER"); env != nullptr && *env != '\0') {
    return access(env, X_OK) == 0 ? env : "";
  }
  if (access("/usr/bin/redis-server", X_OK) == 0) return "/usr/bin/redis-server";
  if (const char* path = getenv("PATH"); path != nullptr) {
    for (absl::string_view dir : absl::StrSplit(path, ':')) {
      std::string candidate = absl::StrCat(dir, "/redis-server");
      if (!dir.empty() && access(candidate.c_str(), X_OK) == 0) return candidate;
    }
  }
  return "";
}

namespace {

// A port nothing listens on now (the kernel's pick for a bind to port 0).
// Someone may take it before Redis does: Start() then tries another.
int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RedisServer>> RedisServer::Start(std::vector<std::string> extra) {
  std::unique_ptr<RedisServer> s(new RedisServer());
  s->binary_ = RedisServerBinary();
  if (s->binary_.empty()) return absl::NotFoundError("redis-server is not installed");
  s->extra_ = std::move(extra);
  absl::Status last;
  for (int attempt = 0; attempt < 5; ++attempt) {
    s->port_ = FreeLoopbackPort();
    last = s->Launch();
    if (last.ok()) return s;
  }
  return last;
}

RedisServer::~RedisServer() {
  if (process_.has_value()) Kill().IgnoreError();
}

std::string RedisServer::url() const { return absl::StrCat("redis://127.0.0.1:", port_); }

absl::Status RedisServer::Launch() {
  std::vector<std::string> args = {
      "--port", absl::StrCat(port_), "--bind", "127.0.0.1",
      // Persistence off: nothing written, nothing loaded.
      "--save", "", "--appendonly", "no", "--dir", dir_.path(""), "--daemonize", "no",
      "--logfile", "",
      // DEBUG PROTOCOL serves every RESP3 type.
      "--enable-debug-command", "yes"};
  args.insert(args.end(), extra_.begin(), extra_.end());
  absl::StatusOr<Subprocess> p = Subprocess::Start(binary_, args);
  if (!p.ok()) return p.status();
  // Redis logs to stdout; this line says it listens.
  std::string said;
  for (int lines = 0; lines < 200; ++lines) {
    absl::StatusOr<std::string> line = p->ReadStdoutLine(kTimeout);
    if (!line.ok()) {
      p->Signal(SIGKILL);
      p->Wait(kTimeout).IgnoreError();
      return absl::UnavailableError(absl::StrCat("redis-server on port ", port_,
                                                 " did not start: ", line.status().message(),
                                                 "; it said: ", said, p->err()));
    }
    if (absl::StrContains(*line, "Ready to accept connections")) {
      process_.emplace(*std::move(p));
      return absl::OkStatus();
    }
    absl::StrAppend(&said, *line, "\n");
  }
  p->Signal(SIGKILL);
  p->Wait(kTimeout).IgnoreError();
  return absl::UnavailableError(absl::StrCat("redis-server never said it was ready: ", said));
}

absl::Status RedisServer::Kill() {
  if (!process_.has_value()) return absl::FailedPreconditionError("not running");
  process_->Signal(SIGKILL);
  absl::StatusOr<int> st = process_->Wait(kTimeout);
  process_.reset();
  return st.status();
}

absl::Status RedisServer::Stop() {
  if (!process_.has_value()) return absl::FailedPreconditionError("not running");
  process_->Signal(SIGTERM);
  absl::StatusOr<int> st = process_->Wait(kTimeout);
  process_.reset();
  return st.status();
}

absl::Status RedisServer::Restart() {
  if (process_.has_value()) return absl::FailedPreconditionError("still running");
  return Launch();
}

}  // namespace testing
}  // namespace twist
