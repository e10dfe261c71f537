#ifndef TWIST_TESTS_TEST_UTIL_H_
#define TWIST_TESTS_TEST_UTIL_H_

#include <memory>
#include <string>
#include <sys/types.h>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
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

/// A plain blocking socket for the peer side of a test, with every call
/// bounded by kTimeout (SO_RCVTIMEO / SO_SNDTIMEO). Closes on destruction.
class BlockingClient {
 public:
  static absl::StatusOr<BlockingClient> Connect(const Address& to,
                                                int rcvbuf = 0);
  BlockingClient(BlockingClient&& other) noexcept;
  BlockingClient& operator=(BlockingClient&& other) noexcept;
  ~BlockingClient();

  absl::Status SendAll(absl::string_view data);
  /// Reads exactly n bytes, or fails (EOF, reset, timeout).
  absl::StatusOr<std::string> ReadExactly(size_t n);
  /// Reads until EOF; fails on reset or timeout. Stops at `max` bytes.
  absl::StatusOr<std::string> ReadToEof(size_t max = 1 << 30);
  /// Reads until EOF or reset, whichever comes first; returns what arrived.
  std::string ReadUntilClosed();
  void ShutdownWrite();
  /// Closes with SO_LINGER 0, which sends a TCP reset.
  void Reset();
  int fd() const { return fd_; }

 private:
  explicit BlockingClient(int fd) : fd_(fd) {}
  int fd_ = -1;
};

/// Base of the tests that run once per poller (TEST_P with PollerNames()).
/// Make the reactor with NewReactor() after the factories and records a test
/// declares, so that it is destroyed first: its destructor still calls into
/// them (connectionLost, stopFactory).
class PollerTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<Reactor> NewReactor(Clock* clock = nullptr);
  /// Listens on 127.0.0.1, any port, with the reactor NewReactor() made.
  Port* ListenPort(Factory* factory);
  Address Listen(Factory* factory) { return ListenPort(factory)->getHost(); }
  BlockingClient Connect(const Address& to, int rcvbuf = 0);
  /// Turns the loop `turns` times, waiting at most 1 ms each: lets pending
  /// events happen without letting a FakeClock's time pass.
  static void Spin(Reactor& reactor, int turns = 20);

 private:
  Reactor* current_ = nullptr;
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

/// Open descriptors of process `pid` (0: this process), from /proc.
int OpenDescriptors(pid_t pid = 0);

/// The loopback address of a listening port.
Address LoopbackOf(const Address& listening);

/// `n` bytes of a pattern that depends on `seed` and position, so that a
/// lost, repeated or reordered byte shows.
std::string Pattern(size_t n, uint32_t seed = 0);

}  // namespace testing
}  // namespace twist

#endif  // TWIST_TESTS_TEST_UTIL_H_
