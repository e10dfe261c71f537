// The seeds' ThreadingTCPServer, in C++: an accept loop that starts one
// std::thread per connection, and each thread echoes its connection with
// blocking read()/write() until the peer closes. No event loop, nothing from
// twist: the model twist is measured against in bench/models.py.
//
// Shutdown (SIGTERM/SIGINT): the accept loop stops, every live connection is
// shut down (which wakes its thread from the blocking read), and every thread
// is joined before main returns 0. The signals are blocked in every thread and
// only the accept loop takes them, atomically with its wait (ppoll), so a
// signal can never slip in between a check and a blocking call.
//
//   ./tools/bazel run -c opt //bench:thread_per_conn_echo_server -- --port=0

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bench/plain_server.h"
#include "gflags/gflags.h"

namespace {

constexpr const char* kProgram = "thread_per_conn_echo_server";
constexpr size_t kReadBufferSize = 64 * 1024;  // the same as the others'

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

// Which connections are open, and their threads. A thread that ends hands
// its std::thread to `finished` for the accept loop to join, so that a
// long-running server does not keep one joinable thread per past client.
class Connections {
 public:
  // Starts the thread that serves fd. False when no thread could be made.
  bool Serve(int fd) {
    std::lock_guard<std::mutex> lock(mu_);
    try {
      // The thread takes the lock before it ends, so it is in live_ by then.
      live_.emplace(fd, std::thread(&Connections::Echo, this, fd));
    } catch (const std::system_error&) {
      return false;
    }
    return true;
  }

  // Joins the threads that have ended.
  void Reap() {
    std::vector<std::thread> done;
    {
      std::lock_guard<std::mutex> lock(mu_);
      done.swap(finished_);
    }
    for (std::thread& t : done) t.join();
  }

  // Wakes every connection's thread out of its blocking read and joins all.
  void StopAll() {
    std::unique_lock<std::mutex> lock(mu_);
    for (auto& [fd, thread] : live_) shutdown(fd, SHUT_RDWR);
    all_ended_.wait(lock, [this] { return live_.empty(); });
    lock.unlock();
    Reap();
  }

 private:
  void Echo(int fd) {
    char buf[kReadBufferSize];
    PlainEcho(fd, buf, sizeof(buf));
    std::lock_guard<std::mutex> lock(mu_);
    close(fd);
    auto it = live_.find(fd);
    finished_.push_back(std::move(it->second));
    live_.erase(it);
    if (live_.empty()) all_ended_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable all_ended_;
  std::unordered_map<int, std::thread> live_;  // by descriptor
  std::vector<std::thread> finished_;
};

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "Echo server, one thread per connection with blocking I/O (the seeds'\n"
      "ThreadingTCPServer), a baseline for bench/models.py.\n"
      "Usage: thread_per_conn_echo_server [--host=127.0.0.1] [--port=8000]");
  gflags::ParseCommandLineFlags(&argc, &argv, true);

  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // Blocked here, so in every thread started later; ppoll unblocks them.
  sigset_t stop_signals, waiting;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, &waiting);
  sigdelset(&waiting, SIGINT);
  sigdelset(&waiting, SIGTERM);

  bool bad_usage = false;
  const int lfd = PlainListen(kProgram, /*nonblocking=*/true, &bad_usage);
  if (lfd < 0) return bad_usage ? 2 : 1;

  Connections connections;
  int status = 0;
  while (!g_stop) {
    const int fd = PlainAccept(kProgram, lfd, waiting);
    connections.Reap();
    if (fd == -2) {  // cannot wait: stop as if told to, but say so
      status = 1;
      break;
    }
    if (fd < 0) continue;
    if (!connections.Serve(fd)) {
      static bool warned = false;
      if (!warned) {
        PlainFail(kProgram, "cannot start a thread: closing the connection");
        warned = true;
      }
      close(fd);
    }
  }
  close(lfd);
  connections.StopAll();
  return status;
}
