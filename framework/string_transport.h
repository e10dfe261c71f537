#ifndef TWIST_FRAMEWORK_STRING_TRANSPORT_H_
#define TWIST_FRAMEWORK_STRING_TRANSPORT_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "framework/address.h"
#include "framework/protocol.h"
#include "framework/transport.h"

namespace twist {

/// An in-memory transport for unit tests of protocols, without sockets or a
/// reactor (twisted.internet.testing.StringTransport):
///
///   MyProtocol p;
///   StringTransport t;
///   t.connect(&p);                 // connectionMade()
///   t.receive("hello\r\n");        // dataReceived()
///   EXPECT_EQ(t.value(), "HELLO\r\n");
///   EXPECT_TRUE(t.disconnecting());
///   t.disconnect();                // connectionLost()
///
/// It records what the protocol writes and what it asks of the transport
/// (closing, pausing, producers, socket options). Like a real transport it
/// still takes writes after loseConnection() (they would be flushed before the
/// close), ignores them after abortConnection(), loseWriteConnection() or
/// disconnect(), and never calls back
/// into the protocol by itself: the test decides when data arrives and when
/// the connection ends. Not thread-safe; not for production use.
class StringTransport : public Transport, public TcpTransport {
 public:
  /// What the protocol last asked of this transport as a producer of
  /// incoming data.
  enum class ProducerState { kProducing, kPaused, kStopped };

  /// Defaults: host 127.0.0.1:8000, peer 127.0.0.1:54321.
  StringTransport();
  StringTransport(const Address& host, const Address& peer);
  ~StringTransport() override;
  StringTransport(const StringTransport&) = delete;
  StringTransport& operator=(const StringTransport&) = delete;

  // ---- The test's side ----

  /// Attaches `protocol` (not owned; it must outlive the connection) and
  /// calls its makeConnection(), hence connectionMade().
  void connect(Protocol* protocol);
  /// Hands `data` to the protocol's dataReceived(), as if the peer sent it.
  /// Ignored once the protocol asked to close (loseConnection(),
  /// abortConnection()) or disconnect() ran: a closed transport reads
  /// nothing more.
  void receive(absl::string_view data);
  /// Ends the connection: calls the protocol's connectionLost() once (later
  /// calls do nothing). The reason is ConnectionAborted if the protocol
  /// called abortConnection(), else ConnectionDone.
  void disconnect();
  /// Ends the connection with `reason`, e.g. ConnectionLost("reset").
  void disconnect(const absl::Status& reason);

  /// Everything written so far (since the last clear()).
  const std::string& value() const { return written_; }
  /// Forgets what was written.
  void clear() { written_.clear(); }
  /// value(), then clear().
  std::string take();

  /// The protocol called loseConnection(), abortConnection() or
  /// stopProducing().
  bool disconnecting() const override { return disconnecting_; }
  /// The protocol called abortConnection().
  bool aborted() const { return aborted_; }
  /// The protocol called loseWriteConnection().
  bool writeConnectionLost() const { return write_lost_; }
  /// disconnect() has run.
  bool disconnected() const { return disconnected_; }
  ProducerState producerState() const { return producer_state_; }
  Producer* producer() const { return producer_; }
  bool streaming() const { return streaming_; }
  bool tcpNoDelay() const { return no_delay_; }
  bool tcpKeepAlive() const { return keep_alive_; }
  size_t lowWaterMark() const { return low_water_; }
  size_t highWaterMark() const { return high_water_; }
  /// What bufferedBytes() reports, to play a peer that does not read.
  /// Default 0: everything written counts as sent at once.
  void setBufferedBytes(size_t n) { buffered_ = n; }

  // ---- Transport ----

  void write(absl::string_view data) override;
  void writeSequence(absl::Span<const absl::string_view> data) override;
  void loseConnection() override;
  void abortConnection() override;
  void loseWriteConnection() override;
  Address getPeer() const override { return peer_; }
  Address getHost() const override { return host_; }
  absl::Status setTcpNoDelay(bool enabled) override;
  absl::Status setTcpKeepAlive(bool enabled) override;
  void pauseProducing() override;
  void resumeProducing() override;
  void stopProducing() override;
  /// Fails if a producer is already registered, like TCP transports.
  absl::Status registerProducer(Producer* producer, bool streaming) override;
  void unregisterProducer() override;
  size_t bufferedBytes() const override { return buffered_; }
  bool readingPaused() const override {
    return producer_state_ == ProducerState::kPaused;
  }
  void setWriteBufferWaterMarks(size_t low, size_t high) override;

 private:
  void producerGone(Producer* p) override;
  bool writable() const { return !aborted_ && !write_lost_ && !disconnected_; }

  Address host_;
  Address peer_;
  Protocol* protocol_ = nullptr;
  std::string written_;
  Producer* producer_ = nullptr;
  size_t buffered_ = 0;
  size_t low_water_ = 32 * 1024;
  size_t high_water_ = 64 * 1024;
  ProducerState producer_state_ = ProducerState::kProducing;
  bool streaming_ = false;
  bool disconnecting_ = false;
  bool aborted_ = false;
  bool write_lost_ = false;
  bool disconnected_ = false;
  bool no_delay_ = false;
  bool keep_alive_ = false;
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_STRING_TRANSPORT_H_
