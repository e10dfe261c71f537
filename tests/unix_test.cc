// Unix-domain stream sockets through the real reactor, on every poller:
// listenUNIX and connectUNIX, the socket file's life (stale files, live
// servers, lock files, removal on close), abstract names, addresses, peer
// credentials and connect failures. Echo over Unix sockets is in tcp_test.cc
// (StreamTransportTest, over every stream transport).

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "framework/client_factory.h"
#include "framework/errors.h"
#include "framework/protocol.h"
#include "framework/reactor.h"
#include "framework/tcp_connector.h"
#include "framework/tcp_port.h"
#include "framework/transport.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "protocols/echo.h"
#include "protocols/policies.h"
#include "tests/test_util.h"

namespace twist {
namespace {

using ::testing::HasSubstr;
using testing::BlockingClient;
using testing::RunUntil;
using testing::SocketDir;

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

bool IsSocket(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

ino_t Inode(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

std::string Contents(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Address UnixAddress(const std::string& path) {
  absl::StatusOr<Address> a = Address::Unix(path);
  EXPECT_TRUE(a.ok()) << a.status();
  return a.ok() ? *a : Address();
}

// A socket bound to `path` and closed without removing its file: what a
// server killed with SIGKILL leaves behind.
void LeaveStaleSocket(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  Address a = UnixAddress(path);
  ASSERT_EQ(::bind(fd, a.sockaddr_ptr(), a.length()), 0) << strerror(errno);
  ASSERT_EQ(::listen(fd, 1), 0);
  ::close(fd);
  ASSERT_TRUE(IsSocket(path));
}

// Sends `text` on `c` and expects it back from the echo server `reactor`
// runs.
void ExpectEcho(Reactor& reactor, BlockingClient& c, const std::string& text) {
  ASSERT_TRUE(c.SendAll(text).ok());
  absl::StatusOr<std::string> got;
  ASSERT_TRUE(testing::RunBeside(reactor, [&] { got = c.ReadExactly(text.size()); }));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, text);
}

// A raw listening socket on `path` that accepts only when told: another
// server, or one whose backlog the test fills.
class RawListener {
 public:
  RawListener(const std::string& path, int backlog) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    Address a = UnixAddress(path);
    EXPECT_EQ(::bind(fd_, a.sockaddr_ptr(), a.length()), 0) << strerror(errno);
    EXPECT_EQ(::listen(fd_, backlog), 0);
  }
  ~RawListener() { ::close(fd_); }
  // Accepts one pending connection and closes it; false if none.
  bool AcceptOne() {
    int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return false;
    ::close(c);
    return true;
  }

 private:
  int fd_ = -1;
};

// Non-blocking connects to `path` until one is refused for a full backlog
// (EAGAIN); returns the connected sockets (to close), empty on failure.
std::vector<int> FillBacklog(const std::string& path) {
  Address a = UnixAddress(path);
  std::vector<int> fds;
  for (int i = 0; i < 64; ++i) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (::connect(fd, a.sockaddr_ptr(), a.length()) == 0) {
      fds.push_back(fd);
      continue;
    }
    const int error = errno;
    ::close(fd);
    if (error == EAGAIN) return fds;
    ADD_FAILURE() << "connect: " << strerror(error);
    break;
  }
  ADD_FAILURE() << "the backlog never filled";
  for (int fd : fds) ::close(fd);
  return {};
}

// What the server's and the client's protocols saw.
struct Seen {
  std::string built_for;  // the address buildProtocol() got
  std::string host, peer;
  absl::StatusOr<PeerCredentials> creds = absl::UnknownError("not asked");
  absl::Status creds_after_close = absl::UnknownError("not asked");
  bool tcp = false, unix_transport = false;
  std::string received;
  bool made = false, lost = false;
};

class Looking : public Protocol {
 public:
  explicit Looking(Seen* seen, std::string greeting = "")
      : seen_(seen), greeting_(std::move(greeting)) {}
  void connectionMade() override {
    seen_->made = true;
    seen_->host = transport()->getHost().ToString();
    seen_->peer = transport()->getPeer().ToString();
    seen_->tcp = dynamic_cast<TcpTransport*>(transport()) != nullptr;
    auto* local = dynamic_cast<UnixTransport*>(transport());
    seen_->unix_transport = local != nullptr;
    if (local != nullptr) seen_->creds = local->getPeerCredentials();
    if (!greeting_.empty()) transport()->write(greeting_);
  }
  void dataReceived(absl::string_view data) override {
    seen_->received.append(data.data(), data.size());
  }
  void connectionLost(const absl::Status&) override {
    seen_->lost = true;
    if (auto* local = dynamic_cast<UnixTransport*>(transport())) {
      seen_->creds_after_close = local->getPeerCredentials().status();
    }
  }

 private:
  Seen* seen_;
  std::string greeting_;
};

class LookingFactory : public Factory {
 public:
  explicit LookingFactory(Seen* seen) : seen_(seen) {}
  std::unique_ptr<Protocol> buildProtocol(const Address& addr) override {
    seen_->built_for = addr.ToString();
    return std::make_unique<Looking>(seen_);
  }

 private:
  Seen* seen_;
};

// How a connectUNIX attempt went.
struct Attempt {
  std::vector<std::string> events;
  absl::Status failed = absl::UnknownError("no failure");
  absl::Status lost = absl::UnknownError("not lost");
  Seen seen;
};

class AttemptFactory : public ClientFactory {
 public:
  explicit AttemptFactory(Attempt* a, std::string greeting = "")
      : a_(a), greeting_(std::move(greeting)) {}
  std::unique_ptr<Protocol> buildProtocol(const Address& addr) override {
    a_->seen.built_for = addr.ToString();
    return std::make_unique<Looking>(&a_->seen, greeting_);
  }
  void startedConnecting(Connector*) override { a_->events.push_back("started"); }
  void clientConnectionFailed(Connector*, const absl::Status& reason) override {
    a_->events.push_back("failed");
    a_->failed = reason;
  }
  void clientConnectionLost(Connector*, const absl::Status& reason) override {
    a_->events.push_back("lost");
    a_->lost = reason;
  }

 private:
  Attempt* a_;
  std::string greeting_;
};

using UnixTest = testing::PollerTest;

// Echo over a Unix socket (byte-exact, many clients, half-close...) is in
// tcp_test.cc's StreamTransportTest, which runs over every stream
// transport; these cases are what only a Unix socket has.

TEST_P(UnixTest, HostAndPeerAreThePathOrUnnamed) {
  SocketDir dir;
  const std::string path = dir.path("names.sock");
  Seen server;
  LookingFactory factory(&server);
  Attempt client;
  AttemptFactory client_factory(&client);
  auto reactor = NewReactor();
  ASSERT_TRUE(reactor->listenUNIX(path, &factory).ok());
  Connector* c = reactor->connectUNIX(path, &client_factory);
  EXPECT_EQ(c->getDestination(), "unix:" + path);
  ASSERT_TRUE(RunUntil(*reactor, [&] { return server.made && client.seen.made; }));
  // Twisted's UNIXAddress: the server end is at the path, its client
  // unnamed; the client end is unnamed, its peer the path.
  EXPECT_EQ(server.host, "unix:" + path);
  EXPECT_EQ(server.peer, "unix:(unnamed)");
  EXPECT_EQ(server.built_for, "unix:(unnamed)");
  EXPECT_EQ(client.seen.host, "unix:(unnamed)");
  EXPECT_EQ(client.seen.peer, "unix:" + path);
  EXPECT_EQ(client.seen.built_for, "unix:" + path);

  // A client that binds a name of its own is seen by it.
  const std::string named = dir.path("client.sock");
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  Address me = UnixAddress(named);
  ASSERT_EQ(::bind(fd, me.sockaddr_ptr(), me.length()), 0);
  server = Seen();
  Address to = UnixAddress(path);
  ASSERT_EQ(::connect(fd, to.sockaddr_ptr(), to.length()), 0);
  EXPECT_TRUE(RunUntil(*reactor, [&] { return server.made; }));
  EXPECT_EQ(server.peer, "unix:" + named);
  EXPECT_EQ(server.built_for, "unix:" + named);
  ::close(fd);
}

TEST_P(UnixTest, PeerCredentialsNameTheOtherProcess) {
  SocketDir dir;
  const std::string path = dir.path("creds.sock");
  Seen server;
  LookingFactory factory(&server);
  auto reactor = NewReactor();
  ASSERT_TRUE(reactor->listenUNIX(path, &factory).ok());
  // Another process connects, so that its pid cannot be ours by accident.
  const Address to = UnixAddress(path);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    if (::connect(fd, to.sockaddr_ptr(), to.length()) != 0) _exit(1);
    char b;
    (void)::read(fd, &b, 1);  // until the server closes
    _exit(0);
  }
  ASSERT_TRUE(RunUntil(*reactor, [&] { return server.made; }));
  ASSERT_TRUE(server.creds.ok()) << server.creds.status();
  EXPECT_EQ(server.creds->pid, child);
  EXPECT_EQ(server.creds->uid, getuid());
  EXPECT_EQ(server.creds->gid, getgid());
  EXPECT_TRUE(server.unix_transport);
  EXPECT_FALSE(server.tcp) << "a Unix connection is no TcpTransport";
  reactor.reset();  // closes the server's end: the child's read ends
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_TRUE(server.lost);
  EXPECT_TRUE(absl::IsFailedPrecondition(server.creds_after_close))
      << server.creds_after_close;
}

TEST_P(UnixTest, TheClientSeesTheServersCredentials) {
  SocketDir dir;
  const std::string path = dir.path("creds2.sock");
  Seen server;
  LookingFactory factory(&server);
  Attempt client;
  AttemptFactory client_factory(&client);
  auto reactor = NewReactor();
  ASSERT_TRUE(reactor->listenUNIX(path, &factory).ok());
  reactor->connectUNIX(path, &client_factory);
  ASSERT_TRUE(RunUntil(*reactor, [&] { return client.seen.made; }));
  ASSERT_TRUE(client.seen.creds.ok()) << client.seen.creds.status();
  EXPECT_EQ(client.seen.creds->pid, getpid());
  EXPECT_EQ(client.seen.creds->uid, getuid());
  EXPECT_EQ(client.seen.creds->gid, getgid());
  EXPECT_FALSE(client.seen.tcp);
}

TEST_P(UnixTest, ATcpConnectionIsNoUnixTransport) {
  Seen server;
  LookingFactory factory(&server);
  auto reactor = NewReactor();
  Address addr = Listen(&factory);
  BlockingClient c = Connect(addr);
  ASSERT_TRUE(RunUntil(*reactor, [&] { return server.made; }));
  EXPECT_TRUE(server.tcp);
  EXPECT_FALSE(server.unix_transport);
}

TEST_P(UnixTest, AWrapperPassesCredentialsOnAndRefusesTcpOptions) {
  SocketDir dir;
  const std::string path = dir.path("wrapped.sock");
  struct Saw {
    absl::StatusOr<PeerCredentials> creds = absl::UnknownError("not asked");
    absl::Status nodelay = absl::UnknownError("not asked");
  } saw;
  class Asks : public Protocol {
   public:
    explicit Asks(Saw* s) : s_(s) {}
    void connectionMade() override {
      s_->creds = dynamic_cast<UnixTransport*>(transport())->getPeerCredentials();
      s_->nodelay = dynamic_cast<TcpTransport*>(transport())->setTcpNoDelay(true);
    }

   private:
    Saw* s_;
  };
  class Wrapping : public Factory {
   public:
    explicit Wrapping(Saw* s) : s_(s) {}
    std::unique_ptr<Protocol> buildProtocol(const Address&) override {
      return std::make_unique<ProtocolWrapper>(std::make_unique<Asks>(s_));
    }

   private:
    Saw* s_;
  } factory(&saw);
  auto reactor = NewReactor();
  ASSERT_TRUE(reactor->listenUNIX(path, &factory).ok());
  BlockingClient c = Connect(UnixAddress(path));
  ASSERT_TRUE(RunUntil(*reactor, [&] { return !absl::IsUnknown(saw.nodelay); }));
  ASSERT_TRUE(saw.creds.ok()) << saw.creds.status();
  EXPECT_EQ(saw.creds->pid, getpid());
  EXPECT_TRUE(absl::IsFailedPrecondition(saw.nodelay)) << saw.nodelay;
}

TEST_P(UnixTest, AStaleSocketFileIsReplaced) {
  SocketDir dir;
  const std::string path = dir.path("stale.sock");
  LeaveStaleSocket(path);
  auto factory = Factory::forProtocol<Echo>();
  auto reactor = NewReactor();
  absl::StatusOr<Port*> port = reactor->listenUNIX(path, factory.get());
  ASSERT_TRUE(port.ok()) << port.status();
  BlockingClient c = Connect(UnixAddress(path));
  ExpectEcho(*reactor, c, "x");
}

TEST_P(UnixTest, ALiveServersPathIsNeverTaken) {
  SocketDir dir;
  const std::string path = dir.path("live.sock");
  auto factory = Factory::forProtocol<Echo>();
  auto reactor = NewReactor();
  absl::StatusOr<Port*> first = reactor->listenUNIX(path, factory.get());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ((*first)->getHost().ToString(), "unix:" + path);
  EXPECT_EQ((*first)->getHost().path(), path);
  EXPECT_TRUE(IsSocket(path));
  EXPECT_FALSE(Exists(path + ".lock"));  // no lock unless asked
  const ino_t mine = Inode(path);
  absl::StatusOr<Port*> second = reactor->listenUNIX(path, factory.get());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::ErrnoToStatus(EADDRINUSE, "").code());
  EXPECT_THAT(second.status().message(), HasSubstr("cannot listen on unix:" + path));
  EXPECT_THAT(second.status().message(), HasSubstr("a server is listening there"));
  EXPECT_EQ(Inode(path), mine);
  // Nor another process's (a raw listener here), with or without a lock.
  const std::string other = dir.path("other.sock");
  RawListener raw(other, 5);
  EXPECT_FALSE(reactor->listenUNIX(other, factory.get()).ok());
  absl::StatusOr<Port*> locked = reactor->listenUNIX(other, factory.get(), 50, 0666, true);
  EXPECT_FALSE(locked.ok());
  EXPECT_TRUE(IsSocket(other));
  EXPECT_FALSE(Exists(other + ".lock")) << "a failed listen leaves no lock file";
  // The first port still serves.
  BlockingClient c = Connect(UnixAddress(path));
  ExpectEcho(*reactor, c, "y");
}

TEST_P(UnixTest, APathThatIsNotASocketIsLeftAlone) {
  SocketDir dir;
  const std::string path = dir.path("file.txt");
  { std::ofstream(path) << "precious"; }
  auto factory = Factory::forProtocol<Echo>();
  auto reactor = NewReactor();
  absl::StatusOr<Port*> port = reactor->listenUNIX(path, factory.get());
  ASSERT_FALSE(port.ok());
  EXPECT_THAT(port.status().message(), HasSubstr("exists and is not a socket"));
  EXPECT_EQ(Contents(path), "precious");
}

TEST_P(UnixTest, TheLockFileHoldsThePidAndKeepsASecondServerOut) {
  SocketDir dir;
  const std::string path = dir.path("locked.sock");
  auto factory = Factory::forProtocol<Echo>();
  auto reactor = NewReactor();
  absl::StatusOr<Port*> first = reactor->listenUNIX(path, factory.get(), 50, 0666, true);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(Contents(path + ".lock"), absl::StrCat(getpid(), "\n"));
  const ino_t sock = Inode(path);
  const ino_t lock = Inode(path + ".lock");

  absl::StatusOr<Port*> second = reactor->listenUNIX(path, factory.get(), 50, 0666, true);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::ErrnoToStatus(EADDRINUSE, "").code());
  EXPECT_THAT(second.status().message(),
              HasSubstr(absl::StrCat("locked by process ", getpid(), " (", path, ".lock)")));
  EXPECT_EQ(Inode(path), sock);
  EXPECT_EQ(Inode(path + ".lock"), lock);

  (*first)->stopListening();
  EXPECT_FALSE(Exists(path));
  EXPECT_FALSE(Exists(path + ".lock"));
  // Free again.
  EXPECT_TRUE(reactor->listenUNIX(path, factory.get(), 50, 0666, true).ok());
}

TEST_P(UnixTest, AServerHoldingTheLockInAnotherProcessKeepsItsPath) {
  SocketDir dir;
  const std::string path = dir.path("held.sock");
  const std::string lock = path + ".lock";
  // The other "server": takes the lock, says so through a pipe, and waits.
  int ready[2], release[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(release), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int fd = ::open(lock.c_str(), O_RDWR | O_CREAT, 0644);
    if (fd < 0 || ::flock(fd, LOCK_EX) != 0) _exit(1);
    std::string pid = absl::StrCat(getpid(), "\n");
    if (::write(fd, pid.data(), pid.size()) < 0) _exit(1);
    char b = 'r';
    if (::write(ready[1], &b, 1) != 1) _exit(1);
    (void)::read(release[0], &b, 1);
    _exit(0);
  }
  char b;
  ASSERT_EQ(::read(ready[0], &b, 1), 1);
  LeaveStaleSocket(path);  // even a stale socket is not replaced under its lock
  const ino_t stale = Inode(path);
  auto factory = Factory::forProtocol<Echo>();
  auto reactor = NewReactor();
  absl::StatusOr<Port*> port = reactor->listenUNIX(path, factory.get(), 50, 0666, true);
  ASSERT_FALSE(port.ok());
  EXPECT_THAT(port.status().message(), HasSubstr(absl::StrCat("locked by process ", child)));
  EXPECT_EQ(Inode(path), stale);
  EXPECT_TRUE(Exists(lock));
  // Once that process is gone, its lock is free: no stale lock to clean.
  ASSERT_EQ(::write(release[1], "x", 1), 1);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  for (int fd : {ready[0], ready[1], release[0], release[1]}) ::close(fd);
  port = reactor->listenUNIX(path, factory.get(), 50, 0666, true);
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_EQ(Contents(lock), absl::StrCat(getpid(), "\n"));
}

TEST_P(UnixTest, ALeftoverLockFileWithoutItsProcessIsTakenOver) {
  SocketDir dir;
  const std::string path = dir.path("leftover.sock");
  { std::ofstream(path + ".lock") << "999999999\n"; }
  LeaveStaleSocket(path);
  auto factory = Factory::forProtocol<Echo>();
  auto reactor = NewReactor();
  absl::StatusOr<Port*> port = reactor->listenUNIX(path, factory.get(), 50, 0666, true);
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_EQ(Contents(path + ".lock"), absl::StrCat(getpid(), "\n"));
}

TEST_P(UnixTest, StopListeningRemovesOnlyTheFileThePortCreated) {
  SocketDir dir;
  const std::string path = dir.path("mine.sock");
  auto factory = Factory::forProtocol<Echo>();
  auto reactor = NewReactor();
  absl::StatusOr<Port*> port = reactor->listenUNIX(path, factory.get());
  ASSERT_TRUE(port.ok()) << port.status();
  (*port)->stopListening();
  EXPECT_FALSE(Exists(path));

  // Another server replaced our file meanwhile: it is left in place.
  port = reactor->listenUNIX(path, factory.get());
  ASSERT_TRUE(port.ok()) << port.status();
  ASSERT_EQ(::unlink(path.c_str()), 0);
  RawListener other(path, 5);
  const ino_t theirs = Inode(path);
  (*port)->stopListening();
  EXPECT_TRUE(IsSocket(path));
  EXPECT_EQ(Inode(path), theirs);
}

TEST_P(UnixTest, StopAndDestructionRemoveTheSocketAndLockFiles) {
  SocketDir dir;
  const std::string a = dir.path("a.sock");
  const std::string b = dir.path("b.sock");
  auto factory = Factory::forProtocol<Echo>();
  {
    auto reactor = NewReactor();
    ASSERT_TRUE(reactor->listenUNIX(a, factory.get(), 50, 0666, true).ok());
    ASSERT_TRUE(reactor->listenUNIX(b, factory.get()).ok());
    reactor->callLater(absl::ZeroDuration(), [&] { reactor->stop(); });
    reactor->run();
    EXPECT_FALSE(Exists(a));
    EXPECT_FALSE(Exists(a + ".lock"));
    EXPECT_FALSE(Exists(b));
  }
  {
    auto reactor = NewReactor();
    ASSERT_TRUE(reactor->listenUNIX(a, factory.get(), 50, 0666, true).ok());
    EXPECT_TRUE(Exists(a));
    EXPECT_TRUE(Exists(a + ".lock"));
    reactor.reset();
    EXPECT_FALSE(Exists(a));
    EXPECT_FALSE(Exists(a + ".lock"));
  }
}

TEST_P(UnixTest, SigtermRemovesTheSocketAndLockFiles) {
  SocketDir dir;
  const std::string path = dir.path("term.sock");
  auto factory = Factory::forProtocol<Echo>();
  sigset_t before;
  pthread_sigmask(SIG_SETMASK, nullptr, &before);
  {
    auto reactor = NewReactor();
    ASSERT_TRUE(reactor->installSignalHandlers({SIGTERM}).ok());
    ASSERT_TRUE(reactor->listenUNIX(path, factory.get(), 50, 0666, true).ok());
    // To this thread, where SIGTERM is now blocked: the signalfd reads it.
    reactor->callLater(absl::ZeroDuration(), [] { pthread_kill(pthread_self(), SIGTERM); });
    reactor->callLater(testing::kTimeout, [&] {
      ADD_FAILURE() << "SIGTERM did not stop the reactor";
      reactor->stop();
    });
    reactor->run();
    EXPECT_FALSE(Exists(path));
    EXPECT_FALSE(Exists(path + ".lock"));
  }
  pthread_sigmask(SIG_SETMASK, &before, nullptr);
}

TEST_P(UnixTest, TheModeIsTheSocketFilesPermissions) {
  SocketDir dir;
  auto factory = Factory::forProtocol<Echo>();
  auto reactor = NewReactor();
  for (int mode : {0600, 0660, 0666}) {
    const std::string path = dir.path(absl::StrCat("mode", mode, ".sock"));
    ASSERT_TRUE(reactor->listenUNIX(path, factory.get(), 50, mode).ok());
    struct stat st;
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, static_cast<mode_t>(mode)) << path;
  }
}

TEST_P(UnixTest, AbstractNamesHaveNoFileAndAreFreedWithTheSocket) {
  const std::string name = SocketDir::AbstractName("echo");
  auto factory = Factory::forProtocol<Echo>();
  Attempt client;
  AttemptFactory client_factory(&client, "abstract");
  auto reactor = NewReactor();
  absl::StatusOr<Port*> port = reactor->listenUNIX(name, factory.get(), 50, 0600, true);
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_EQ((*port)->getHost().ToString(), "unix:" + name);
  EXPECT_TRUE((*port)->getHost().isAbstract());
  EXPECT_FALSE(Exists(name)) << "an abstract name makes no file";
  EXPECT_FALSE(Exists(name + ".lock"));

  reactor->connectUNIX(name, &client_factory);
  ASSERT_TRUE(RunUntil(*reactor, [&] { return client.seen.received == "abstract"; }));
  EXPECT_EQ(client.seen.peer, "unix:" + name);

  absl::StatusOr<Port*> again = reactor->listenUNIX(name, factory.get());
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), absl::ErrnoToStatus(EADDRINUSE, "").code());
  EXPECT_THAT(again.status().message(), HasSubstr("cannot listen on unix:" + name));
  (*port)->stopListening();
  EXPECT_TRUE(reactor->listenUNIX(name, factory.get()).ok()) << "the kernel freed the name";
}

TEST_P(UnixTest, BadPathsAreInvalidArguments) {
  auto factory = Factory::forProtocol<Echo>();
  Attempt client;
  AttemptFactory client_factory(&client);
  auto reactor = NewReactor();
  const std::string too_long = "/tmp/" + std::string(103, 'x');  // 108 bytes
  for (const std::string& path : {std::string(), std::string("@"), too_long}) {
    absl::StatusOr<Port*> port = reactor->listenUNIX(path, factory.get());
    ASSERT_FALSE(port.ok()) << path;
    EXPECT_TRUE(absl::IsInvalidArgument(port.status())) << port.status();
    EXPECT_THAT(port.status().message(), HasSubstr("cannot listen on unix:"));
  }
  EXPECT_TRUE(Address::Unix("/tmp/" + std::string(102, 'x')).ok());  // 107: fits
  reactor->connectUNIX(too_long, &client_factory);
  ASSERT_TRUE(RunUntil(*reactor, [&] { return !client.events.empty() &&
                                              client.events.back() == "failed"; }));
  EXPECT_TRUE(absl::IsInvalidArgument(client.failed)) << client.failed;
}

TEST_P(UnixTest, ConnectingWhereNobodyListensIsRefusedNamingThePath) {
  SocketDir dir;
  for (bool stale : {false, true}) {
    const std::string path = dir.path(stale ? "stale.sock" : "none.sock");
    if (stale) LeaveStaleSocket(path);
    Attempt client;
    AttemptFactory client_factory(&client);
    auto reactor = NewReactor();
    reactor->connectUNIX(path, &client_factory, absl::Seconds(5));
    ASSERT_TRUE(RunUntil(*reactor, [&] { return client.events.size() == 2; }));
    EXPECT_EQ(client.events, (std::vector<std::string>{"started", "failed"}));
    EXPECT_TRUE(IsConnectionRefused(client.failed)) << client.failed;
    EXPECT_THAT(std::string(client.failed.message()),
                HasSubstr("connection refused by unix:" + path));
    EXPECT_FALSE(client.seen.made);
  }
}

TEST_P(UnixTest, AFullBacklogIsWaitedOutUntilTheTimeout) {
  SocketDir dir;
  const std::string path = dir.path("full.sock");
  RawListener listener(path, 0);
  std::vector<int> queued = FillBacklog(path);
  ASSERT_FALSE(queued.empty());
  Attempt late, patient;
  AttemptFactory late_factory(&late), patient_factory(&patient);
  auto reactor = NewReactor();

  // Nobody makes room: the attempt ends at its timeout.
  reactor->connectUNIX(path, &late_factory, absl::Milliseconds(200));
  ASSERT_TRUE(RunUntil(*reactor, [&] { return late.events.size() == 2; }));
  EXPECT_TRUE(IsConnectTimeout(late.failed)) << late.failed;
  EXPECT_THAT(std::string(late.failed.message()), HasSubstr("unix:" + path));

  // Room is made after the first try: the next one gets in.
  reactor->connectUNIX(path, &patient_factory, testing::kTimeout);
  ASSERT_EQ(patient.events, std::vector<std::string>{"started"});
  ASSERT_TRUE(listener.AcceptOne());
  EXPECT_TRUE(RunUntil(*reactor, [&] { return patient.seen.made; }));
  EXPECT_EQ(patient.events, std::vector<std::string>{"started"});
  for (int fd : queued) ::close(fd);
}

TEST_P(UnixTest, AFailedListenLeavesNothingBehind) {
  SocketDir dir;
  const std::string path = dir.path("nodir/x.sock");  // no such directory
  auto factory = Factory::forProtocol<Echo>();
  auto reactor = NewReactor();
  absl::StatusOr<Port*> port = reactor->listenUNIX(path, factory.get(), 50, 0666, true);
  ASSERT_FALSE(port.ok());
  EXPECT_THAT(port.status().message(), HasSubstr("cannot listen on unix:" + path));
  EXPECT_FALSE(Exists(path + ".lock"));
}

INSTANTIATE_TEST_SUITE_P(AllPollers, UnixTest, ::testing::ValuesIn(PollerNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace twist
