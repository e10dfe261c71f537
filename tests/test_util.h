#ifndef TWIST_TESTS_TEST_UTIL_H_
#define TWIST_TESTS_TEST_UTIL_H_

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>
#include <sys/types.h>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "framework/address.h"
#include "framework/clock.h"
#include "framework/reactor.h"
#include "framework/tcp_port.h"
#include "gtest/gtest.h"

namespace twist {
namespace testing {

/// Every wait in the tests is bounded by this; a hang fails instead of
/// timing out the whole test binary.
inline constexpr absl::Duration kTimeout = absl::Seconds(20);

/// A reactor on `poller`; aborts the test binary if it cannot be made.
std::unique_ptr<Reactor> MakeReactor(const std::string& poller,
                                     Clock* clock = nullptr);

/// Turns the loop until pred() holds or `timeout` passes; returns pred().
bool RunUntil(Reactor& reactor, absl::FunctionRef<bool()> pred,
              absl::Duration timeout = kTimeout);

/// Runs `io` (blocking calls of a BlockingClient, each bounded by kTimeout)
/// on a thread of its own while this thread turns `reactor`'s loop, until
/// `io` returns or `timeout` passes; then waits for `io` to return. Returns
/// whether it did so within `timeout`.
bool RunBeside(Reactor& reactor, absl::FunctionRef<void()> io,
               absl::Duration timeout = kTimeout);

/// Pins a socket's SO_SNDBUF and SO_RCVBUF to `bytes` (the kernel doubles
/// it), which turns Linux's autotuning off: loopback send buffers otherwise
/// grow to tcp_wmem's maximum (4 MiB), so how much a peer that does not read
/// absorbs would depend on the machine's history. On a listening socket it
/// holds for every connection accepted from it. Fails the test on error.
void PinSocketBuffers(int fd, int bytes);

/// What tests that need a peer's data to back up into twist pin both ends
/// to: the kernel then holds at most a few hundred KiB of it.
inline constexpr int kSmallBuffers = 64 * 1024;

/// A plain blocking socket for the peer side of a test, with every call
/// bounded by kTimeout (SO_RCVTIMEO / SO_SNDTIMEO). Closes on destruction.
class BlockingClient {
 public:
  /// `pinned_buffers` > 0: PinSocketBuffers() before connecting. To a
  /// Unix socket, the client binds a name of the kernel's choosing first
  /// (autobind: "unix:@" and 5 hex digits), which ServerEndOf needs.
  static absl::StatusOr<BlockingClient> Connect(const Address& to,
                                                int pinned_buffers = 0);
  BlockingClient(BlockingClient&& other) noexcept;
  BlockingClient& operator=(BlockingClient&& other) noexcept;
  ~BlockingClient();

  /// Every call below fails with DEADLINE_EXCEEDED when kTimeout passes.
  absl::Status SendAll(absl::string_view data);
  /// Reads exactly n bytes, or fails (EOF, reset, timeout).
  absl::StatusOr<std::string> ReadExactly(size_t n);
  /// As many bytes as `want` has, or why not, as text: for
  /// `EXPECT_EQ(c.ReadExpected("Bye!\r\n"), "Bye!\r\n")`, which then shows
  /// the failure in place of the bytes.
  std::string ReadExpected(absl::string_view want) {
    absl::StatusOr<std::string> got = ReadExactly(want.size());
    return got.ok() ? *got : std::string(got.status().message());
  }
  /// Reads until EOF; fails on reset or timeout. Stops at `max` bytes.
  absl::StatusOr<std::string> ReadToEof(size_t max = 1 << 30);
  /// Reads until EOF or reset, whichever comes first; returns what arrived.
  /// Fails with DEADLINE_EXCEEDED if the peer has not closed within
  /// kTimeout: a connection that stays open is an error, not "".
  absl::StatusOr<std::string> ReadUntilClosed();
  void ShutdownWrite();
  /// Closes with SO_LINGER 0, which sends a TCP reset.
  void Reset();
  int fd() const { return fd_; }

 private:
  explicit BlockingClient(int fd) : fd_(fd) {}
  int fd_ = -1;
};

/// A port on 127.0.0.1 held by a listening socket for this object's life.
class BusyPort {
 public:
  BusyPort();
  ~BusyPort();
  BusyPort(const BusyPort&) = delete;
  BusyPort& operator=(const BusyPort&) = delete;
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

/// The descriptor of the server's end of `client`'s connection, when the
/// server runs in this process; -1 if there is none (yet).
int ServerEndOf(const BlockingClient& client);

/// Bytes received on `fd` and not read yet (FIONREAD); -1 on error.
int PendingBytes(int fd);

/// Open descriptors of process `pid` (0: this process), from /proc.
int OpenDescriptors(pid_t pid = 0);

/// A field of /proc/PID/status in KiB ("VmRSS", "VmHWM"); -1 if absent.
int64_t ProcStatusKiB(pid_t pid, absl::string_view field);

/// A directory for Unix socket files, made under TEST_TMPDIR (or /tmp) and
/// removed with its contents on destruction. sun_path holds 107 bytes, and
/// Bazel's TEST_TMPDIR is often deeper than that leaves room for: then the
/// paths go through a short symlink in /tmp to the directory (bind() and
/// connect() follow it), removed too.
class SocketDir {
 public:
  SocketDir();
  ~SocketDir();
  SocketDir(const SocketDir&) = delete;
  SocketDir& operator=(const SocketDir&) = delete;
  /// dir/name, for a socket or any other file.
  std::string path(absl::string_view name) const;
  /// "@twist-PID-N-name": an abstract name no other test process uses.
  static std::string AbstractName(absl::string_view name);

 private:
  std::string real_;  // under TEST_TMPDIR
  std::string link_;  // the short symlink, if one was needed
  std::string dir_;   // what path() uses
};

/// Whether a socket can bind ::1 here (probed once per process); tests
/// that need IPv6 skip otherwise.
bool HasIPv6Loopback();

/// The GTEST_SKIP message of a tcp6 case where there is no ::1.
inline constexpr char kNoIPv6Loopback[] =
    "no IPv6 loopback here (cannot bind ::1): the tcp6 cases are skipped";

/// The loopback address of a listening port.
Address LoopbackOf(const Address& listening);

/// The stream transports the echo and chat suites run over: TCP on
/// 127.0.0.1, TCP on ::1, a Unix socket file, and a Unix abstract name.
enum class StreamTransport { kTcp, kTcp6, kUnix, kAbstract };

/// "tcp", "tcp6", "unix", "abstract": the suffix of the test names.
std::string TransportName(StreamTransport transport);
inline void PrintTo(StreamTransport transport, std::ostream* os) {
  *os << TransportName(transport);
}
/// The address family its ports have: AF_INET, AF_INET6 or AF_UNIX.
int FamilyOf(StreamTransport transport);

/// Whether a listening port's address is on `transport`: its family, the
/// loopback address and a real port for TCP; for Unix, the name
/// `unix_name` ("@name" for an abstract one).
bool IsOver(const Address& host, StreamTransport transport, absl::string_view unix_name);

/// A poller and a transport: the parameter of TransportTest.
struct PollerTransport {
  std::string poller;
  StreamTransport transport;
};
void PrintTo(const PollerTransport& p, std::ostream* os);

/// Every poller over tcp, tcp6 and unix, and the first poller over an
/// abstract name (the connection code is a path's; only the addressing
/// differs, so once is enough).
std::vector<PollerTransport> PollersAndTransports();
/// "epoll_tcp6": the name INSTANTIATE_TEST_SUITE_P gives each instance.
std::string PollerTransportName(
    const ::testing::TestParamInfo<PollerTransport>& info);

/// Listens with `reactor` on `transport`: 127.0.0.1 or ::1 on a free port,
/// dir->path(name) for unix (`dir` is needed only there), or an abstract
/// name made from `name`. Fails the test and returns nullptr on error, or
/// if the port's address is not of the transport's family: so each case
/// really runs over its transport.
Port* ListenOn(Reactor& reactor, StreamTransport transport, Factory* factory,
               const SocketDir* dir, absl::string_view name, int backlog = 1024);

/// Turns the loop `turns` times, waiting at most 1 ms each: lets pending
/// events happen without letting a FakeClock's time pass.
void Spin(Reactor& reactor, int turns = 20);

/// What a fixture's ListenPort and Connect do: ListenOn (and pinning the
/// listening socket's buffers when `pinned_buffers` > 0), or
/// BlockingClient::Connect; on failure they end the test binary, since
/// every caller uses the port or the client at once.
Port* MustListen(Reactor& reactor, StreamTransport transport, Factory* factory,
                 const SocketDir* dir, absl::string_view name, int pinned_buffers);
BlockingClient MustConnect(const Address& to, int pinned_buffers);

inline const std::string& PollerOf(const std::string& poller) { return poller; }
inline StreamTransport TransportOf(const std::string&) { return StreamTransport::kTcp; }
inline const std::string& PollerOf(const PollerTransport& p) { return p.poller; }
inline StreamTransport TransportOf(const PollerTransport& p) { return p.transport; }

/// Base of the tests that run once per poller, or once per poller and
/// stream transport: PollerTest and TransportTest below.
/// Make the reactor with NewReactor() after the factories and records a test
/// declares, so that it is destroyed first: its destructor still calls into
/// them (connectionLost, stopFactory).
template <typename Param>
class LoopbackTest : public ::testing::TestWithParam<Param> {
 protected:
  /// Skips tcp6 when ::1 cannot be bound here.
  void SetUp() override {
    if (transport() == StreamTransport::kTcp6 && !HasIPv6Loopback()) {
      GTEST_SKIP() << kNoIPv6Loopback;
    }
    if (transport() == StreamTransport::kUnix) dir_ = std::make_unique<SocketDir>();
  }
  std::unique_ptr<Reactor> NewReactor(Clock* clock = nullptr) {
    std::unique_ptr<Reactor> r = MakeReactor(PollerOf(this->GetParam()), clock);
    current_ = r.get();
    return r;
  }
  /// Listens on the transport under test (ListenOn: 127.0.0.1 for a
  /// PollerTest; each call a new Unix name), any port, with the reactor
  /// NewReactor() made. `pinned_buffers` > 0 pins the listening socket's
  /// buffers: TCP's accepted sockets inherit them; Unix ones do not, but
  /// neither do they autotune, so the kernel's default
  /// (net.core.wmem_default, about 208 KiB) holds there.
  Port* ListenPort(Factory* factory, int pinned_buffers = 0) {
    return MustListen(*current_, transport(), factory, dir_.get(),
                      absl::StrCat("listen", listened_++), pinned_buffers);
  }
  Address Listen(Factory* factory, int pinned_buffers = 0) {
    return ListenPort(factory, pinned_buffers)->getHost();
  }
  BlockingClient Connect(const Address& to, int pinned_buffers = 0) {
    return MustConnect(to, pinned_buffers);
  }
  static void Spin(Reactor& reactor, int turns = 20) { testing::Spin(reactor, turns); }
  StreamTransport transport() const { return TransportOf(this->GetParam()); }
  bool isTcp() const {
    return transport() == StreamTransport::kTcp || transport() == StreamTransport::kTcp6;
  }

 private:
  Reactor* current_ = nullptr;
  int listened_ = 0;
  std::unique_ptr<SocketDir> dir_;  // unix only; outlives the test body
};

/// TEST_P with PollerNames(): every poller, over TCP on 127.0.0.1.
using PollerTest = LoopbackTest<std::string>;
/// TEST_P with PollersAndTransports() and PollerTransportName: every
/// poller over each stream transport.
using TransportTest = LoopbackTest<PollerTransport>;

/// `n` bytes of a pattern that depends on `seed` and position, so that a
/// lost, repeated or reordered byte shows.
std::string Pattern(size_t n, uint32_t seed = 0);

/// Byte i of an endless stream, for checking long transfers piece by
/// piece: a period that is prime and not a power of two, so that a lost or
/// repeated block shows.
inline char StreamByte(uint64_t i) {
  constexpr uint64_t kPeriod = 1000003;
  return static_cast<char>(((i % kPeriod) * 2654435761u) >> 13);
}

}  // namespace testing
}  // namespace twist

#endif  // TWIST_TESTS_TEST_UTIL_H_
