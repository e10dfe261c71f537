#ifndef TWIST_PROTOCOLS_TLS_CONTEXT_H_
#define TWIST_PROTOCOLS_TLS_CONTEXT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

// OpenSSL's types, declared rather than included: users of twist's TLS need
// not see OpenSSL's headers.
typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct x509_st X509;

namespace twist {

/// The TLS versions twist speaks: 1.2 and 1.3, nothing older.
enum class TlsVersion { kTls12, kTls13 };

/// What a server presents and accepts (the server side of Twisted's
/// CertificateOptions).
struct TlsServerOptions {
  /// PEM: the server's certificate, then any intermediates, in order.
  std::string certificate_chain_file;
  /// PEM private key of that certificate. Empty: it is in
  /// certificate_chain_file (Twisted's ssl: endpoint reads it from there when
  /// certKey is not given, the other way round).
  std::string private_key_file;
  /// Application protocols the server accepts, most preferred first (ALPN,
  /// "h2", "http/1.1"). Empty: no ALPN. A client that offers none of them
  /// goes on without one, as OpenSSL's default callback does.
  std::vector<std::string> alpn;
  /// PEM CA certificates: when set, every client must present a certificate
  /// they signed (mutual TLS); a client without one fails its handshake.
  std::string client_ca_file;
  TlsVersion min_version = TlsVersion::kTls12;
  /// OpenSSL cipher list for TLS 1.2; empty: kDefaultTls12Ciphers. TLS 1.3's
  /// suites are OpenSSL's defaults (all AEAD).
  std::string ciphers;
};

/// How a client checks the server (Twisted's optionsForClientTLS).
struct TlsClientOptions {
  /// The name the server's certificate must carry (a DNS name or an IP
  /// address); also sent as SNI when it is a name. Required unless
  /// insecure_skip_verification.
  std::string hostname;
  /// PEM CA certificates to trust; empty: the system's store (Debian's
  /// /etc/ssl/certs).
  std::string ca_certs_file;
  /// Application protocols to offer, most preferred first (ALPN).
  std::vector<std::string> alpn;
  /// A client certificate (PEM chain) and its key, for servers that ask.
  std::string certificate_chain_file;
  std::string private_key_file;
  TlsVersion min_version = TlsVersion::kTls12;
  std::string ciphers;  // as TlsServerOptions::ciphers
  /// INSECURE: accept any certificate for any name. For tests against
  /// throwaway certificates only; the handshake then proves nothing about
  /// who is at the other end.
  bool insecure_skip_verification = false;
};

/// Forward secrecy and AEAD only: what TLS 1.2 offers when no list is given.
inline constexpr char kDefaultTls12Ciphers[] =
    "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL";

/// A certificate as the peer presented it (Twisted's
/// twisted.internet.ssl.Certificate).
class Certificate {
 public:
  /// Takes a reference of its own on `x509`.
  explicit Certificate(X509* x509);
  ~Certificate();
  Certificate(const Certificate& other);
  Certificate& operator=(const Certificate& other);

  /// "CN=localhost,O=twist test" (RFC 2253).
  std::string subject() const;
  std::string issuer() const;
  /// The subject's common name; "" if it has none.
  std::string commonName() const;
  /// PEM text.
  std::string pem() const;
  /// SHA-256 of the DER encoding, as upper-case hex pairs joined by ':'.
  std::string sha256Fingerprint() const;
  X509* x509() const { return x509_; }

 private:
  X509* x509_;
};

/// An OpenSSL context made from options, shared by every connection that
/// uses it (Twisted's context factories). Immutable once made.
class TlsContext {
 public:
  static absl::StatusOr<std::shared_ptr<TlsContext>> ForServer(const TlsServerOptions& options);
  static absl::StatusOr<std::shared_ptr<TlsContext>> ForClient(const TlsClientOptions& options);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  bool isClient() const { return client_; }
  /// The name a client checks and sends as SNI ("" for a server).
  const std::string& hostname() const { return hostname_; }
  /// A new connection's SSL object, in client or server mode, with the
  /// client's host-name check set.
  absl::StatusOr<SSL*> newSsl() const;
  SSL_CTX* get() const { return ctx_; }

 private:
  TlsContext(SSL_CTX* ctx, bool client) : ctx_(ctx), client_(client) {}

  SSL_CTX* ctx_;
  bool client_;
  bool verify_ = true;
  std::string hostname_;
  std::string alpn_wire_;  // server: its preferences, in ALPN's wire format
};

/// The OpenSSL errors queued on this thread, as one line, and clears them:
/// "certificate verify failed; ..." (empty if there are none).
std::string TakeOpenSslErrors();

}  // namespace twist

#endif  // TWIST_PROTOCOLS_TLS_CONTEXT_H_
