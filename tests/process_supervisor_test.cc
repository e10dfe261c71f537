// SuperviseWorkers on its own (examples' --workers is tested end to end in
// workers_test): the back-off between restarts, its cap and its reset, the
// line each death gets, and the stop. The supervisor runs in a forked child
// of the test (it blocks until SIGTERM), with its stderr on a pipe.

#include "framework/process_supervisor.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "framework/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace twist {
namespace {

using ::testing::MatchesRegex;

// Options for `workers` workers of a supervisor named "sup" (the prefix of
// its lines).
ProcessSupervisorOptions SupOptions(int workers) {
  ProcessSupervisorOptions options;
  options.workers = workers;
  options.name = "sup";
  return options;
}

class Supervised {
 public:
  // Forks a process that runs SuperviseWorkers(options, worker) and exits 0
  // if it returned OK.
  Supervised(const ProcessSupervisorOptions& options, int (*worker)(int)) {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], 2);
      close(fds[0]);
      close(fds[1]);
      _exit(SuperviseWorkers(options, worker).ok() ? 0 : 1);
    }
    close(fds[1]);
    err_ = fds[0];
  }
  ~Supervised() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(err_);
  }
  // The next `n` lines on the supervisor's stderr, waiting at most 20 s.
  std::vector<std::string> Lines(size_t n) {
    MonotonicClock clock;
    const absl::Time deadline = clock.now() + absl::Seconds(20);
    while (true) {
      std::vector<std::string> lines = absl::StrSplit(buf_, '\n');
      if (lines.size() > n) {
        std::vector<std::string> out(lines.begin(), lines.begin() + n);
        size_t used = 0;
        for (const std::string& l : out) used += l.size() + 1;
        buf_.erase(0, used);
        return out;
      }
      const int64_t left = absl::ToInt64Milliseconds(deadline - clock.now());
      if (left <= 0) return lines;
      pollfd p{err_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char chunk[4096];
      const ssize_t got = read(err_, chunk, sizeof(chunk));
      if (got <= 0) return absl::StrSplit(buf_, '\n');
      buf_.append(chunk, got);
    }
  }
  // Stop() and its wait status: the supervisor exited 0 (it stopped its
  // workers and SuperviseWorkers returned OK).
  ::testing::AssertionResult StopsCleanly() {
    const int status = Stop();
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "the supervisor's wait status is " << status;
  }
  // SIGTERM, then the supervisor's wait status.
  int Stop() {
    kill(pid_, SIGTERM);
    int status = -1;
    MonotonicClock clock;
    const absl::Time deadline = clock.now() + absl::Seconds(20);
    while (waitpid(pid_, &status, WNOHANG) == 0 && clock.now() < deadline) {
      absl::SleepFor(absl::Milliseconds(2));
    }
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_ = -1;
  int err_ = -1;
  std::string buf_;
};

TEST(ProcessSupervisorTest, AWorkerThatKeepsDyingIsRestartedWithGrowingDelays) {
  ProcessSupervisorOptions options = SupOptions(1);
  options.min_restart_delay = absl::Milliseconds(10);
  options.max_restart_delay = absl::Milliseconds(40);
  options.stable_after = absl::Seconds(100);
  Supervised s(options, [](int) { return 3; });
  EXPECT_THAT(s.Lines(5),
              ::testing::ElementsAre(
                  MatchesRegex("sup: worker 0 \\(pid [0-9]+\\) exited with status 3; "
                               "restarting it in 10ms"),
                  MatchesRegex(".*exited with status 3; restarting it in 20ms"),
                  MatchesRegex(".*exited with status 3; restarting it in 40ms"),
                  MatchesRegex(".*restarting it in 40ms"),
                  MatchesRegex(".*restarting it in 40ms")));
  EXPECT_TRUE(s.StopsCleanly());
}

TEST(ProcessSupervisorTest, AWorkerThatLivedLongEnoughRestartsAfterTheShortestDelay) {
  ProcessSupervisorOptions options = SupOptions(2);
  options.min_restart_delay = absl::Milliseconds(10);
  options.max_restart_delay = absl::Seconds(1);
  options.stable_after = absl::Milliseconds(20);
  // Each life is longer than stable_after: the delay never grows.
  Supervised s(options, [](int index) {
    absl::SleepFor(absl::Milliseconds(30));
    return index == 0 ? 0 : 7;
  });
  for (const std::string& line : s.Lines(6)) {
    EXPECT_THAT(line, MatchesRegex("sup: worker [01] \\(pid [0-9]+\\) exited with status "
                                   "[07]; restarting it in 10ms"));
  }
  EXPECT_TRUE(s.StopsCleanly());
}

TEST(ProcessSupervisorTest, AWorkerThatIgnoresSigtermIsKilledAfterTheStopTimeout) {
  ProcessSupervisorOptions options = SupOptions(1);
  options.stop_timeout = absl::Milliseconds(100);
  Supervised s(options, [](int) {
    // Never reads its signalfd: the SIGTERM stays pending.
    write(2, "up\n", 3);
    while (true) pause();
    return 0;
  });
  ASSERT_THAT(s.Lines(1), ::testing::ElementsAre("up"));
  EXPECT_TRUE(s.StopsCleanly());
  EXPECT_THAT(s.Lines(1), ::testing::ElementsAre(MatchesRegex(
                              "sup: worker 0 \\(pid [0-9]+\\) still running 100ms after "
                              "SIGTERM; killing it")));
}

TEST(ProcessSupervisorTest, NoWorkersIsAnError) {
  ProcessSupervisorOptions options;
  options.workers = 0;
  EXPECT_EQ(SuperviseWorkers(options, [](int) { return 0; }).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace twist
