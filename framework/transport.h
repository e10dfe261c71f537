#ifndef TWIST_FRAMEWORK_TRANSPORT_H_
#define TWIST_FRAMEWORK_TRANSPORT_H_

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "framework/address.h"
#include "framework/connection_handle.h"

namespace twist {

class Protocol;

/// Something that produces data for a consumer (Twisted's IPushProducer /
/// IPullProducer). A push ("streaming") producer writes on its own and is
/// paused when the consumer's buffer is full; a pull producer writes only
/// when resumeProducing() asks it for more.
///
/// A consumer keeps a pointer to its producer, and the two may go away in
/// either order: a producer destroyed first (a protocol producing for another
/// connection whose own connection closed) is forgotten by every transport it
/// is registered with, which then call nothing more on it.
class Transport;
class Producer {
 public:
  Producer() = default;
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;
  virtual ~Producer();
  virtual void pauseProducing() {}
  virtual void resumeProducing() = 0;
  /// The consumer is gone; produce nothing more.
  virtual void stopProducing() {}

 private:
  friend class Transport;
  // The transports (other than itself) this producer is registered with;
  // allocated by the first (most producers are their own transport's only).
  std::unique_ptr<std::vector<Transport*>> consumers_;
};

/// The connection as a protocol sees it (Twisted's ITransport, which is
/// also an IConsumer and an IPushProducer); what only TCP or only Unix
/// sockets have is on TcpTransport and UnixTransport below. Writes are ordered and never
/// block: what the kernel does not take at once is queued and sent later.
///
/// Closing never calls back into the protocol from inside the call that
/// asked for it: connectionLost runs once the current callback returns.
class Transport : public Producer {
 public:
  ~Transport() override = default;

  /// Queues `data`, sending as much as the kernel takes at once. As in
  /// Twisted, a write after loseConnection() is still sent (before the close);
  /// writes are ignored once abortConnection() or loseWriteConnection() has
  /// been called, or once the connection is lost.
  virtual void write(absl::string_view data) = 0;
  /// Writes several pieces in order, with one system call where possible.
  virtual void writeSequence(absl::Span<const absl::string_view> data) = 0;
  /// Closes once every queued byte is sent; stops reading now.
  /// disconnecting() is true from here on.
  /// connectionLost gets ConnectionDone (OK) unless the flush fails.
  virtual void loseConnection() = 0;
  /// Closes at once, dropping unsent data; connectionLost gets
  /// ConnectionAborted.
  virtual void abortConnection() = 0;
  /// Shuts down the write side (TCP FIN) once queued bytes are sent, and
  /// keeps reading (half-close).
  virtual void loseWriteConnection() = 0;

  /// loseConnection() or abortConnection() was called (or the connection is
  /// closing for another reason): Twisted's `transport.disconnecting`. The
  /// framing receivers stop delivering frames once it is true.
  virtual bool disconnecting() const = 0;

  virtual Address getPeer() const = 0;
  virtual Address getHost() const = 0;

  /// As a producer of incoming data: pauseProducing() stops reading from the
  /// peer, resumeProducing() starts again, stopProducing() loses the
  /// connection.

  /// As a consumer: `producer` is told to pause when more than the high
  /// water mark is queued, and to resume once the queue drains to the low
  /// mark (streaming), or each time the queue empties (pull). It gets
  /// stopProducing() when the connection goes away. One producer at a time.
  virtual absl::Status registerProducer(Producer* producer, bool streaming) = 0;
  virtual void unregisterProducer() = 0;
  /// Whether reading is paused: pauseProducing() was called and
  /// resumeProducing() not since. A BufferingProtocol holds back input it
  /// already has while this is true.
  virtual bool readingPaused() const = 0;

  /// Bytes queued and not yet taken by the kernel.
  virtual size_t bufferedBytes() const = 0;
  /// Defaults: low 32 KiB, high 64 KiB.
  virtual void setWriteBufferWaterMarks(size_t low, size_t high) = 0;

  /// A handle through which another thread can post calls to this
  /// connection, run on its own reactor's thread only while it is still
  /// there (framework/connection_handle.h). Call it on the connection's
  /// thread. The calls get this transport (a wrapper's handle, its wrapper).
  ConnectionHandle handle() { return makeHandle(this); }
  /// handle()'s work: a handle whose calls get `as`. A transport of a
  /// reactor makes one; a wrapper asks the transport it wraps. Default:
  /// an empty handle (no reactor: calls are dropped).
  virtual ConnectionHandle makeHandle(Transport* as) { return ConnectionHandle(); }

  /// Puts the protocol this transport serves inside another, in the middle
  /// of the connection: what startTLS (protocols/tls.h) does to slip a TLS
  /// layer under a protocol. `wrap` gets the current protocol and returns
  /// the one that takes its place and owns it; that one is connected to
  /// this transport at once (its connectionMade runs) and must move the old
  /// protocol onto itself (Protocol::moveToTransport). Call it from the
  /// protocol's own callbacks. FAILED_PRECONDITION once the connection is
  /// closing; UNIMPLEMENTED for a transport that cannot (the default).
  using ProtocolWrap = absl::AnyInvocable<std::unique_ptr<Protocol>(std::unique_ptr<Protocol>)>;
  virtual absl::Status wrapProtocol(ProtocolWrap wrap);

 protected:
  // For implementations of registerProducer and its undoing: `p` is now
  // (linkProducer) or no longer (unlinkProducer) this transport's producer.
  void linkProducer(Producer* p);
  void unlinkProducer(Producer* p);
  // Every transport `producer` was registered with, itself excepted, forgets
  // it now without calling it (it is going away).
  static void unlinkConsumers(Producer* producer);
  // `p`, linked with linkProducer, is going away: forget it without calling it.
  virtual void producerGone(Producer* p) = 0;

 private:
  friend class Producer;
};

/// What only a TCP connection has (Twisted's ITCPTransport). A protocol
/// that needs it asks: `if (auto* tcp = dynamic_cast<TcpTransport*>(transport()))`.
/// Unlike Twisted's interface it does not extend Transport: it sits beside
/// it, so that one stream connection class serves TCP and Unix sockets and
/// a ProtocolWrapper can pass on both (failing when the transport it wraps
/// is not TCP).
class TcpTransport {
 public:
  virtual ~TcpTransport() = default;
  virtual absl::Status setTcpNoDelay(bool enabled) = 0;
  virtual absl::Status setTcpKeepAlive(bool enabled) = 0;
};

/// Who is at the other end of a Unix socket, as the kernel vouches for it
/// (SO_PEERCRED): the peer's process, user and group when it connected (the
/// client) or listened (the server).
struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

/// What only a Unix-socket connection has (after Twisted's IUNIXTransport),
/// beside Transport as TcpTransport is:
/// `if (auto* local = dynamic_cast<UnixTransport*>(transport()))`.
class UnixTransport {
 public:
  virtual ~UnixTransport() = default;
  /// The peer's credentials; FAILED_PRECONDITION once the connection is
  /// closed (they are asked of the kernel, not kept).
  virtual absl::StatusOr<PeerCredentials> getPeerCredentials() const = 0;
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_TRANSPORT_H_
