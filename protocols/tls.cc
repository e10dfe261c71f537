#include "protocols/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>

#include <algorithm>
#include <climits>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "framework/errors.h"

namespace twist {
namespace {

constexpr absl::string_view kHandshakeFailed = "TLS handshake with ";
constexpr absl::string_view kTruncated = "the peer closed the TLS connection without close_notify";

// The BIO on both sides of OpenSSL is the connection itself: what OpenSSL
// writes goes straight to the transport below (no copy into a memory BIO
// and out again), and what it reads comes from the bytes dataReceived got,
// which only what OpenSSL has not read yet outlives. So an idle connection
// holds no BIO buffer at all.
long BioCtrl(BIO*, int cmd, long, void*) {
  // OpenSSL flushes after each flight; everything is written through.
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

int BioCreate(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

// A readable account of why OpenSSL gave up on `ssl`.
std::string Describe(SSL* ssl, int error) {
  std::string errors = TakeOpenSslErrors();
  const long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK && absl::StrContains(errors, "certificate verify failed")) {
    absl::StrAppend(&errors, ": ", X509_verify_cert_error_string(verify));
  }
  if (absl::StrContains(errors, "wrong version number") ||
      absl::StrContains(errors, "http request") ||
      absl::StrContains(errors, "packet length too long") ||
      absl::StrContains(errors, "record layer failure")) {
    absl::StrAppend(&errors, " (the peer does not speak TLS: plain text or garbage?)");
  }
  if (errors.empty()) {
    errors = error == SSL_ERROR_SYSCALL ? "the connection ended in the middle of a record"
                                        : absl::StrCat("OpenSSL error ", error);
  }
  return errors;
}

void ReportToStderr(const Address& peer, const absl::Status& reason) {
  fprintf(stderr, "twist: %s\n", std::string(reason.message()).c_str());
}

// Plaintext delivered to the protocol above is decrypted here: one record
// at a time, in a buffer per nesting depth (a protocol that resumes another
// TLS connection from its dataReceived gets that one's data delivered
// while its own is still in use).
constexpr size_t kRecordBuffer = 16 * 1024;
thread_local int delivery_depth = 0;
// What OpenSSL wrote during its current call, for every connection of the
// thread: flushOut() takes it out before any callback of a protocol can run.
thread_local std::string outgoing;
thread_local char first_buffer[kRecordBuffer];

}  // namespace

absl::Status TlsHandshakeFailed(absl::string_view peer, absl::string_view why) {
  return absl::PermissionDeniedError(absl::StrCat(kHandshakeFailed, peer, " failed: ", why));
}
absl::Status TlsHandshakeTimedOut(absl::string_view peer, absl::Duration timeout) {
  return absl::DeadlineExceededError(absl::StrCat(kHandshakeFailed, peer, " timed out after ",
                                                  absl::FormatDuration(timeout)));
}
absl::Status TlsTruncated() { return absl::UnavailableError(kTruncated); }
bool IsTlsHandshakeFailure(const absl::Status& s) {
  return absl::IsPermissionDenied(s) && absl::StartsWith(s.message(), kHandshakeFailed);
}
bool IsTlsHandshakeTimeout(const absl::Status& s) {
  return absl::IsDeadlineExceeded(s) && absl::StartsWith(s.message(), kHandshakeFailed);
}
bool IsTlsTruncated(const absl::Status& s) {
  return absl::IsUnavailable(s) && s.message() == kTruncated;
}

TlsTransport* TlsOf(Transport* transport) {
  // A bounded walk: wrappers nest a few deep at most.
  for (int i = 0; i < 16 && transport != nullptr; ++i) {
    if (auto* tls = dynamic_cast<TlsTransport*>(transport)) return tls;
    auto* wrapper = dynamic_cast<ProtocolWrapper*>(transport);
    if (wrapper == nullptr) return nullptr;
    transport = wrapper->transport();
  }
  return nullptr;
}

// ---- TLSMemoryBIOProtocol ---------------------------------------------------

TLSMemoryBIOProtocol::TLSMemoryBIOProtocol(std::shared_ptr<const TlsContext> context,
                                           std::shared_ptr<const TlsSettings> settings,
                                           std::unique_ptr<Protocol> wrapped)
    : ProtocolWrapper(std::move(wrapped)),
      context_(std::move(context)),
      settings_(std::move(settings)) {}

TLSMemoryBIOProtocol::~TLSMemoryBIOProtocol() {
  if (timeout_.active()) timeout_.cancel().IgnoreError();
  if (ssl_ != nullptr) SSL_free(ssl_);  // and its BIO
}

std::string TLSMemoryBIOProtocol::peerName() const {
  return transport() != nullptr ? transport()->getPeer().ToString() : "the peer";
}

void TLSMemoryBIOProtocol::connectionMade() {
  absl::StatusOr<SSL*> ssl = context_->newSsl();
  if (ssl.ok()) {
    ssl_ = *ssl;
    BIO* bio = BIO_new(BioMethod());
    if (bio == nullptr) {
      ssl = absl::ResourceExhaustedError("cannot make a BIO");
    } else {
      BIO_set_data(bio, this);
      SSL_set_bio(ssl_, bio, bio);  // one BIO both ways; the SSL owns it
    }
  }
  // Each OpenSSL call's output is one write, and a record (16 KiB at most)
  // is less than a loopback segment: with Nagle's algorithm each write would
  // wait for the ACK of the one before (nginx sets TCP_NODELAY on its TLS
  // connections for the same reason).
  if (auto* tcp = dynamic_cast<TcpTransport*>(transport())) tcp->setTcpNoDelay(true).IgnoreError();
  if (settings_->reactor != nullptr && settings_->handshake_timeout != absl::InfiniteDuration()) {
    timeout_ = settings_->reactor->callLater(settings_->handshake_timeout,
                                             [this] { handshakeTimedOut(); });
  }
  if (wrapped_connected_) {
    wrappedProtocol()->moveToTransport(this);
  } else {
    ProtocolWrapper::connectionMade();  // the wrapped protocol's makeConnection
  }
  if (!ssl.ok()) {
    fail(TlsHandshakeFailed(peerName(), ssl.status().message()), /*handshake=*/true);
    return;
  }
  if (lost_ || failed_) return;
  doHandshake();  // a client's hello goes out now; a server waits for one
}

int TLSMemoryBIOProtocol::BioWrite(BIO* b, const char* data, int n) {
  BIO_clear_retry_flags(b);
  auto* self = static_cast<TLSMemoryBIOProtocol*>(BIO_get_data(b));
  if (self == nullptr || n < 0) return -1;
  // Gathered, and sent in one write once OpenSSL returns (flushOut): the
  // records and handshake messages of one call leave in one segment, not
  // one small write each (which Nagle's algorithm would hold back for the
  // peer's delayed ACK: 40 ms a handshake flight).
  if (!self->lost_) outgoing.append(data, static_cast<size_t>(n));
  return n;
}

int TLSMemoryBIOProtocol::BioRead(BIO* b, char* data, int n) {
  BIO_clear_retry_flags(b);
  auto* self = static_cast<TLSMemoryBIOProtocol*>(BIO_get_data(b));
  if (self == nullptr || n < 0) return -1;
  absl::string_view& in = self->input_;
  if (in.empty()) {
    BIO_set_retry_read(b);  // more will come: not an end of file
    return -1;
  }
  const size_t take = std::min(in.size(), static_cast<size_t>(n));
  std::copy_n(in.data(), take, data);
  in.remove_prefix(take);
  return static_cast<int>(take);
}

BIO_METHOD* TLSMemoryBIOProtocol::BioMethod() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "twist transport");
    BIO_meth_set_write(m, &TLSMemoryBIOProtocol::BioWrite);
    BIO_meth_set_read(m, &TLSMemoryBIOProtocol::BioRead);
    BIO_meth_set_ctrl(m, &BioCtrl);
    BIO_meth_set_create(m, &BioCreate);
    return m;
  }();
  return method;
}

void TLSMemoryBIOProtocol::doHandshake() {
  ERR_clear_error();
  const int r = SSL_do_handshake(ssl_);
  const int error = r == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, r);
  flushOut();  // this flight, or the alert
  if (r == 1) {
    handshakeSucceeded();
    return;
  }
  if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) return;
  fail(TlsHandshakeFailed(peerName(), Describe(ssl_, error)), /*handshake=*/true);
}

void TLSMemoryBIOProtocol::handshakeSucceeded() {
  handshake_done_ = true;
  if (timeout_.active()) timeout_.cancel().IgnoreError();
  if (!pending_.empty()) {
    std::string pending = std::exchange(pending_, std::string());
    encrypt(pending);
  }
  if (lost_ || failed_) return;
  if (closing_) {
    sendCloseNotify();
    transport()->loseConnection();
    return;
  }
  if (write_shut_) {
    // loseWriteConnection() came before the handshake.
    write_shut_ = false;
    loseWriteConnection();
  }
  // Application data may have come with the end of the handshake.
  deliver();
}

void TLSMemoryBIOProtocol::dataReceived(absl::string_view data) {
  if (failed_ || lost_ || ssl_ == nullptr) return;
  // Ciphertext not yet decrypted stays in held_; new bytes join it.
  if (input_.empty()) {
    input_ = data;
  } else {
    held_.erase(0, static_cast<size_t>(input_.data() - held_.data()));
    held_.append(data.data(), data.size());
    input_ = held_;
  }
  if (!handshake_done_) {
    doHandshake();
  } else {
    deliver();
  }
  keepInput();
}

void TLSMemoryBIOProtocol::keepInput() {
  if (input_.empty()) {
    if (held_.capacity() > 0) std::string().swap(held_);  // an idle connection keeps nothing
    return;
  }
  const bool in_held = !held_.empty() && input_.data() >= held_.data() &&
                       input_.data() < held_.data() + held_.size();
  if (in_held) return;
  held_.assign(input_.data(), input_.size());
  input_ = held_;
}

void TLSMemoryBIOProtocol::deliver() {
  if (delivering_ || !handshake_done_) return;
  delivering_ = true;
  std::unique_ptr<char[]> own;
  char* buf = first_buffer;
  if (delivery_depth++ > 0) {
    own.reset(new char[kRecordBuffer]);
    buf = own.get();
  }
  while (!paused_ && !failed_ && !lost_ && !closing_ && !got_close_notify_) {
    ERR_clear_error();
    const int n = SSL_read(ssl_, buf, static_cast<int>(kRecordBuffer));
    const int error = n > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_, n);
    flushOut();  // a key update's answer, an alert
    if (n > 0) {
      ProtocolWrapper::dataReceived(absl::string_view(buf, static_cast<size_t>(n)));
      continue;
    }
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) break;
    if (error == SSL_ERROR_ZERO_RETURN) {
      got_close_notify_ = true;
      peerClosed();
      break;
    }
    fail(absl::DataLossError(absl::StrCat("TLS error from ", peerName(), ": ",
                                          Describe(ssl_, error))),
         /*handshake=*/false);
    break;
  }
  --delivery_depth;
  delivering_ = false;
}

void TLSMemoryBIOProtocol::peerClosed() {
  // The peer's close_notify: what end of input is to a plain transport.
  if (auto* h = dynamic_cast<HalfCloseableProtocol*>(wrappedProtocol())) {
    h->readConnectionLost();
  } else {
    loseConnection();
  }
}

void TLSMemoryBIOProtocol::encrypt(absl::string_view data) {
  while (!data.empty() && !failed_) {
    const int chunk = static_cast<int>(std::min<size_t>(data.size(), INT_MAX));
    ERR_clear_error();
    const int n = SSL_write(ssl_, data.data(), chunk);
    const int error = n > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_, n);
    if (n <= 0) {
      flushOut();
      fail(absl::DataLossError(absl::StrCat("TLS error writing to ", peerName(), ": ",
                                            Describe(ssl_, error))),
           /*handshake=*/false);
      return;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  flushOut();  // every record of this write in one
}

void TLSMemoryBIOProtocol::sendCloseNotify() {
  if (sent_close_notify_ || ssl_ == nullptr) return;
  sent_close_notify_ = true;
  ERR_clear_error();
  SSL_shutdown(ssl_);  // 0: sent, the peer's not yet seen; that is enough
  ERR_clear_error();
  flushOut();
}

void TLSMemoryBIOProtocol::flushOut() {
  if (outgoing.empty()) return;
  // Taken out before the write: the transport may call back (a producer's
  // pauseProducing, or a TLS layer below this one, whose own OpenSSL call
  // gathers here) into code that writes on another TLS connection of this
  // thread, and its records must start a buffer of their own.
  std::string out = std::exchange(outgoing, std::string());
  if (!lost_) transport()->write(out);
  // One burst's buffer is kept for the next, unless it was a big one.
  if (outgoing.capacity() == 0 && out.capacity() <= (256u << 10)) {
    out.clear();
    outgoing.swap(out);
  }
}

void TLSMemoryBIOProtocol::fail(absl::Status reason, bool handshake) {
  if (failed_ || lost_) return;
  failed_ = true;
  reason_ = std::move(reason);
  if (timeout_.active()) timeout_.cancel().IgnoreError();
  if (handshake) report();
  // Any alert OpenSSL wrote is queued already: it goes out before the FIN.
  transport()->loseConnection();
}

void TLSMemoryBIOProtocol::report() {
  if (reported_) return;  // once per connection
  reported_ = true;
  const Address peer = transport()->getPeer();
  if (settings_->on_handshake_failure) {
    settings_->on_handshake_failure(peer, reason_);
  } else {
    ReportToStderr(peer, reason_);
  }
}

void TLSMemoryBIOProtocol::handshakeTimedOut() {
  if (handshake_done_ || lost_ || failed_) return;
  failed_ = true;
  reason_ = TlsHandshakeTimedOut(peerName(), settings_->handshake_timeout);
  report();
  transport()->abortConnection();  // a stalled peer gets nothing more
}

void TLSMemoryBIOProtocol::readConnectionLost() {
  // End of input from the transport below.
  if (failed_ || lost_ || got_close_notify_ || sent_close_notify_) {
    // Done with it, or it answers our close_notify with a plain close (which
    // TLS allows); a half-closed write side waits for nothing more.
    if (sent_close_notify_ && !closing_) transport()->loseConnection();
    return;
  }
  if (!handshake_done_) {
    fail(TlsHandshakeFailed(peerName(), "the peer closed the connection during the handshake"),
         /*handshake=*/true);
    return;
  }
  // Deliver what came before the end, then say it was cut short.
  deliver();
  if (failed_ || lost_ || got_close_notify_) return;
  fail(TlsTruncated(), /*handshake=*/false);
}

void TLSMemoryBIOProtocol::readingResumed() {
  if (paused_) return;
  deliver();
  if (!lost_) ProtocolWrapper::readingResumed();
}

void TLSMemoryBIOProtocol::connectionLost(const absl::Status& reason) {
  lost_ = true;
  if (timeout_.active()) timeout_.cancel().IgnoreError();
  absl::Status final_reason = reason;
  if (!reason_.ok()) {
    final_reason = reason_;
  } else if (!handshake_done_ && !absl::IsAborted(reason)) {
    // Reset or closed before the handshake ended: a failed handshake too.
    reason_ = TlsHandshakeFailed(
        peerName(), reason.ok() ? "the connection closed during the handshake"
                                : absl::StrCat("the connection was lost during the handshake: ",
                                               reason.message()));
    report();
    final_reason = reason_;
  } else if (got_close_notify_ && !absl::IsAborted(reason)) {
    // The peer ended the TLS session properly: a reset or a broken pipe
    // after that (our close_notify reaching a peer already gone) changes
    // nothing, as in Twisted.
    final_reason = ConnectionDone();
  } else if (reason.ok() && !sent_close_notify_) {
    final_reason = TlsTruncated();
  }
  ProtocolWrapper::connectionLost(final_reason);
}

void TLSMemoryBIOProtocol::write(absl::string_view data) {
  if (data.empty() || failed_ || lost_ || sent_close_notify_ || write_shut_) return;
  if (!handshake_done_) {
    if (!closing_) pending_.append(data.data(), data.size());
    return;
  }
  encrypt(data);
}

void TLSMemoryBIOProtocol::writeSequence(absl::Span<const absl::string_view> data) {
  // One record for small pieces rather than one each.
  size_t total = 0;
  for (absl::string_view piece : data) total += piece.size();
  if (total <= kRecordBuffer && data.size() > 1) {
    std::string joined;
    joined.reserve(total);
    for (absl::string_view piece : data) joined.append(piece.data(), piece.size());
    write(joined);
    return;
  }
  for (absl::string_view piece : data) write(piece);
}

void TLSMemoryBIOProtocol::loseConnection() {
  if (closing_ || lost_) return;
  closing_ = true;
  if (failed_ || ssl_ == nullptr) {
    transport()->loseConnection();
    return;
  }
  // Before the handshake there is nothing to close_notify about yet: what
  // was written goes once it completes, then the close (the handshake
  // timeout bounds the wait).
  if (!handshake_done_) return;
  sendCloseNotify();
  transport()->loseConnection();
}

void TLSMemoryBIOProtocol::loseWriteConnection() {
  if (failed_ || lost_ || write_shut_) return;
  write_shut_ = true;
  if (!handshake_done_) return;  // done after the handshake
  sendCloseNotify();
  transport()->loseWriteConnection();
}

bool TLSMemoryBIOProtocol::disconnecting() const {
  return closing_ || failed_ || transport()->disconnecting();
}

void TLSMemoryBIOProtocol::pauseProducing() {
  paused_ = true;
  transport()->pauseProducing();
}

void TLSMemoryBIOProtocol::resumeProducing() {
  if (!paused_) return;
  paused_ = false;
  transport()->resumeProducing();  // its readingResumed() delivers what is held
  if (!lost_) deliver();
}

void TLSMemoryBIOProtocol::stopProducing() { loseConnection(); }

size_t TLSMemoryBIOProtocol::bufferedBytes() const {
  return transport()->bufferedBytes() + pending_.size();
}

std::optional<Certificate> TLSMemoryBIOProtocol::getPeerCertificate() const {
  if (ssl_ == nullptr || !handshake_done_) return std::nullopt;
  X509* x509 = SSL_get1_peer_certificate(ssl_);
  if (x509 == nullptr) return std::nullopt;
  Certificate c(x509);  // takes its own reference
  X509_free(x509);
  return c;
}

std::string TLSMemoryBIOProtocol::negotiatedProtocol() const {
  if (ssl_ == nullptr) return "";
  const unsigned char* p = nullptr;
  unsigned int n = 0;
  SSL_get0_alpn_selected(ssl_, &p, &n);
  return p == nullptr ? "" : std::string(reinterpret_cast<const char*>(p), n);
}

std::string TLSMemoryBIOProtocol::serverName() const {
  if (ssl_ == nullptr) return "";
  const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
  return name == nullptr ? "" : name;
}

std::string TLSMemoryBIOProtocol::tlsVersion() const {
  return ssl_ != nullptr && handshake_done_ ? SSL_get_version(ssl_) : "";
}

std::string TLSMemoryBIOProtocol::cipherName() const {
  return ssl_ != nullptr && handshake_done_ ? SSL_get_cipher_name(ssl_) : "";
}

// ---- Factories ----------------------------------------------------------------

TLSMemoryBIOFactory::TLSMemoryBIOFactory(std::shared_ptr<const TlsContext> context,
                                         Factory* wrapped, ReactorTime* reactor,
                                         absl::Duration handshake_timeout)
    : WrappingFactory(wrapped),
      context_(std::move(context)),
      settings_(std::make_shared<TlsSettings>()),
      failures_(std::make_shared<int64_t>(0)),
      handler_(std::make_shared<Handler>()) {
  settings_->reactor = reactor;
  settings_->handshake_timeout = handshake_timeout;
  // Shared with the connections, which may outlive the factory.
  settings_->on_handshake_failure = [failures = failures_, handler = handler_](
                                        const Address& peer, const absl::Status& reason) {
    ++*failures;
    if (*handler) {
      (*handler)(peer, reason);
    } else {
      ReportToStderr(peer, reason);
    }
  };
}

void TLSMemoryBIOFactory::setHandshakeFailureHandler(
    std::function<void(const Address& peer, const absl::Status& reason)> handler) {
  *handler_ = std::move(handler);
}

std::unique_ptr<Protocol> TLSMemoryBIOFactory::buildProtocol(const Address& addr) {
  std::unique_ptr<Protocol> p = buildWrapped(addr);
  if (p == nullptr) return nullptr;
  return std::make_unique<TLSMemoryBIOProtocol>(context_, settings_, std::move(p));
}

TLSMemoryBIOClientFactory::TLSMemoryBIOClientFactory(std::shared_ptr<const TlsContext> context,
                                                     ClientFactory* wrapped,
                                                     ReactorTime* reactor,
                                                     absl::Duration handshake_timeout)
    : context_(std::move(context)), wrapped_(wrapped), settings_(std::make_shared<TlsSettings>()) {
  settings_->reactor = reactor;
  settings_->handshake_timeout = handshake_timeout;
  // A client's protocol hears the reason in connectionLost: no stderr line.
  settings_->on_handshake_failure = [](const Address&, const absl::Status&) {};
}

std::unique_ptr<Protocol> TLSMemoryBIOClientFactory::buildProtocol(const Address& addr) {
  std::unique_ptr<Protocol> p = ProtocolWrapper::buildWrapped(wrapped_, addr);
  if (p == nullptr) return nullptr;
  return std::make_unique<TLSMemoryBIOProtocol>(context_, settings_, std::move(p));
}

absl::Status startTLS(Transport* transport, std::shared_ptr<const TlsContext> context,
                      TlsSettings settings) {
  if (transport == nullptr) return absl::InvalidArgumentError("no transport");
  if (TlsOf(transport) != nullptr) {
    return absl::FailedPreconditionError("the connection is TLS already");
  }
  auto shared = std::make_shared<const TlsSettings>(std::move(settings));
  return transport->wrapProtocol([&](std::unique_ptr<Protocol> p) -> std::unique_ptr<Protocol> {
    auto tls = std::make_unique<TLSMemoryBIOProtocol>(context, shared, std::move(p));
    tls->setWrappedAlreadyConnected();
    return tls;
  });
}

}  // namespace twist
