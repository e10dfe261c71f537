#ifndef TWIST_PROTOCOLS_TRAFFIC_LOGGING_H_
#define TWIST_PROTOCOLS_TRAFFIC_LOGGING_H_

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "framework/protocol.h"
#include "protocols/policies.h"

namespace twist {

/// Logs everything that passes through one connection, a line per event,
/// flushed at once (Twisted's policies.TrafficLoggingProtocol), in
/// Twisted's format; bytes are C-escaped in double quotes, so
/// absl::CUnescape gives them back exactly:
///
///   *                        connectionMade
///   C 1: "hello\r\n"         received (dataReceived)
///   S 1: "hello\r\n"         written (write)
///   SV 1: ["a", "b"]         written (writeSequence)
///   S 1: *                   loseConnection()
///   C 1: OK                  connectionLost(reason), reason.ToString()
///
/// and, where Twisted logs nothing, closes of other kinds:
///
///   S 1: * abort             abortConnection()
///   S 1: * write             loseWriteConnection() (half-close)
///   C 1: * write             the peer shut down its side (readConnectionLost)
///
/// With a `length_limit`, data longer than it is cut to length_limit - 12
/// bytes followed by `<... N bytes elided>` (outside the quotes).
class TrafficLoggingProtocol : public ProtocolWrapper {
 public:
  /// `number` names the connection in each line; `log` is closed with the
  /// protocol.
  TrafficLoggingProtocol(std::unique_ptr<Protocol> wrapped, std::unique_ptr<std::ostream> log,
                         size_t length_limit = 0, int number = 0);
  ~TrafficLoggingProtocol() override;

  void connectionMade() override;
  void dataReceived(absl::string_view data) override;
  void readConnectionLost() override;
  void connectionLost(const absl::Status& reason) override;

  void write(absl::string_view data) override;
  void writeSequence(absl::Span<const absl::string_view> data) override;
  void loseConnection() override;
  void abortConnection() override;
  void loseWriteConnection() override;

 private:
  void log(absl::string_view line);
  std::string munge(absl::string_view data) const;

  std::unique_ptr<std::ostream> log_;
  size_t length_limit_;
  int number_;
};

/// Wraps every protocol of `wrapped` in a TrafficLoggingProtocol whose log
/// is the file `log_file_prefix-N`, N counting the connections from 1
/// (Twisted's policies.TrafficLoggingFactory). A connection whose log
/// cannot be opened is refused (closed at once), since it could not be
/// logged; openError() tells why. The wrapped factory must outlive it.
/// Thread-safe (a pool's reactors may share it) if the wrapped factory
/// and open() are.
class TrafficLoggingFactory : public WrappingFactory {
 public:
  TrafficLoggingFactory(Factory* wrapped, std::string log_file_prefix, size_t length_limit = 0);

  std::unique_ptr<Protocol> buildProtocol(const Address& addr) override;

  /// Opens the log named `name` (the default truncates or creates that
  /// file); nullptr if it cannot. Tests override it to log in memory.
  virtual std::unique_ptr<std::ostream> open(const std::string& name);
  /// The number the next connection's log follows (Twisted's _counter).
  int counter() const { return counter_.load(std::memory_order_relaxed); }
  /// Numbers the next connection 1 again.
  void resetCounter() { counter_ = 0; }
  /// Why the last log that could not be opened was not; OK if none failed.
  absl::Status openError() const {
    std::lock_guard<std::mutex> lock(mu_);
    return open_error_;
  }

 private:
  std::string prefix_;
  size_t length_limit_;
  std::atomic<int> counter_{0};
  mutable std::mutex mu_;
  absl::Status open_error_;  // guarded by mu_
};

}  // namespace twist

#endif  // TWIST_PROTOCOLS_TRAFFIC_LOGGING_H_
