// chat_server --redis across hosts (issue 17): Redis and two chat servers
// each in a network namespace of its own, joined through a bridge in a
// fourth (the "hub", where the users connect from) by veth pairs, on
// 10.77.0.0/24, an address range that exists only in the test's own
// namespaces. Nothing on the host's network changes. Skipped, saying why,
// where namespaces cannot be made (unshare, or setns into them, refused).

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "framework/address.h"
#include "gtest/gtest.h"
#include "tests/chat_user.h"
#include "tests/redis_server.h"
#include "tests/subprocess.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using testing::BlockingClient;
using testing::Subprocess;
using testing::User;

constexpr absl::Duration kWait = absl::Seconds(20);

// Runs `script` with /bin/sh; its stderr as the error if it fails.
absl::Status Sh(const std::string& script) {
  absl::StatusOr<Subprocess> p = Subprocess::Start("/bin/sh", {"-c", script});
  if (!p.ok()) return p.status();
  absl::StatusOr<int> status = p->Wait(kWait);
  if (!status.ok()) return status.status();
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    return absl::InternalError(absl::StrCat("'", script, "' failed: ", p->err()));
  }
  return absl::OkStatus();
}

// A network namespace, held by a sleeping process in it.
struct Namespace {
  std::shared_ptr<Subprocess> holder;
  std::string pid() const { return absl::StrCat(holder->pid()); }
  // `argv` run in this namespace (and its user namespace).
  std::vector<std::string> In(std::vector<std::string> argv) const {
    std::vector<std::string> out = {"-t", pid(), "-U", "-n", "--preserve-credentials", "--"};
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
  }
};

// Starts `program args`, whose first line says it is ready.
absl::StatusOr<Namespace> MakeNamespace(const std::string& program,
                                        const std::vector<std::string>& args) {
  absl::StatusOr<Subprocess> p = Subprocess::Start(program, args);
  if (!p.ok()) return p.status();
  absl::StatusOr<std::string> line = p->ReadStdoutLine(kWait);
  if (!line.ok() || *line != "ready") {
    p->Signal(SIGKILL);
    p->Wait(kWait).IgnoreError();
    return absl::UnavailableError(absl::StrCat(
        "cannot make a network namespace: ", line.ok() ? *line : line.status().message(), " ",
        p->err()));
  }
  Namespace ns;
  ns.holder = std::make_shared<Subprocess>(*std::move(p));
  return ns;
}

// Connects to `to` from the network namespace of process `pid`: a thread
// enters it (setns affects that thread only) and makes the socket, which
// stays in that namespace wherever it is used from.
absl::StatusOr<BlockingClient> ConnectFrom(const std::string& pid, const Address& to) {
  absl::StatusOr<BlockingClient> out = absl::UnknownError("not run");
  std::thread t([&] {
    const int fd = ::open(absl::StrCat("/proc/", pid, "/ns/net").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      out = absl::UnavailableError(absl::StrCat("open ns/net: ", std::strerror(errno)));
      return;
    }
    const int r = ::setns(fd, CLONE_NEWNET);
    const int err = errno;
    ::close(fd);
    if (r != 0) {
      out = absl::PermissionDeniedError(absl::StrCat("setns: ", std::strerror(err)));
      return;
    }
    out = BlockingClient::Connect(to);
  });
  t.join();
  return out;
}

class ChatNetnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TWIST_REQUIRE_REDIS_SERVER();
    // The hub: a user namespace (root in it, mapped to us) and a network
    // namespace; the others are made from inside it, so that it owns them.
    absl::StatusOr<Namespace> hub =
        MakeNamespace("/usr/bin/unshare", {"--user", "--map-root-user", "--net", "/bin/sh",
                                           "-c", "echo ready; exec sleep 600"});
    if (!hub.ok()) {
      GTEST_SKIP() << "network namespaces cannot be made here (unshare --user --net "
                      "refused): "
                   << hub.status();
    }
    hub_ = *std::move(hub);
    for (Namespace* ns : {&redis_ns_, &one_ns_, &two_ns_}) {
      absl::StatusOr<Namespace> made = MakeNamespace(
          "/usr/bin/nsenter",
          hub_.In({"/usr/bin/unshare", "--net", "/bin/sh", "-c", "echo ready; exec sleep 600"}));
      ASSERT_TRUE(made.ok()) << made.status();
      *ns = *std::move(made);
    }
    // A bridge in the hub, a veth pair from it into each namespace.
    std::string hub_script =
        "set -e; ip link set lo up; ip link add br0 type bridge; "
        "ip addr add 10.77.0.1/24 dev br0; ip link set br0 up; ";
    const struct {
      Namespace* ns;
      const char* name;
      const char* addr;
    } hosts[] = {{&redis_ns_, "h-redis", "10.77.0.2"},
                 {&one_ns_, "h-one", "10.77.0.3"},
                 {&two_ns_, "h-two", "10.77.0.4"}};
    for (const auto& h : hosts) {
      absl::StrAppend(&hub_script, "ip link add ", h.name, " type veth peer name eth0 netns ",
                      h.ns->pid(), "; ip link set ", h.name, " master br0 up; ");
    }
    ASSERT_TRUE(Sh(absl::StrCat("nsenter -t ", hub_.pid(),
                                " -U -n --preserve-credentials sh -c '", hub_script, "'"))
                    .ok());
    for (const auto& h : hosts) {
      ASSERT_TRUE(Sh(absl::StrCat("nsenter -t ", h.ns->pid(),
                                  " -U -n --preserve-credentials sh -c 'set -e; ip link set lo "
                                  "up; ip addr add ",
                                  h.addr, "/24 dev eth0; ip link set eth0 up'"))
                      .ok());
    }
    // Can this process reach into the hub? (setns needs CAP_SYS_ADMIN over
    // the hub's user namespace.)
    absl::StatusOr<Address> probe = testing::ParseListening("10.77.0.1:9");
    ASSERT_TRUE(probe.ok());
    absl::StatusOr<BlockingClient> c = ConnectFrom(hub_.pid(), *probe);
    if (absl::IsPermissionDenied(c.status())) {
      GTEST_SKIP() << "cannot enter the test's network namespace to connect: " << c.status();
    }
  }

  // redis-server in its namespace, on 10.77.0.2:6379.
  void StartRedis() {
    absl::StatusOr<Subprocess> p = Subprocess::Start(
        "/usr/bin/nsenter",
        redis_ns_.In({testing::RedisServerBinary(), "--port", "6379", "--bind", "10.77.0.2",
                      "--protected-mode", "no", "--save", "", "--appendonly", "no", "--dir",
                      dir_.path(""), "--daemonize", "no", "--logfile", ""}));
    ASSERT_TRUE(p.ok()) << p.status();
    for (int lines = 0; lines < 200; ++lines) {
      absl::StatusOr<std::string> line = p->ReadStdoutLine(kWait);
      ASSERT_TRUE(line.ok()) << line.status() << " " << p->err();
      if (absl::StrContains(*line, "Ready to accept connections")) break;
    }
    redis_.emplace(*std::move(p));
  }

  // A chat server in `ns`, listening on `addr`:8000.
  Subprocess StartChat(const Namespace& ns, const std::string& addr, Address* where) {
    absl::StatusOr<Subprocess> p = Subprocess::Start(
        "/usr/bin/nsenter",
        ns.In({testing::RunfilePath("examples/chat_server"),
               absl::StrCat("--listen=tcp:8000:interface=", addr),
               "--redis=redis://10.77.0.2:6379", "--redis_expiry=1.5"}));
    EXPECT_TRUE(p.ok()) << p.status();
    if (!p.ok()) abort();
    absl::StatusOr<std::string> line = p->ReadStdoutLine(kWait);
    EXPECT_TRUE(line.ok()) << line.status() << " " << p->err();
    EXPECT_EQ(*line, absl::StrCat("listening on ", addr, ":8000"));
    absl::StatusOr<Address> a = testing::ParseListening(absl::StrCat(addr, ":8000"));
    EXPECT_TRUE(a.ok());
    *where = *a;
    return *std::move(p);
  }

  std::unique_ptr<User> JoinFromHub(const Address& server, const std::string& name) {
    absl::StatusOr<BlockingClient> c = ConnectFrom(hub_.pid(), server);
    EXPECT_TRUE(c.ok()) << c.status();
    if (!c.ok()) return nullptr;
    return User::Join(*std::move(c), name);
  }

  Namespace hub_, redis_ns_, one_ns_, two_ns_;
  testing::SocketDir dir_;
  std::optional<Subprocess> redis_;
};

TEST_F(ChatNetnsTest, TwoHostsShareOneRoomThroughRedisOnAThird) {
  StartRedis();
  Address one_addr, two_addr;
  Subprocess one = StartChat(one_ns_, "10.77.0.3", &one_addr);
  Subprocess two = StartChat(two_ns_, "10.77.0.4", &two_addr);
  std::unique_ptr<User> alice = JoinFromHub(one_addr, "alice");
  ASSERT_NE(alice, nullptr);
  absl::StatusOr<BlockingClient> c = ConnectFrom(hub_.pid(), two_addr);
  ASSERT_TRUE(c.ok()) << c.status();
  User bob(*std::move(c));
  bob.send("alice\nbob\n");
  bob.expect("What's your name?");
  bob.expect("Name taken, please choose another.");
  bob.expect("Welcome, bob!");
  alice->expect("* bob has joined");
  alice->send("hello from host one\n/me waves\n");
  bob.expect("<alice> hello from host one");
  bob.expect("* alice waves");
  bob.send("hello from host two\n");
  alice->expect("<bob> hello from host two");
  EXPECT_EQ(alice->who(), "Online: alice, bob");

  // A partition: Redis's cable is pulled (its veth on the bridge goes
  // down), so no reset or close reaches anyone. Each server notices by its
  // heartbeat going unanswered for --redis_expiry, and says so once.
  const std::string away =
      "* Other servers are unreachable; only users on this server see what you say.";
  const std::string back = "* Other servers are reachable again.";
  const std::string hub_sh = absl::StrCat("nsenter -t ", hub_.pid(),
                                          " -U -n --preserve-credentials ");
  ASSERT_TRUE(Sh(hub_sh + "ip link set h-redis down").ok());
  alice->expect(away);
  bob.expect(away);
  alice->send("said during the partition\n");
  ASSERT_TRUE(Sh(hub_sh + "ip link set h-redis up").ok());
  alice->expect(back);
  bob.expect(back);
  // Across again; what was said meanwhile never arrives. (The server that
  // is back first may find the other's heartbeat expired and remove it,
  // which the other then undoes: a leave and a join, nothing else.)
  alice->send("after the partition\n");
  absl::StatusOr<std::vector<std::string>> before = bob.waitFor("<alice> after the partition");
  ASSERT_TRUE(before.ok()) << before.status();
  for (const std::string& l : *before) {
    EXPECT_TRUE(l == "* alice has left" || l == "* alice has joined") << l;
  }
  // And the other way; after this line nothing of the partition can come.
  bob.send("after it too\n");
  before = alice->waitFor("<bob> after it too");
  ASSERT_TRUE(before.ok()) << before.status();
  for (const std::string& l : *before) {
    EXPECT_TRUE(l == "* bob has left" || l == "* bob has joined") << l;
  }
  bob.send("/who\n");
  EXPECT_TRUE(bob.waitFor("Online: alice, bob").ok());

  // Host two dies: its user leaves at host one within the bound.
  two.Signal(SIGKILL);
  ASSERT_TRUE(two.Wait(kWait).ok());
  alice->expect("* bob has left");
  EXPECT_EQ(alice->who(), "Online: alice");
}

}  // namespace
}  // namespace twist
