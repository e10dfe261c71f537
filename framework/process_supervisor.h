#ifndef TWIST_FRAMEWORK_PROCESS_SUPERVISOR_H_
#define TWIST_FRAMEWORK_PROCESS_SUPERVISOR_H_

// Worker processes serving one port, and the parent that keeps them alive
// (the pre-fork model of nginx and of gunicorn's arbiter). Twisted has no
// exact equivalent: its users run several processes that share a port with
// reactor.adoptStreamPort (Reactor::adoptStreamPort here) and supervise
// them with twistd/systemd; this is the supervising half.

#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"

namespace twist {

struct ProcessSupervisorOptions {
  /// Worker processes kept running (at least 1).
  int workers = 1;
  /// Prefix of the supervisor's lines on stderr ("echo_server: worker 2 ...").
  std::string name = "twist";
  /// A worker that dies is restarted after a delay that starts here and
  /// doubles with each death that follows a short life (shorter than
  /// `stable_after`), up to `max_restart_delay`; a worker that lived at
  /// least `stable_after` is restarted after `min_restart_delay` again. So a
  /// worker that crashes at start-up does not make the parent spin.
  absl::Duration min_restart_delay = absl::Milliseconds(100);
  absl::Duration max_restart_delay = absl::Seconds(10);
  absl::Duration stable_after = absl::Seconds(10);
  /// After SIGTERM/SIGINT the workers are sent SIGTERM; those still running
  /// this long after are sent SIGKILL (they were given their shutdown grace
  /// and did not use it).
  absl::Duration stop_timeout = absl::Seconds(15);
};

/// Forks `options.workers` processes, each running `worker(index)` (index
/// 0..workers-1) and exiting with its result, and supervises them until
/// the parent gets SIGTERM or SIGINT:
///  - A worker that exits or is killed while the parent runs is restarted
///    in its slot (same index) after the back-off above, and the death is
///    one line on stderr: "NAME: worker 2 (pid 1234) killed by signal 9
///    (Killed); restarting it in 100ms".
///  - SIGTERM or SIGINT to the parent sends SIGTERM to every worker, waits
///    until all have exited (SIGKILL after stop_timeout, said on stderr),
///    and returns OK. A clean stop prints nothing.
///  - A worker never outlives the parent: each has PR_SET_PDEATHSIG set to
///    SIGTERM, and exits at once if the parent was already gone by then
///    (the race between fork and prctl).
/// The worker starts with SIGINT and SIGTERM blocked (pending ones stay
/// pending): it should stop on them through a signalfd, i.e.
/// Reactor::installSignalHandlers(), so that a stop asked for before its
/// reactor exists is not lost. It runs in a forked copy of the caller:
/// anything the caller made before (a bound socket, a factory) is there,
/// and the worker must not touch the caller's reactor, which shares its
/// poller with the parent's. It ends with _exit(): no destructors of the
/// caller's objects run in the worker (they would remove the parent's Unix
/// socket files); stdio is flushed.
///
/// Call from a single-threaded process (fork() copies only the calling
/// thread). Blocks SIGCHLD, SIGINT and SIGTERM in the caller for its
/// duration. Errors: those of signalfd at the start; a fork that fails
/// later is a worker death like any other (logged, retried with back-off).
absl::Status SuperviseWorkers(const ProcessSupervisorOptions& options,
                              absl::FunctionRef<int(int index)> worker);

}  // namespace twist

#endif  // TWIST_FRAMEWORK_PROCESS_SUPERVISOR_H_
