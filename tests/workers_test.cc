// echo_server --workers=N as a user runs it: real processes, the parent's
// listener shared by the workers, a worker killed, the parent stopped or
// killed. Which process serves a connection is read from /proc (the
// server-side socket's inode in /proc/net/tcp, found among a worker's
// descriptors). Waits for other processes poll /proc in bounded loops.

#include <dirent.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "framework/address.h"
#include "framework/clock.h"
#include "gtest/gtest.h"
#include "tests/echoed_client.h"
#include "tests/subprocess.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using testing::BlockingClient;
using testing::EchoedClient;
using testing::ServerProgram;

constexpr absl::Duration kWait = absl::Seconds(20);
const char kServer[] = "examples/echo_server";

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The processes whose parent is `parent`, from /proc/*/stat (zombies too:
// a dead worker the parent has not reaped yet is still its child).
std::set<pid_t> ChildrenOf(pid_t parent, bool include_zombies = false) {
  std::set<pid_t> out;
  DIR* d = opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    int pid;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    const std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
    // "pid (comm) S ppid ...": comm may hold spaces; parse after ')'.
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::vector<std::string> f = absl::StrSplit(stat.substr(close + 2), ' ');
    int ppid;
    if (f.size() < 2 || !absl::SimpleAtoi(f[1], &ppid) || ppid != parent) continue;
    if (f[0] == "Z" && !include_zombies) continue;
    out.insert(pid);
  }
  closedir(d);
  return out;
}

// Whether `pid` is a process that has not exited (a zombie has exited).
bool Running(pid_t pid) {
  const std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  const size_t close = stat.rfind(')');
  return close != std::string::npos && stat.size() > close + 2 && stat[close + 2] != 'Z';
}

// Polls until `done()` or `timeout`; returns whether done() held.
template <class F>
bool WaitUntil(F done, absl::Duration timeout) {
  MonotonicClock clock;
  const absl::Time deadline = clock.now() + timeout;
  while (!done()) {
    if (clock.now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

std::set<pid_t> WaitForWorkers(pid_t parent, size_t n) {
  std::set<pid_t> workers;
  WaitUntil([&] { return (workers = ChildrenOf(parent)).size() == n; }, kWait);
  return workers;
}

// The inode of every socket `pid` holds.
std::set<uint64_t> SocketInodes(pid_t pid) {
  std::set<uint64_t> out;
  const std::string dir = absl::StrCat("/proc/", pid, "/fd");
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    char target[64];
    const ssize_t n = readlink(absl::StrCat(dir, "/", e->d_name).c_str(), target,
                               sizeof(target) - 1);
    if (n <= 0) continue;
    absl::string_view t(target, n);
    uint64_t inode;
    if (absl::ConsumePrefix(&t, "socket:[") && absl::ConsumeSuffix(&t, "]") &&
        absl::SimpleAtoi(t, &inode)) {
      out.insert(inode);
    }
  }
  closedir(d);
  return out;
}

// The inode of the server's end of each loopback connection to
// `server_port`, by the client's port (/proc/net/tcp, IPv4).
std::map<int, uint64_t> ServerEnds(int server_port) {
  std::map<int, uint64_t> out;
  std::istringstream lines(ReadFile("/proc/net/tcp"));
  std::string line;
  std::getline(lines, line);  // header
  while (std::getline(lines, line)) {
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.size() < 10) continue;
    const size_t lc = f[1].find(':'), rc = f[2].find(':');
    int local = 0, remote = 0;
    uint64_t inode = 0;
    if (lc == std::string::npos || rc == std::string::npos ||
        !absl::SimpleHexAtoi(f[1].substr(lc + 1), &local) ||
        !absl::SimpleHexAtoi(f[2].substr(rc + 1), &remote) ||
        !absl::SimpleAtoi(f[9], &inode)) {
      continue;
    }
    if (local == server_port && inode != 0) out[remote] = inode;
  }
  return out;
}

int LocalPort(const BlockingClient& c) {
  absl::StatusOr<Address> a = Address::LocalOf(c.fd());
  return a.ok() ? a->port() : -1;
}

// Which worker serves each client (-1: none found), by the server end's
// inode among the workers' descriptors.
std::vector<pid_t> ServingWorkers(const std::vector<int>& client_ports, int server_port,
                                  const std::set<pid_t>& workers) {
  const std::map<int, uint64_t> ends = ServerEnds(server_port);
  std::map<uint64_t, pid_t> owner;
  for (pid_t w : workers) {
    for (uint64_t inode : SocketInodes(w)) owner[inode] = w;
  }
  std::vector<pid_t> out;
  for (int port : client_ports) {
    auto end = ends.find(port);
    auto o = end == ends.end() ? owner.end() : owner.find(end->second);
    out.push_back(o == owner.end() ? -1 : o->second);
  }
  return out;
}

void ExpectCleanStop(ServerProgram& server) {
  server.process.Signal(SIGTERM);
  absl::StatusOr<int> status = server.process.Wait(kWait);
  ASSERT_TRUE(status.ok()) << status.status();
  ASSERT_TRUE(WIFEXITED(*status)) << "killed by signal " << WTERMSIG(*status);
  EXPECT_EQ(WEXITSTATUS(*status), 0) << server.process.err();
  // "listening on" was printed once, by the parent, and nothing after it.
  EXPECT_EQ(server.process.out(), "");
}

TEST(WorkersTest, SpreadsConnectionsOverTheWorkers) {
  constexpr int kWorkers = 4;
  constexpr int kClients = 200;
  absl::StatusOr<ServerProgram> server =
      testing::StartServerProgram(kServer, {absl::StrCat("--workers=", kWorkers)});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::set<pid_t> workers = WaitForWorkers(server->process.pid(), kWorkers);
  ASSERT_EQ(workers.size(), kWorkers);
  std::vector<BlockingClient> clients;
  for (int i = 0; i < kClients; ++i) {
    absl::StatusOr<BlockingClient> c = EchoedClient(server->address);
    ASSERT_TRUE(c.ok()) << "client " << i << ": " << c.status();
    clients.push_back(*std::move(c));
  }
  std::vector<int> ports;
  for (const BlockingClient& c : clients) ports.push_back(LocalPort(c));
  const std::vector<pid_t> serving = ServingWorkers(ports, server->address.port(), workers);
  std::map<pid_t, int> per_worker;
  for (pid_t w : workers) per_worker[w] = 0;
  for (pid_t w : serving) {
    ASSERT_NE(w, -1) << "a connection no worker holds";
    ++per_worker[w];
  }
  std::vector<std::string> counts;
  int busiest = 0, serving_workers = 0;
  for (const auto& [w, n] : per_worker) {
    counts.push_back(absl::StrCat(n));
    busiest = std::max(busiest, n);
    serving_workers += n > 0;
  }
  // The spread, for the report (sequential clients; shared accept queue).
  std::cout << "connections per worker (" << kClients << " clients, " << kWorkers
            << " workers): " << absl::StrJoin(counts, " ") << std::endl;
  RecordProperty("per_worker", absl::StrJoin(counts, " "));
  // Not one worker doing everything (a spread that is only the kernel's
  // whim is not asserted to be even).
  EXPECT_GE(serving_workers, 2) << absl::StrJoin(counts, " ");
  EXPECT_LT(busiest, kClients);
  ExpectCleanStop(*server);
  EXPECT_EQ(server->process.err(), "");
}

TEST(WorkersTest, AKilledWorkerIsReplacedWhileClientsKeepConnecting) {
  absl::StatusOr<ServerProgram> server =
      testing::StartServerProgram(kServer, {"--workers=2"});
  ASSERT_TRUE(server.ok()) << server.status();
  const pid_t parent = server->process.pid();
  std::set<pid_t> workers = WaitForWorkers(parent, 2);
  ASSERT_EQ(workers.size(), 2u);
  const pid_t victim = *workers.begin();
  MonotonicClock clock;
  const absl::Time killed_at = clock.now();
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  // Until the replacement is there, every client is still served (by the
  // other worker): the listener lives in the parent, not in the victim.
  int served = 0;
  std::set<pid_t> now;
  const bool replaced = WaitUntil(
      [&] {
        absl::StatusOr<BlockingClient> c = EchoedClient(server->address);
        EXPECT_TRUE(c.ok()) << "client " << served << " after the kill: " << c.status();
        served += c.ok();
        now = ChildrenOf(parent);
        return now.size() == 2 && now.count(victim) == 0;
      },
      absl::Seconds(2));
  const absl::Duration took = clock.now() - killed_at;
  ASSERT_TRUE(replaced) << "no replacement within 2 s; children " << absl::StrJoin(now, ",");
  std::cout << "replacement running " << absl::FormatDuration(took) << " after kill -9; "
            << served << " clients served meanwhile" << std::endl;
  EXPECT_GE(served, 1);
  // The replacement itself serves: clients until one lands on it (the
  // other worker holds none of these, so the new one wakes for them too).
  const pid_t replacement = *std::find_if(now.begin(), now.end(),
                                          [&](pid_t p) { return workers.count(p) == 0; });
  std::vector<BlockingClient> clients;
  bool landed = false;
  for (int i = 0; i < 200 && !landed && clock.now() - killed_at < kWait; ++i) {
    absl::StatusOr<BlockingClient> c = EchoedClient(server->address);
    ASSERT_TRUE(c.ok()) << c.status();
    clients.push_back(*std::move(c));
    const std::vector<pid_t> serving =
        ServingWorkers({LocalPort(clients.back())}, server->address.port(), {replacement});
    landed = serving[0] == replacement;
  }
  EXPECT_TRUE(landed) << "200 clients and none served by the replacement";
  ExpectCleanStop(*server);
  // One line for the death, naming the worker and the signal.
  const std::string& err = server->process.err();
  EXPECT_TRUE(absl::StartsWith(err, "echo_server: worker ") &&
              absl::EndsWith(err, absl::StrCat(" (pid ", victim,
                                               ") killed by signal 9 (Killed); "
                                               "restarting it in 100ms\n")) &&
              std::count(err.begin(), err.end(), '\n') == 1)
      << err;
}

TEST(WorkersTest, AllWorkersKilledTheListenerStaysAndServesWithinTwoSeconds) {
  absl::StatusOr<ServerProgram> server =
      testing::StartServerProgram(kServer, {"--workers=2"});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::set<pid_t> workers = WaitForWorkers(server->process.pid(), 2);
  ASSERT_EQ(workers.size(), 2u);
  MonotonicClock clock;
  const absl::Time killed_at = clock.now();
  for (pid_t w : workers) ASSERT_EQ(kill(w, SIGKILL), 0);
  // Nobody serves now, yet the connection is made (the parent's socket
  // queues it) and answered as soon as a replacement runs.
  absl::StatusOr<BlockingClient> c = BlockingClient::Connect(server->address);
  ASSERT_TRUE(c.ok()) << "listener lost: " << c.status();
  ASSERT_TRUE(c->SendAll("again").ok());
  EXPECT_EQ(c->ReadExpected("again"), "again");
  const absl::Duration took = clock.now() - killed_at;
  std::cout << "served again " << absl::FormatDuration(took) << " after kill -9 of every worker"
            << std::endl;
  EXPECT_LT(took, absl::Seconds(2));
  ExpectCleanStop(*server);
  EXPECT_NE(server->process.err().find("killed by signal 9"), std::string::npos)
      << server->process.err();
}

TEST(WorkersTest, SigtermStopsFourWorkersAndLeavesNoProcessBehind) {
  for (int sig : {SIGTERM, SIGINT}) {
    SCOPED_TRACE(sig == SIGTERM ? "SIGTERM" : "SIGINT");
    absl::StatusOr<ServerProgram> server =
        testing::StartServerProgram(kServer, {"--workers=4"});
    ASSERT_TRUE(server.ok()) << server.status();
    const pid_t parent = server->process.pid();
    const std::set<pid_t> workers = WaitForWorkers(parent, 4);
    ASSERT_EQ(workers.size(), 4u);
    std::vector<BlockingClient> clients;
    for (int i = 0; i < 8; ++i) {
      absl::StatusOr<BlockingClient> c = EchoedClient(server->address);
      ASSERT_TRUE(c.ok()) << c.status();
      clients.push_back(*std::move(c));
    }
    server->process.Signal(sig);
    // Every connection is closed by its worker as it stops...
    for (BlockingClient& c : clients) {
      absl::StatusOr<std::string> rest = c.ReadToEof();
      ASSERT_TRUE(rest.ok()) << rest.status();
      EXPECT_EQ(*rest, "");
    }
    // ...the parent exits 0 once all have, printing nothing...
    absl::StatusOr<int> status = server->process.Wait(kWait);
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_TRUE(WIFEXITED(*status)) << "killed by signal " << WTERMSIG(*status);
    EXPECT_EQ(WEXITSTATUS(*status), 0);
    EXPECT_EQ(server->process.out(), "");
    EXPECT_EQ(server->process.err(), "");
    // ...and no worker is left, running or unreaped, and none was started
    // in its place.
    for (pid_t w : workers) {
      EXPECT_FALSE(Running(w)) << "worker " << w << " outlived its parent";
      EXPECT_NE(access(absl::StrCat("/proc/", w).c_str(), F_OK), 0)
          << "worker " << w << " not reaped";
    }
    EXPECT_TRUE(ChildrenOf(parent, /*include_zombies=*/true).empty());
  }
}

TEST(WorkersTest, WorkersExitWhenTheParentIsKilled) {
  // Orphans come to this process rather than to init, so that their exit
  // status can be read.
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  absl::StatusOr<ServerProgram> server =
      testing::StartServerProgram(kServer, {"--workers=2"});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::set<pid_t> workers = WaitForWorkers(server->process.pid(), 2);
  ASSERT_EQ(workers.size(), 2u);
  absl::StatusOr<BlockingClient> c = EchoedClient(server->address);
  ASSERT_TRUE(c.ok()) << c.status();
  server->process.Signal(SIGKILL);
  // The workers hold the parent's stdout and stderr: Wait() returns once
  // they have exited too.
  absl::StatusOr<int> status = server->process.Wait(kWait);
  ASSERT_TRUE(status.ok()) << status.status() << " (the workers outlived their parent)";
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL);
  // Each worker stopped as on SIGTERM (PR_SET_PDEATHSIG): it closed its
  // connections and exited 0.
  absl::StatusOr<std::string> rest = c->ReadToEof();
  ASSERT_TRUE(rest.ok()) << rest.status();
  for (pid_t w : workers) {
    int ws = 0;
    pid_t r = -1;
    WaitUntil([&] { return (r = waitpid(w, &ws, WNOHANG)) != 0; }, kWait);
    ASSERT_EQ(r, w) << "worker " << w << " not ended";
    EXPECT_TRUE(WIFEXITED(ws) && WEXITSTATUS(ws) == 0)
        << "worker " << w << " wait status " << ws;
  }
  prctl(PR_SET_CHILD_SUBREAPER, 0);
}

TEST(WorkersTest, BadWorkerCounts) {
  testing::ExpectOneLineFailure(kServer, {"--workers=-1"},
                                "echo_server: invalid --workers -1: must be 0..1024");
}

TEST(WorkersTest, ChatServerRefusesWorkers) {
  absl::StatusOr<testing::Subprocess> p =
      testing::Subprocess::Start(testing::RunfilePath("examples/chat_server"),
                                 {"--workers=2", "--port=0"});
  ASSERT_TRUE(p.ok()) << p.status();
  absl::StatusOr<int> status = p->Wait(kWait);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2) << *status;
  EXPECT_EQ(p->out(), "");
  EXPECT_EQ(p->err(),
            "chat_server: --workers=2: chat cannot share its users across processes without "
            "--redis: serve it in one process, or give --redis\n");
}

TEST(WorkersTest, OneWorkerIsTheSingleProcess) {
  for (const char* flag : {"--workers=0", "--workers=1"}) {
    absl::StatusOr<ServerProgram> server = testing::StartServerProgram(kServer, {flag});
    ASSERT_TRUE(server.ok()) << server.status();
    absl::StatusOr<BlockingClient> c = EchoedClient(server->address);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_TRUE(ChildrenOf(server->process.pid(), true).empty()) << flag;
    ExpectCleanStop(*server);
  }
}

}  // namespace
}  // namespace twist
