#ifndef TWIST_FRAMEWORK_TCP_CONNECTION_H_
#define TWIST_FRAMEWORK_TCP_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "framework/address.h"
#include "framework/output_buffer.h"
#include "framework/poller.h"
#include "framework/protocol.h"
#include "framework/transport.h"

namespace twist {

class Connector;
class Reactor;

/// The TCP transport of one connection (Twisted's tcp.Connection). Created
/// and owned by the reactor; owns its socket and its protocol.
///
/// Reading: one read() per readiness event into the reactor's shared
/// buffer, so an idle connection holds no read buffer and a busy one cannot
/// starve the others. Writing: straight to the socket when nothing is
/// queued (no wait for the next loop turn, no epoll_ctl); only what the
/// kernel refuses is queued, and only then is writability watched.
class TcpConnection final : public TcpTransport, private Selectable {
 public:
  TcpConnection(Reactor* reactor, int fd, std::unique_ptr<Protocol> protocol,
                const Address& peer);
  ~TcpConnection() override;

  /// Registers with the poller and calls the protocol's makeConnection().
  absl::Status start();

  // Transport.
  void write(absl::string_view data) override;
  void writeSequence(absl::Span<const absl::string_view> data) override;
  void loseConnection() override;
  void abortConnection() override;
  void loseWriteConnection() override;
  bool disconnecting() const override { return state_ != State::kConnected; }
  Address getPeer() const override { return peer_; }
  /// Asked of the kernel (getsockname): not kept, to keep idle connections
  /// small. Unspecified once the connection is closed.
  Address getHost() const override;
  absl::Status setTcpNoDelay(bool enabled) override;
  absl::Status setTcpKeepAlive(bool enabled) override;
  void pauseProducing() override;
  void resumeProducing() override;
  void stopProducing() override;
  absl::Status registerProducer(Producer* producer, bool streaming) override;
  void unregisterProducer() override;
  size_t bufferedBytes() const override { return out_.size(); }
  bool readingPaused() const override { return reading_paused_; }
  void setWriteBufferWaterMarks(size_t low, size_t high) override;

  Protocol* protocol() const { return protocol_.get(); }
  /// The connector of an outgoing connection: told right after the
  /// protocol's connectionLost, so that it can tell its ClientFactory.
  void setConnector(Connector* connector) { connector_ = connector; }
  int fd() const { return fd_; }

 private:
  friend class Reactor;
  enum class State : uint8_t { kConnected, kDisconnecting, kClosed };

  void handleEvents(uint32_t ready) override;
  void doRead();
  void doWrite();
  // Sends as much of `data` (n pieces) as the kernel takes now; returns the
  // byte count, or -1 with errno set.
  ssize_t sendNow(const iovec* iov, int n);
  void queue(absl::Span<const absl::string_view> pieces, size_t skip);
  void afterDrain();
  void afterQueue();
  void updateInterest();
  void failWrite(int error_number);
  // Forgets the producer, and tells it we no longer consume from it.
  void dropProducer();
  void producerGone(Producer* p) override;
  // Asks the reactor to close us once the current callback returns.
  void scheduleClose(absl::Status reason);
  // Closes the socket, runs connectionLost and hands us to the reactor for
  // destruction. Only the reactor's dispatch calls this.
  void closeNow(absl::Status reason);

  Reactor* reactor_;
  int fd_;
  std::unique_ptr<Protocol> protocol_;
  Address peer_;
  OutputBuffer out_;
  Producer* producer_ = nullptr;
  uint32_t low_water_ = 32 * 1024;
  uint32_t high_water_ = 64 * 1024;
  absl::Status close_reason_;
  Connector* connector_ = nullptr;  // a pointer, not a callback: 8 bytes a connection
  State state_ = State::kConnected;
  uint32_t interest_ = 0;      // what the poller watches now
  bool registered_ = false;    // whether the poller knows fd_
  bool streaming_ = false;     // producer_ is a push producer
  bool producer_paused_ = false;
  // A pull producer is asked for more once the data it last wrote has
  // drained: only after it wrote something (else a level-triggered poller
  // would report "writable" and ask again on every turn).
  bool pull_wanted_ = false;
  bool reading_paused_ = false;
  bool read_eof_ = false;      // the peer shut down its write side
  bool write_shutdown_ = false;  // loseWriteConnection() was asked
  bool write_shut_ = false;      // and done: FIN sent
  bool close_pending_ = false;
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_TCP_CONNECTION_H_
