#ifndef TWIST_PROTOCOLS_TLS_H_
#define TWIST_PROTOCOLS_TLS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "framework/client_factory.h"
#include "framework/delayed_call.h"
#include "framework/protocol.h"
#include "framework/reactor_time.h"
#include "protocols/policies.h"
#include "protocols/tls_context.h"

typedef struct bio_st BIO;
typedef struct bio_method_st BIO_METHOD;

namespace twist {

// Why a TLS connection ended, beside framework/errors.h's reasons:
//   the handshake failed (bad or expired certificate, unknown CA, wrong host
//   name, no common version or cipher, a peer that does not speak TLS)
//                                  -> PERMISSION_DENIED "TLS handshake with PEER failed: ..."
//   the handshake did not finish within the handshake timeout
//                                  -> DEADLINE_EXCEEDED "TLS handshake with PEER timed out ..."
//   the peer closed the connection without close_notify (its last data may
//   have been cut off by someone in between)
//                                  -> UNAVAILABLE "the peer closed the TLS connection without close_notify"
//                                     (a ConnectionLost: IsConnectionLost is true too)
//   a TLS error after the handshake (a bad record, a MAC that does not verify)
//                                  -> DATA_LOSS "TLS error from PEER: ..."
absl::Status TlsHandshakeFailed(absl::string_view peer, absl::string_view why);
absl::Status TlsHandshakeTimedOut(absl::string_view peer, absl::Duration timeout);
absl::Status TlsTruncated();
bool IsTlsHandshakeFailure(const absl::Status& s);
bool IsTlsHandshakeTimeout(const absl::Status& s);
bool IsTlsTruncated(const absl::Status& s);

/// What the TLS layer of a connection tells the protocol above it
/// (Twisted's ISSLTransport). Find it from a protocol with TlsOf().
class TlsTransport {
 public:
  virtual ~TlsTransport() = default;
  /// The handshake is complete.
  virtual bool handshakeDone() const = 0;
  /// The peer's certificate (Twisted's getPeerCertificate); nullopt before
  /// the handshake and when the peer sent none (most clients).
  virtual std::optional<Certificate> getPeerCertificate() const = 0;
  /// The application protocol ALPN chose ("" if none).
  virtual std::string negotiatedProtocol() const = 0;
  /// The host name the client asked for (SNI); "" if it sent none.
  virtual std::string serverName() const = 0;
  /// "TLSv1.3", "TLSv1.2"; "" before the handshake.
  virtual std::string tlsVersion() const = 0;
  virtual std::string cipherName() const = 0;
};

/// The TLS layer under `transport`, looking through ProtocolWrappers (a
/// policy such as TimeoutFactory may sit between it and the protocol);
/// nullptr if the connection is not TLS.
TlsTransport* TlsOf(Transport* transport);

/// What every TLS connection of a factory (or one startTLS) shares.
struct TlsSettings {
  /// Time, for the handshake timeout; nullptr: no timeout.
  ReactorTime* reactor = nullptr;
  /// A peer that has not finished the handshake this long after the
  /// connection began is aborted. InfiniteDuration: never.
  absl::Duration handshake_timeout = absl::Seconds(30);
  /// Told once per connection whose handshake failed or timed out, with the
  /// peer and the reason. Unset: one line on stderr,
  /// "twist: TLS handshake with PEER failed: ...".
  std::function<void(const Address& peer, const absl::Status& reason)> on_handshake_failure;
};

/// TLS over any transport, through OpenSSL memory BIOs (Twisted's
/// TLSMemoryBIOProtocol): the transport below carries ciphertext; the
/// wrapped protocol above sees plain dataReceived and write, and this is its
/// transport.
///
/// - The wrapped protocol is connected at once; what it writes before the
///   handshake completes is kept and sent, in order, right after it.
/// - loseConnection(): once what was written is encrypted and queued, sends
///   close_notify, then closes the transport below when its queue drains.
///   Unlike a plain transport, a write after loseConnection() is dropped:
///   nothing may follow close_notify.
/// - The peer's close_notify: a HalfCloseableProtocol gets
///   readConnectionLost(), any other protocol loseConnection(); the
///   connection ends with ConnectionDone (OK).
/// - The peer closing the connection without close_notify ends it with
///   TlsTruncated() (UNAVAILABLE), not ConnectionDone.
/// - A failed handshake ends the connection with TlsHandshakeFailed() (the
///   alert is sent first), reported once through TlsSettings; it never
///   touches other connections.
/// - Flow control passes through: a producer registered here is registered
///   with the transport below, which queues the ciphertext, so it is paused
///   when the peer stops reading; pausing this transport stops both the
///   reading below and the delivery of records already decrypted.
class TLSMemoryBIOProtocol : public ProtocolWrapper, public TlsTransport {
 public:
  TLSMemoryBIOProtocol(std::shared_ptr<const TlsContext> context,
                       std::shared_ptr<const TlsSettings> settings,
                       std::unique_ptr<Protocol> wrapped);
  ~TLSMemoryBIOProtocol() override;

  // Protocol, as the transport below sees it.
  void connectionMade() override;
  void dataReceived(absl::string_view data) override;
  void readConnectionLost() override;
  void readingResumed() override;
  void connectionLost(const absl::Status& reason) override;

  // Transport, as the wrapped protocol sees it.
  void write(absl::string_view data) override;
  void writeSequence(absl::Span<const absl::string_view> data) override;
  void loseConnection() override;
  void loseWriteConnection() override;
  bool disconnecting() const override;
  void pauseProducing() override;
  void resumeProducing() override;
  void stopProducing() override;
  bool readingPaused() const override { return paused_; }
  size_t bufferedBytes() const override;

  // TlsTransport.
  bool handshakeDone() const override { return handshake_done_; }
  std::optional<Certificate> getPeerCertificate() const override;
  std::string negotiatedProtocol() const override;
  std::string serverName() const override;
  std::string tlsVersion() const override;
  std::string cipherName() const override;

  /// For startTLS: the wrapped protocol is already connected; connectionMade
  /// starts the handshake without connecting it again.
  void setWrappedAlreadyConnected() { wrapped_connected_ = true; }

 private:
  // OpenSSL reads and writes ciphertext through the connection itself.
  static BIO_METHOD* BioMethod();
  static int BioWrite(BIO* b, const char* data, int n);
  static int BioRead(BIO* b, char* data, int n);

  void doHandshake();
  void handshakeSucceeded();
  // Decrypts and delivers what the SSL object holds, while not paused.
  void deliver();
  // Writes plaintext through SSL, then sends the records.
  void encrypt(absl::string_view data);
  // Sends what OpenSSL wrote during its last call, in one write.
  void flushOut();
  // Keeps the ciphertext OpenSSL has not read yet in held_.
  void keepInput();
  // The peer's close_notify arrived.
  void peerClosed();
  void sendCloseNotify();
  // Tells TlsSettings about a failed handshake, once.
  void report();
  // The connection cannot go on: the reason connectionLost will give, the
  // alert out, then the transport below closed.
  void fail(absl::Status reason, bool handshake);
  void handshakeTimedOut();
  std::string peerName() const;

  std::shared_ptr<const TlsContext> context_;
  std::shared_ptr<const TlsSettings> settings_;
  SSL* ssl_ = nullptr;
  absl::string_view input_;  // ciphertext OpenSSL has not read yet
  std::string held_;         // ... kept here between calls
  std::string pending_;  // written before the handshake completed
  absl::Status reason_;  // why the connection ends, when that is ours to say
  DelayedCall timeout_;
  bool handshake_done_ = false;
  bool wrapped_connected_ = false;
  bool paused_ = false;          // the wrapped protocol paused reading
  bool delivering_ = false;      // inside deliver(): no re-entry
  bool closing_ = false;         // loseConnection() was called
  bool sent_close_notify_ = false;
  bool got_close_notify_ = false;
  bool write_shut_ = false;      // loseWriteConnection() or close_notify sent
  bool failed_ = false;          // reason_ is set; nothing more goes through
  bool reported_ = false;
  bool lost_ = false;
};

/// Serves another factory's protocols over TLS (Twisted's
/// TLSMemoryBIOFactory, server side):
///
///   TlsServerOptions options;
///   options.certificate_chain_file = "cert.pem";
///   options.private_key_file = "key.pem";
///   auto context = TlsContext::ForServer(options);  // check context.ok()
///   TLSMemoryBIOFactory tls(*context, echo.get(), reactor);
///   reactor->listenTCP(8443, &tls);
///
/// The wrapped factory must outlive it; it must outlive its ports.
class TLSMemoryBIOFactory : public WrappingFactory {
 public:
  TLSMemoryBIOFactory(std::shared_ptr<const TlsContext> context, Factory* wrapped,
                      ReactorTime* reactor,
                      absl::Duration handshake_timeout = absl::Seconds(30));
  std::unique_ptr<Protocol> buildProtocol(const Address& addr) override;
  /// Handshakes that failed or timed out, over the factory's life.
  int64_t handshakeFailures() const { return *failures_; }
  /// Replaces the one-line report on stderr of each failed handshake.
  void setHandshakeFailureHandler(
      std::function<void(const Address& peer, const absl::Status& reason)> handler);

 private:
  std::shared_ptr<const TlsContext> context_;
  std::shared_ptr<TlsSettings> settings_;
  using Handler = std::function<void(const Address&, const absl::Status&)>;
  std::shared_ptr<int64_t> failures_;
  std::shared_ptr<Handler> handler_;
};

/// The client side: a ClientFactory whose protocols are `wrapped`'s, over
/// TLS (connectSSL's factory). Passes every ClientFactory callback on; must
/// outlive its connectors, and `wrapped` must outlive it. A failed
/// handshake is the protocol's connectionLost reason; nothing is logged.
class TLSMemoryBIOClientFactory : public ClientFactory {
 public:
  TLSMemoryBIOClientFactory(std::shared_ptr<const TlsContext> context, ClientFactory* wrapped,
                            ReactorTime* reactor,
                            absl::Duration handshake_timeout = absl::Seconds(30));
  std::unique_ptr<Protocol> buildProtocol(const Address& addr) override;
  void startFactory() override { wrapped_->doStart(); }
  void stopFactory() override { wrapped_->doStop(); }
  void startedConnecting(Connector* connector) override {
    wrapped_->startedConnecting(connector);
  }
  void clientConnectionFailed(Connector* connector, const absl::Status& reason) override {
    wrapped_->clientConnectionFailed(connector, reason);
  }
  void clientConnectionLost(Connector* connector, const absl::Status& reason) override {
    wrapped_->clientConnectionLost(connector, reason);
  }
  ClientFactory* wrappedFactory() const { return wrapped_; }

 private:
  std::shared_ptr<const TlsContext> context_;
  ClientFactory* wrapped_;
  std::shared_ptr<TlsSettings> settings_;
};

/// Starts TLS on a connection that is already open (Twisted's
/// ITLSTransport.startTLS), for STARTTLS in the middle of a protocol: call
/// it from the protocol's own callback, after writing the last plain bytes
/// (they are sent first). From the next byte on, the connection is TLS,
/// with the protocol unchanged above it; `transport` is the protocol's
/// transport() (a policy's ProtocolWrapper is fine), and the protocol's
/// transport() is the TLS layer afterwards. A server passes a server
/// context, a client a client one.
absl::Status startTLS(Transport* transport, std::shared_ptr<const TlsContext> context,
                      TlsSettings settings = {});

}  // namespace twist

#endif  // TWIST_PROTOCOLS_TLS_H_
