#ifndef TWIST_FRAMEWORK_STREAM_CONNECTION_H_
#define TWIST_FRAMEWORK_STREAM_CONNECTION_H_

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

class ConnectionHost;
class Connector;

/// The transport of one connected stream socket, TCP or Unix (Twisted's
/// abstract.FileDescriptor + tcp.Connection): everything but the addresses
/// and the family's own options, which TcpConnection and UnixConnection
/// add. Created and owned by the reactor; owns its socket and its protocol.
///
/// Reading: one recv() per readiness event into the reactor's shared
/// buffer, so an idle connection holds no read buffer and a busy one cannot
/// starve the others. Writing: straight to the socket when nothing is
/// queued (no wait for the next loop turn, no epoll_ctl); only what the
/// kernel refuses is queued, and only then is writability watched.
class StreamConnection : public Transport, private Selectable {
 public:
  ~StreamConnection() override;

  // Transport, but for the addresses. `final`: calls between them are
  // direct, as the hot path wants.
  void write(absl::string_view data) final;
  void writeSequence(absl::Span<const absl::string_view> data) final;
  void loseConnection() final;
  void abortConnection() final;
  void loseWriteConnection() final;
  bool disconnecting() const final { return state_ != State::kConnected; }
  void pauseProducing() final;
  void resumeProducing() final;
  void stopProducing() final;
  absl::Status registerProducer(Producer* producer, bool streaming) final;
  void unregisterProducer() final;
  size_t bufferedBytes() const final { return out_.size(); }
  bool readingPaused() const final { return reading_paused_; }
  void setWriteBufferWaterMarks(size_t low, size_t high) final;
  ConnectionHandle makeHandle(Transport* as) final;

  absl::Status wrapProtocol(ProtocolWrap wrap) final;

  Protocol* protocol() const { return protocol_.get(); }
  /// loseConnection() as the application would call it: on the transport
  /// the innermost protocol sees (Protocol::wrappedProtocol), so that the
  /// layers between, such as TLS (close_notify), close their way. What the
  /// reactor's shutdown calls.
  void loseConnectionFromApplication();
  /// The socket; -1 once the connection is closed.
  int fd() const { return fd_; }

  // ---- For the ConnectionHost that owns it (framework-internal) ----------
  // (What the connection asks of the host is in connection_host.h.)
  /// Registers with the poller and calls the protocol's makeConnection().
  /// Once, right after construction; on failure the protocol has heard
  /// nothing, and destroying the connection closes the socket.
  absl::Status start();
  /// The connector of an outgoing connection, told right after the
  /// protocol's connectionLost so that it can tell its ClientFactory. Set
  /// before start(), or never (an accepted connection).
  void setConnector(Connector* connector) { connector_ = connector; }
  /// Runs the close this connection asked for with the host's
  /// enqueueClose(): the host calls it once per enqueueClose, outside any
  /// callback of the connection's protocol. May close the connection (its
  /// last act is then the host's retire()) or, when a loseConnection()
  /// found more to flush, leave it open until the flush.
  void closeQueued() { closeNow(close_reason_); }

 protected:
  StreamConnection(ConnectionHost* reactor, int fd, std::unique_ptr<Protocol> protocol);
  // For the families' socket options: FAILED_PRECONDITION once closed.
  absl::Status checkOpen() const;

 private:
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
  // destruction (retire). Never inside a protocol's callback of our own but
  // from the dispatch: readiness events, and closeQueued().
  void closeNow(absl::Status reason);

  // The connection's state is three small machines and two facts, each
  // changed in one place; docs/design.md has the transitions.
  //
  // The whole connection: open, closing after a flush (loseConnection), or
  // closed (connectionLost has run or is running).
  enum class State : uint8_t { kConnected, kDisconnecting, kClosed };
  // The write side: open; a FIN is due once the queue drains
  // (loseWriteConnection); or nothing more goes out (FIN sent, aborted, or a
  // write failed).
  enum class WriteSide : uint8_t { kOpen, kShutdownPending, kShut };
  // The registered producer, if any: a push producer running or paused; a
  // pull producer asked for data and not yet written, or written and to be
  // asked again once the queue drains.
  enum class ProducerMode : uint8_t { kNone, kPushing, kPushPaused, kPullAsked, kPullWrote };

  ConnectionHost* reactor_;  // the reactor that owns this connection
  std::unique_ptr<Protocol> protocol_;
  OutputBuffer out_;
  Producer* producer_ = nullptr;
  uint32_t low_water_ = 32 * 1024;
  uint32_t high_water_ = 64 * 1024;
  absl::Status close_reason_;
  Connector* connector_ = nullptr;  // a pointer, not a callback: 8 bytes a connection
  int fd_;  // here, beside the small fields below: no padding
  State state_ = State::kConnected;
  WriteSide write_side_ = WriteSide::kOpen;
  ProducerMode producer_mode_ = ProducerMode::kNone;
  bool reading_paused_ = false;  // pauseProducing(): the protocol's choice
  bool read_eof_ = false;        // the peer shut down its write side
  // Bookkeeping with the reactor and the poller, not state: a close is queued
  // (scheduleClose), and what the poller is watching.
  bool close_pending_ = false;
  bool registered_ = false;
  uint32_t interest_ = 0;
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_STREAM_CONNECTION_H_
