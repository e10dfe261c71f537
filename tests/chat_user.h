#ifndef TWIST_TESTS_CHAT_USER_H_
#define TWIST_TESTS_CHAT_USER_H_

// A chat user on a real socket, for the tests of chat servers run as
// programs (chat_redis_test, chat_netns_test): every wait is for a line,
// with a deadline.

#include <poll.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "framework/address.h"
#include "gtest/gtest.h"
#include "tests/line_client.h"
#include "tests/test_util.h"

namespace twist {
namespace testing {

// A chat user on a real socket.
class User {
 public:
  static constexpr absl::Duration kWait = absl::Seconds(20);

  static std::unique_ptr<User> Join(const Address& server, const std::string& name) {
    absl::StatusOr<BlockingClient> c = BlockingClient::Connect(server);
    EXPECT_TRUE(c.ok()) << c.status();
    if (!c.ok()) return nullptr;
    return Join(*std::move(c), name);
  }
  // On a connection made elsewhere (from another network namespace, say).
  static std::unique_ptr<User> Join(BlockingClient c, const std::string& name) {
    auto u = std::make_unique<User>(std::move(c));
    u->send(absl::StrCat(name, "\n"));
    EXPECT_TRUE(u->waitFor(absl::StrCat("Welcome, ", name, "!")).ok()) << name;
    return u;
  }
  explicit User(BlockingClient c) : c_(std::move(c)) {}

  void send(absl::string_view data) { c_.send(data); }
  // The next line, within `timeout`.
  absl::StatusOr<std::string> next(absl::Duration timeout = kWait) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!c_.hasLine()) {
      if (c_.eof()) return absl::UnavailableError("closed");
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) {
        return absl::DeadlineExceededError(
            absl::StrCat("no line within ", absl::FormatDuration(timeout)));
      }
      pollfd p{c_.socket().fd(), POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
      c_.pump();
    }
    return c_.pop();
  }
  // Reads until a line equal to `line` arrives; returns the lines before it.
  absl::StatusOr<std::vector<std::string>> waitFor(absl::string_view line,
                                                    absl::Duration timeout = kWait) {
    const absl::Time deadline = absl::Now() + timeout;
    std::vector<std::string> before;
    while (true) {
      absl::StatusOr<std::string> l = next(deadline - absl::Now());
      if (!l.ok()) {
        return absl::Status(l.status().code(),
                            absl::StrCat(l.status().message(), " waiting for '", line,
                                         "'; got: ", absl::StrJoin(before, " | ")));
      }
      if (*l == line) return before;
      before.push_back(*std::move(l));
    }
  }
  // Expects `line` next, with nothing but `allowed` lines before it.
  void expect(absl::string_view line) {
    absl::StatusOr<std::vector<std::string>> before = waitFor(line);
    ASSERT_TRUE(before.ok()) << before.status();
    EXPECT_TRUE(before->empty()) << "before '" << line << "': " << absl::StrJoin(*before, " | ");
  }
  // The lines that arrived so far, without waiting.
  std::vector<std::string> drain() {
    c_.pump();
    std::vector<std::string> out;
    while (c_.hasLine()) out.push_back(c_.pop());
    return out;
  }
  // Asks /who and returns its line.
  std::string who() {
    send("/who\n");
    const absl::Time deadline = absl::Now() + kWait;
    while (absl::Now() < deadline) {
      c_.pump();
      while (c_.hasLine()) {
        std::string l = c_.pop();
        if (absl::StartsWith(l, "Online: ")) return l;
      }
      pollfd p{c_.socket().fd(), POLLIN, 0};
      ::poll(&p, 1, 100);
    }
    return "no /who answer";
  }
  bool closed() {
    c_.pump();
    return c_.eof();
  }
  LineClient& client() { return c_; }

 private:
  LineClient c_;
};

}  // namespace testing
}  // namespace twist

#endif  // TWIST_TESTS_CHAT_USER_H_
