// The finger_server program as a user runs it: plans, the user list, names
// that would leave the directory, and above all that a plan whose read
// blocks (a named pipe) is read on the thread pool while other clients are
// answered, and that a client gone meanwhile is safe.

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "framework/address.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using testing::BlockingClient;

constexpr absl::Duration kWait = absl::Seconds(20);

class FingerServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_.path("alice")) << "Working on twist.\n";
    std::ofstream(dir_.path("bob")) << "Gone fishing.";  // no newline
    ASSERT_EQ(::symlink("/etc/passwd", dir_.path("eve").c_str()), 0);
  }

  absl::StatusOr<testing::ServerProgram> Start() {
    return testing::StartServerProgram("examples/finger_server",
                                       {absl::StrCat("--plans=", dir_.path(""))});
  }

  // One query, the whole answer (the server closes after it).
  static std::string Finger(const Address& server, absl::string_view query) {
    absl::StatusOr<BlockingClient> c = BlockingClient::Connect(server);
    if (!c.ok()) return std::string(c.status().message());
    if (absl::Status s = c->SendAll(query); !s.ok()) return std::string(s.message());
    absl::StatusOr<std::string> reply = c->ReadToEof();
    return reply.ok() ? *reply : std::string(reply.status().message());
  }

  static void StopCleanly(testing::Subprocess& p) {
    p.Signal(SIGTERM);
    absl::StatusOr<int> status = p.Wait(kWait);
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_TRUE(WIFEXITED(*status)) << "killed by signal " << WTERMSIG(*status);
    EXPECT_EQ(WEXITSTATUS(*status), 0);
    EXPECT_EQ(p.err(), "");
  }

  testing::SocketDir dir_;
};

TEST_F(FingerServerTest, PlansUsersAndNamesOutsideTheDirectory) {
  absl::StatusOr<testing::ServerProgram> server = Start();
  ASSERT_TRUE(server.ok()) << server.status();
  const Address& at = server->address;
  EXPECT_EQ(Finger(at, "alice\r\n"), "Working on twist.\n");
  EXPECT_EQ(Finger(at, "bob\n"), "Gone fishing.\r\n");
  EXPECT_EQ(Finger(at, "/W alice\r\n"), "Working on twist.\n");
  EXPECT_EQ(Finger(at, "\r\n"), "alice\r\nbob\r\neve\r\n");
  EXPECT_EQ(Finger(at, "nobody\r\n"), "No such user\r\n");
  EXPECT_EQ(Finger(at, "eve\r\n"), "No such user\r\n") << "followed a symbolic link";
  EXPECT_EQ(Finger(at, "../alice\r\n"), "No such user\r\n");
  EXPECT_EQ(Finger(at, ".\r\n"), "No such user\r\n");
  StopCleanly(server->process);
}

// The plan is a named pipe: the server's open() blocks until the test
// opens the write end. Meanwhile another client is answered in full, and
// the waiting one has heard nothing; then the plan arrives.
TEST_F(FingerServerTest, ABlockingReadDoesNotHoldUpOtherClients) {
  ASSERT_EQ(::mkfifo(dir_.path("slow").c_str(), 0600), 0) << strerror(errno);
  absl::StatusOr<testing::ServerProgram> server = Start();
  ASSERT_TRUE(server.ok()) << server.status();
  absl::StatusOr<BlockingClient> waiting = BlockingClient::Connect(server->address);
  ASSERT_TRUE(waiting.ok()) << waiting.status();
  ASSERT_TRUE(waiting->SendAll("slow\r\n").ok());

  EXPECT_EQ(Finger(server->address, "alice\r\n"), "Working on twist.\n");
  char byte;
  EXPECT_EQ(::recv(waiting->fd(), &byte, 1, MSG_DONTWAIT), -1) << "answered before the plan";
  EXPECT_EQ(errno, EAGAIN);

  // Blocks until the server's pool thread has the pipe open for reading:
  // so the read really was under way.
  int w = ::open(dir_.path("slow").c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(w, 0) << strerror(errno);
  ASSERT_EQ(::write(w, "Slow but here.\n", 15), 15);
  ::close(w);
  absl::StatusOr<std::string> reply = waiting->ReadToEof();
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(*reply, "Slow but here.\n");
  StopCleanly(server->process);
}

// The client leaves while its plan is being read: the read finishes on its
// thread, its answer is dropped (the protocol is gone), and the server goes
// on serving and stops cleanly (under ASan: no use after free).
TEST_F(FingerServerTest, AClientGoneDuringTheReadIsSafe) {
  ASSERT_EQ(::mkfifo(dir_.path("slow").c_str(), 0600), 0) << strerror(errno);
  absl::StatusOr<testing::ServerProgram> server = Start();
  ASSERT_TRUE(server.ok()) << server.status();
  {
    absl::StatusOr<BlockingClient> leaving = BlockingClient::Connect(server->address);
    ASSERT_TRUE(leaving.ok()) << leaving.status();
    ASSERT_TRUE(leaving->SendAll("slow\r\n").ok());
    int w = ::open(dir_.path("slow").c_str(), O_WRONLY | O_CLOEXEC);  // read under way
    ASSERT_GE(w, 0) << strerror(errno);
    leaving->Reset();
    // The server sees the reset before the plan: a client after it is
    // answered only once the reset was handled (one loop, in order).
    EXPECT_EQ(Finger(server->address, "alice\r\n"), "Working on twist.\n");
    ASSERT_EQ(::write(w, "late\n", 5), 5);
    ::close(w);
  }
  EXPECT_EQ(Finger(server->address, "bob\r\n"), "Gone fishing.\r\n");
  StopCleanly(server->process);
}

TEST(FingerServerFlagsTest, PlansIsRequiredAndMustBeADirectory) {
  testing::ExpectOneLineFailure(
      "examples/finger_server", {},
      "finger_server: --plans is required: a directory with one file per user");
  testing::ExpectOneLineFailure("examples/finger_server", {"--plans=/no/such/dir"},
                                "finger_server: --plans /no/such/dir: No such file or directory");
  testing::ExpectOneLineFailure("examples/finger_server", {"--plans=/etc/passwd"},
                                "finger_server: --plans /etc/passwd: not a directory");
}

}  // namespace
}  // namespace twist
