#include "protocols/finger.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/defer_to_thread.h"
#include "framework/errors.h"

namespace twist {
namespace {

bool ValidUser(absl::string_view user) {
  if (user.empty() || user.size() > 32 || user[0] == '.') return false;
  return std::all_of(user.begin(), user.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' ||
           c == '-';
  });
}

}  // namespace

absl::StatusOr<std::string> ReadPlan(const FingerOptions& options, absl::string_view user) {
  if (!ValidUser(user)) return absl::NotFoundError("No such user");
  const std::string path = absl::StrCat(options.plans_dir, "/", user);
  // Blocks until a writer comes if the plan is a named pipe: we are on a
  // pool thread.
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR) {
      return absl::NotFoundError("No such user");
    }
    return absl::ErrnoToStatus(errno, absl::StrCat("open ", path));
  }
  std::string plan;
  char buf[16384];
  while (plan.size() < options.max_plan) {
    ssize_t n = ::read(fd, buf, std::min(sizeof(buf), options.max_plan - plan.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status s = absl::ErrnoToStatus(errno, absl::StrCat("read ", path));
      ::close(fd);
      return s;
    }
    if (n == 0) break;
    plan.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return plan;
}

absl::StatusOr<std::vector<std::string>> ListUsers(const FingerOptions& options) {
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(options.plans_dir.c_str()), &::closedir);
  if (dir == nullptr) {
    return absl::ErrnoToStatus(errno, absl::StrCat("opendir ", options.plans_dir));
  }
  std::vector<std::string> users;
  while (dirent* e = ::readdir(dir.get())) {
    if (ValidUser(e->d_name)) users.emplace_back(e->d_name);
  }
  std::sort(users.begin(), users.end());
  return users;
}

FingerProtocol::FingerProtocol(ReactorThreads* reactor, const FingerOptions* options)
    : reactor_(reactor), options_(options) {
  // RFC 1288 asks for CRLF; clients typed by hand (nc) send LF.
  setDelimiter("\n");
}

void FingerProtocol::lineReceived(absl::string_view line) {
  if (asked_) return;
  asked_ = true;
  absl::ConsumeSuffix(&line, "\r");
  // "/W" asks for the verbose form (RFC 1288); plans are all there is.
  if (absl::ConsumePrefix(&line, "/W")) line = absl::StripLeadingAsciiWhitespace(line);
  const FingerOptions* options = options_;
  if (line.empty()) {
    pending_ = deferToThread(reactor_, [options]() -> absl::StatusOr<std::string> {
      absl::StatusOr<std::vector<std::string>> users = ListUsers(*options);
      if (!users.ok()) return users.status();
      return absl::StrJoin(*users, "\r\n");
    });
  } else {
    pending_ = deferToThread(reactor_, [options, user = std::string(line)] {
      return ReadPlan(*options, user);
    });
  }
  pending_->addBoth([this](absl::StatusOr<std::string> reply) {
    // Cancelled: the connection is gone (connectionLost cancelled us).
    if (!absl::IsCancelled(reply.status())) answer(reply);
    return absl::StatusOr<std::string>(std::string());  // handled here
  });
}

void FingerProtocol::answer(const absl::StatusOr<std::string>& reply) {
  if (reply.ok()) {
    transport()->write(*reply);
    if (!reply->empty() && !absl::EndsWith(*reply, "\n")) transport()->write("\r\n");
  } else if (absl::IsNotFound(reply.status())) {
    transport()->write("No such user\r\n");
  } else {
    // A server-side failure: say so without the server's paths.
    transport()->write("Internal error\r\n");
  }
  transport()->loseConnection();
}

void FingerProtocol::connectionLost(const absl::Status& reason) {
  // Not answered yet: the answer must not come (a no-op once it has).
  if (pending_.has_value()) pending_->cancel();
}

std::unique_ptr<Protocol> FingerFactory::buildProtocol(const Address&) {
  return std::make_unique<FingerProtocol>(reactor_, &options_);
}

}  // namespace twist
