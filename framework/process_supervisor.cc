#include "framework/process_supervisor.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "framework/clock.h"

namespace twist {
namespace {

struct Slot {
  pid_t pid = -1;               // running worker, -1 if none
  absl::Time started;           // when it was forked
  absl::Time restart_at;        // when to fork again (no pid)
  absl::Duration delay;         // back-off for its next death
};

std::string Describe(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exited with status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return absl::StrCat("killed by signal ", WTERMSIG(status), " (",
                        strsignal(WTERMSIG(status)), ")");
  }
  return absl::StrCat("ended with wait status ", status);
}

// In the child, right after fork(): never returns.
[[noreturn]] void RunWorker(pid_t parent, int index, const sigset_t& mask, int signal_fd,
                            absl::FunctionRef<int(int)> worker) {
  // Dies with the parent; the parent may have died between fork() and here,
  // in which case the death signal will never come: check.
  if (::prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || ::getppid() != parent) _exit(1);
  ::close(signal_fd);
  // SIGCHLD is the parent's business; SIGINT and SIGTERM stay blocked (and
  // pending, if they came already) for the worker's own signalfd.
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  if (!sigismember(&mask, SIGCHLD)) sigprocmask(SIG_UNBLOCK, &chld, nullptr);
  const int code = worker(index);
  fflush(nullptr);
  _exit(code);
}

}  // namespace

absl::Status SuperviseWorkers(const ProcessSupervisorOptions& options,
                              absl::FunctionRef<int(int index)> worker) {
  if (options.workers < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("workers must be at least 1, not ", options.workers));
  }
  sigset_t set, old_mask;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  if (sigprocmask(SIG_BLOCK, &set, &old_mask) != 0) {
    return absl::ErrnoToStatus(errno, "sigprocmask");
  }
  const int sfd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd < 0) {
    absl::Status s = absl::ErrnoToStatus(errno, "signalfd");
    sigprocmask(SIG_SETMASK, &old_mask, nullptr);
    return s;
  }
  MonotonicClock clock;
  const pid_t self = ::getpid();
  const char* name = options.name.c_str();
  std::vector<Slot> slots(options.workers);
  for (Slot& slot : slots) {
    slot.delay = options.min_restart_delay;
    slot.restart_at = clock.now();
  }
  auto start = [&](int index) {
    Slot& slot = slots[index];
    // Output buffered now would be written again by the child.
    fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) RunWorker(self, index, old_mask, sfd, worker);
    slot.started = clock.now();
    if (pid < 0) {
      fprintf(stderr, "%s: cannot start worker %d: %s; trying again in %s\n", name, index,
              strerror(errno), absl::FormatDuration(slot.delay).c_str());
      slot.restart_at = slot.started + slot.delay;
      slot.delay = std::min(slot.delay * 2, options.max_restart_delay);
      return;
    }
    slot.pid = pid;
  };
  for (int i = 0; i < options.workers; ++i) start(i);

  bool stopping = false;
  bool killed = false;
  absl::Time kill_at = absl::InfiniteFuture();
  while (true) {
    // Signals before deaths: Ctrl-C reaches the workers and the parent at
    // once, and a worker that stopped on it must not be restarted.
    signalfd_siginfo info;
    bool stop = false;
    while (::read(sfd, &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
      if (info.ssi_signo == SIGINT || info.ssi_signo == SIGTERM) stop = true;
    }
    if (stop && !stopping) {
      stopping = true;
      kill_at = clock.now() + options.stop_timeout;
      for (const Slot& s : slots) {
        if (s.pid > 0) ::kill(s.pid, SIGTERM);
      }
    }
    // Reap every worker that has ended (SIGCHLDs coalesce: ask waitpid).
    int status;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      auto it = std::find_if(slots.begin(), slots.end(),
                             [pid](const Slot& s) { return s.pid == pid; });
      if (it == slots.end()) continue;  // not ours (the caller's child)
      it->pid = -1;
      if (stopping) continue;
      const absl::Time now = clock.now();
      if (now - it->started >= options.stable_after) it->delay = options.min_restart_delay;
      it->restart_at = now + it->delay;
      fprintf(stderr, "%s: worker %d (pid %d) %s; restarting it in %s\n", name,
              static_cast<int>(it - slots.begin()), static_cast<int>(pid),
              Describe(status).c_str(), absl::FormatDuration(it->delay).c_str());
      it->delay = std::min(it->delay * 2, options.max_restart_delay);
    }
    const bool any_running = std::any_of(slots.begin(), slots.end(),
                                         [](const Slot& s) { return s.pid > 0; });
    if (stopping && !any_running) break;
    absl::Time now = clock.now();
    absl::Time wake = absl::InfiniteFuture();
    if (stopping) {
      if (now >= kill_at && !killed) {
        killed = true;
        for (const Slot& s : slots) {
          if (s.pid <= 0) continue;
          fprintf(stderr, "%s: worker %d (pid %d) still running %s after SIGTERM; killing it\n",
                  name, static_cast<int>(&s - slots.data()), static_cast<int>(s.pid),
                  absl::FormatDuration(options.stop_timeout).c_str());
          ::kill(s.pid, SIGKILL);
        }
      }
      if (!killed) wake = kill_at;
    } else {
      for (int i = 0; i < options.workers; ++i) {
        if (slots[i].pid < 0 && slots[i].restart_at <= now) start(i);
        if (slots[i].pid < 0) wake = std::min(wake, slots[i].restart_at);
      }
    }
    int timeout_ms = -1;
    if (wake != absl::InfiniteFuture()) {
      // Rounded up: waking a little late is fine, spinning early is not.
      timeout_ms = static_cast<int>(
          std::max<int64_t>(0, absl::ToInt64Milliseconds(wake - clock.now() +
                                                          absl::Microseconds(999))));
    }
    pollfd pfd{sfd, POLLIN, 0};
    if (::poll(&pfd, 1, timeout_ms) < 0 && errno != EINTR) {
      fprintf(stderr, "%s: poll: %s\n", name, strerror(errno));
    }
  }
  ::close(sfd);
  sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  return absl::OkStatus();
}

}  // namespace twist
