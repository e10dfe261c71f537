#include "protocols/tls_context.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "framework/address.h"

namespace twist {
namespace {

int VersionOf(TlsVersion v) { return v == TlsVersion::kTls13 ? TLS1_3_VERSION : TLS1_2_VERSION; }

absl::Status Failed(absl::string_view what) {
  std::string errors = TakeOpenSslErrors();
  return absl::InvalidArgumentError(
      errors.empty() ? std::string(what) : absl::StrCat(what, ": ", errors));
}

// ALPN's wire format: each name preceded by its length.
absl::StatusOr<std::string> AlpnWire(const std::vector<std::string>& names) {
  std::string wire;
  for (const std::string& n : names) {
    if (n.empty() || n.size() > 255) {
      return absl::InvalidArgumentError(
          absl::StrCat("ALPN protocol name '", n, "' must be 1 to 255 bytes"));
    }
    wire.push_back(static_cast<char>(n.size()));
    wire += n;
  }
  return wire;
}

// The server's choice: its first preference the client also offers
// (SSL_select_next_proto prefers the server's order).
int SelectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void* arg) {
  const auto* prefs = static_cast<const std::string*>(arg);
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, outlen,
                            reinterpret_cast<const unsigned char*>(prefs->data()),
                            static_cast<unsigned int>(prefs->size()), in,
                            inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

// What both sides share: versions, ciphers, and the memory an idle
// connection keeps.
absl::StatusOr<SSL_CTX*> NewContext(bool client, TlsVersion min_version,
                                    const std::string& ciphers) {
  SSL_CTX* ctx = SSL_CTX_new(client ? TLS_client_method() : TLS_server_method());
  if (ctx == nullptr) return Failed("cannot make an OpenSSL context");
  SSL_CTX_set_min_proto_version(ctx, VersionOf(min_version));
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  if (SSL_CTX_set_cipher_list(ctx, ciphers.empty() ? kDefaultTls12Ciphers : ciphers.c_str()) !=
      1) {
    SSL_CTX_free(ctx);
    return Failed(absl::StrCat("no usable cipher in '", ciphers, "'"));
  }
  // Idle connections give their read and write buffers back (about 34 KiB
  // each otherwise); a server of many quiet TLS connections needs that.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  // No renegotiation (a DoS vector, and TLS 1.3 has none), no compression.
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  return ctx;
}

absl::Status UseCertificate(SSL_CTX* ctx, const std::string& chain, const std::string& key) {
  if (chain.empty()) return absl::InvalidArgumentError("no certificate file given");
  if (SSL_CTX_use_certificate_chain_file(ctx, chain.c_str()) != 1) {
    return Failed(absl::StrCat("cannot read the certificate chain ", chain));
  }
  const std::string& key_file = key.empty() ? chain : key;
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return Failed(absl::StrCat("cannot read the private key ", key_file));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return Failed(absl::StrCat("the private key ", key_file, " does not match the certificate ",
                               chain));
  }
  return absl::OkStatus();
}

std::string NameString(X509_NAME* name) {
  if (name == nullptr) return "";
  BIO* bio = BIO_new(BIO_s_mem());
  X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

}  // namespace

std::string TakeOpenSslErrors() {
  std::vector<std::string> parts;
  while (unsigned long e = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(e);
    std::string part = reason != nullptr ? reason : absl::StrCat("OpenSSL error ", e);
    if (parts.empty() || parts.back() != part) parts.push_back(std::move(part));
  }
  return absl::StrJoin(parts, "; ");
}

absl::StatusOr<std::shared_ptr<TlsContext>> TlsContext::ForServer(
    const TlsServerOptions& options) {
  ERR_clear_error();
  absl::StatusOr<std::string> alpn = AlpnWire(options.alpn);
  if (!alpn.ok()) return alpn.status();
  absl::StatusOr<SSL_CTX*> ctx = NewContext(false, options.min_version, options.ciphers);
  if (!ctx.ok()) return ctx.status();
  std::shared_ptr<TlsContext> context(new TlsContext(*ctx, false));
  if (absl::Status s =
          UseCertificate(*ctx, options.certificate_chain_file, options.private_key_file);
      !s.ok()) {
    return s;
  }
  if (!options.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(*ctx, options.client_ca_file.c_str(), nullptr) != 1) {
      return Failed(absl::StrCat("cannot read the CA certificates ", options.client_ca_file));
    }
    SSL_CTX_set_verify(*ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options.client_ca_file.c_str())) {
      SSL_CTX_set_client_CA_list(*ctx, names);
    }
  }
  context->alpn_wire_ = *std::move(alpn);
  if (!context->alpn_wire_.empty()) {
    // The string lives as long as the context, which the SSL_CTX is part of.
    SSL_CTX_set_alpn_select_cb(*ctx, &SelectAlpn, &context->alpn_wire_);
  }
  // Session tickets let a returning client skip the full handshake; two
  // are OpenSSL's default for TLS 1.3, one is enough.
  SSL_CTX_set_num_tickets(*ctx, 1);
  return context;
}

absl::StatusOr<std::shared_ptr<TlsContext>> TlsContext::ForClient(
    const TlsClientOptions& options) {
  ERR_clear_error();
  if (options.hostname.empty() && !options.insecure_skip_verification) {
    return absl::InvalidArgumentError(
        "a TLS client needs the server's host name to check its certificate against");
  }
  absl::StatusOr<std::string> alpn = AlpnWire(options.alpn);
  if (!alpn.ok()) return alpn.status();
  absl::StatusOr<SSL_CTX*> ctx = NewContext(true, options.min_version, options.ciphers);
  if (!ctx.ok()) return ctx.status();
  std::shared_ptr<TlsContext> context(new TlsContext(*ctx, true));
  context->hostname_ = options.hostname;
  context->verify_ = !options.insecure_skip_verification;
  if (!options.certificate_chain_file.empty()) {
    if (absl::Status s = UseCertificate(*ctx, options.certificate_chain_file,
                                        options.private_key_file);
        !s.ok()) {
      return s;
    }
  }
  if (context->verify_) {
    const int loaded =
        options.ca_certs_file.empty()
            ? SSL_CTX_set_default_verify_paths(*ctx)
            : SSL_CTX_load_verify_locations(*ctx, options.ca_certs_file.c_str(), nullptr);
    if (loaded != 1) {
      return Failed(options.ca_certs_file.empty()
                        ? std::string("cannot load the system's trusted certificates")
                        : absl::StrCat("cannot read the CA certificates ", options.ca_certs_file));
    }
    SSL_CTX_set_verify(*ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(*ctx, SSL_VERIFY_NONE, nullptr);
  }
  if (!alpn->empty() &&
      SSL_CTX_set_alpn_protos(*ctx, reinterpret_cast<const unsigned char*>(alpn->data()),
                              static_cast<unsigned int>(alpn->size())) != 0) {
    return Failed("cannot set the ALPN protocols");
  }
  return context;
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

absl::StatusOr<SSL*> TlsContext::newSsl() const {
  SSL* ssl = SSL_new(ctx_);
  if (ssl == nullptr) return Failed("cannot make an OpenSSL connection");
  if (!client_) {
    SSL_set_accept_state(ssl);
    return ssl;
  }
  SSL_set_connect_state(ssl);
  if (!hostname_.empty()) {
    // An IP address is checked as one and is not sent as SNI (RFC 6066
    // allows host names only).
    const bool is_ip = Address::Parse(hostname_, 0).ok();
    if (!is_ip) SSL_set_tlsext_host_name(ssl, hostname_.c_str());
    if (verify_) {
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      const int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, hostname_.c_str())
                           : X509_VERIFY_PARAM_set1_host(param, hostname_.c_str(), 0);
      if (ok != 1) {
        SSL_free(ssl);
        return Failed(absl::StrCat("cannot check certificates for '", hostname_, "'"));
      }
    }
  }
  return ssl;
}

Certificate::Certificate(X509* x509) : x509_(x509) { X509_up_ref(x509_); }
Certificate::~Certificate() { X509_free(x509_); }
Certificate::Certificate(const Certificate& other) : x509_(other.x509_) { X509_up_ref(x509_); }
Certificate& Certificate::operator=(const Certificate& other) {
  X509_up_ref(other.x509_);
  X509_free(x509_);
  x509_ = other.x509_;
  return *this;
}

std::string Certificate::subject() const { return NameString(X509_get_subject_name(x509_)); }
std::string Certificate::issuer() const { return NameString(X509_get_issuer_name(x509_)); }

std::string Certificate::commonName() const {
  X509_NAME* name = X509_get_subject_name(x509_);
  const int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (i < 0) return "";
  ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
  unsigned char* utf8 = nullptr;
  const int n = ASN1_STRING_to_UTF8(&utf8, s);
  if (n < 0) return "";
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  return out;
}

std::string Certificate::pem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, x509_);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

std::string Certificate::sha256Fingerprint() const {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  X509_digest(x509_, EVP_sha256(), md, &n);
  std::vector<std::string> hex;
  for (unsigned int i = 0; i < n; ++i) hex.push_back(absl::StrFormat("%02X", md[i]));
  return absl::StrJoin(hex, ":");
}

}  // namespace twist
