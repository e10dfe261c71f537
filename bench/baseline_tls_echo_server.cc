// The reference point for twist's TLS echo (echo_server --listen=ssl:...):
// a TLS echo server written directly on OpenSSL, with the same
// single-threaded epoll loop as bench/baseline_echo_server.cc. Non-blocking
// SSL_accept (SSL_do_handshake), SSL_read and SSL_write; decrypted bytes are
// written straight back, and when the kernel takes only part of them the
// rest is kept, reading stops, and writability is watched until it is
// flushed.
//
// Socket BIOs (SSL_set_fd), not memory BIOs: OpenSSL then reads and writes
// the socket itself, the least copying and code a program written on
// OpenSSL can have (nginx and `openssl s_server` do the same), so the
// baseline is the strongest simple one. twist cannot do that, since its TLS
// layer does not know what carries it; it gives OpenSSL a BIO of its own
// over the transport (protocols/tls.cc). Read-ahead is on, with a 64 KiB
// read buffer: one read() takes what the kernel holds, as twist's 64 KiB
// read does, instead of two per record (header, then body).
//
// The context is set up as twist's TlsContext::ForServer sets up its own
// (protocols/tls_context.cc): TLS 1.2 and 1.3 only, the same TLS 1.2 cipher
// list, server preference, no renegotiation or compression,
// SSL_MODE_RELEASE_BUFFERS, one session ticket; and TCP_NODELAY on each
// connection, as twist's TLS connections set it. Shares no code with twist.
//
//   ./tools/bazel run //bench:baseline_tls_echo_server -- --port=0
//       --tls_cert=cert.pem --tls_key=key.pem   (one command line)

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "bench/plain_server.h"
#include "gflags/gflags.h"

DEFINE_string(tls_cert, "", "PEM certificate chain of the server (required).");
DEFINE_string(tls_key, "", "PEM private key of that certificate (required).");

namespace {

constexpr char kProgram[] = "baseline_tls_echo_server";
// One TLS record's plaintext at most: SSL_read returns no more at a time.
constexpr size_t kPlainBufferSize = 16 * 1024;
constexpr size_t kReadAheadSize = 64 * 1024;  // twist's read size
// twist's kDefaultTls12Ciphers.
constexpr char kTls12Ciphers[] = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL";

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

// One connection: its socket, its SSL, and the plaintext SSL_write has not
// taken yet (retried with the same bytes, as OpenSSL requires).
struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;
  bool handshake_done = false;
  uint32_t events = EPOLLIN;  // what epoll watches for it
  std::string pending;
};

std::string OpenSslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

SSL_CTX* MakeContext() {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return nullptr;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1 ||
      SSL_CTX_use_certificate_chain_file(ctx, FLAGS_tls_cert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, FLAGS_tls_key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    SSL_CTX_free(ctx);
    return nullptr;
  }
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_num_tickets(ctx, 1);
  SSL_CTX_set_read_ahead(ctx, 1);
  SSL_CTX_set_default_read_buffer_len(ctx, kReadAheadSize);
  return ctx;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "TLS echo server written directly on OpenSSL and epoll, the baseline for\n"
      "twist's TLS benchmarks (bench/tls_bench.py).\n"
      "Usage: baseline_tls_echo_server --tls_cert=CERT.pem --tls_key=KEY.pem\n"
      "       [--host=127.0.0.1] [--port=8000]");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (FLAGS_tls_cert.empty() || FLAGS_tls_key.empty()) {
    PlainFail(kProgram, "--tls_cert and --tls_key are required");
    return 2;
  }
  // The stop signals are blocked except inside epoll_pwait, so one that
  // arrives between the g_stop check and the wait still ends the wait
  // (under valgrind that window is wide enough to lose a SIGTERM).
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals, waiting;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop_signals, &waiting);
  sigdelset(&waiting, SIGINT);
  sigdelset(&waiting, SIGTERM);

  SSL_CTX* ctx = MakeContext();
  if (ctx == nullptr) {
    return PlainFail(kProgram, "cannot load " + FLAGS_tls_cert + " and " + FLAGS_tls_key +
                                   ": " + OpenSslErrors());
  }
  bool bad_usage = false;
  const int lfd = PlainListen(kProgram, /*nonblocking=*/true, &bad_usage);
  if (lfd < 0) return bad_usage ? 2 : 1;

  int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);

  std::vector<std::unique_ptr<Conn>> conns;  // indexed by fd
  std::unique_ptr<char[]> buf(new char[kPlainBufferSize]);
  std::vector<epoll_event> events(1024);

  auto close_conn = [&](Conn* c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, nullptr);
    SSL_free(c->ssl);
    close(c->fd);
    conns[c->fd].reset();
  };
  auto watch = [&](Conn* c, uint32_t what) {
    if (c->events == what) return;
    c->events = what;
    epoll_event e = {};
    e.events = what;
    e.data.fd = c->fd;
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
  };
  // What an OpenSSL call that did not succeed asks for: false when the
  // connection is over (closed here), else the event to wait for is set.
  auto wait_or_close = [&](Conn* c, int r) {
    switch (SSL_get_error(c->ssl, r)) {
      case SSL_ERROR_WANT_READ:
        watch(c, EPOLLIN);
        return true;
      case SSL_ERROR_WANT_WRITE:
        watch(c, EPOLLOUT);
        return true;
      case SSL_ERROR_ZERO_RETURN:  // the peer's close_notify: answer it
        SSL_shutdown(c->ssl);
        [[fallthrough]];
      default:  // a failed handshake, a bad record, a reset, EOF
        ERR_clear_error();
        close_conn(c);
        return false;
    }
  };
  // Writes what is pending; true when all of it went.
  auto flush = [&](Conn* c) {
    while (!c->pending.empty()) {
      const int w = SSL_write(c->ssl, c->pending.data(), static_cast<int>(c->pending.size()));
      if (w <= 0) {
        wait_or_close(c, w);
        return false;
      }
      c->pending.erase(0, static_cast<size_t>(w));
    }
    std::string().swap(c->pending);  // an idle connection holds nothing
    return true;
  };
  // Decrypts and echoes until OpenSSL wants more from the socket.
  auto serve = [&](Conn* c) {
    if (!c->handshake_done) {
      const int r = SSL_do_handshake(c->ssl);
      if (r != 1) {
        wait_or_close(c, r);
        return;
      }
      c->handshake_done = true;
      watch(c, EPOLLIN);
    }
    if (!c->pending.empty()) {  // only writability was watched
      if (!flush(c)) return;
      watch(c, EPOLLIN);
    }
    while (true) {
      const int r = SSL_read(c->ssl, buf.get(), static_cast<int>(kPlainBufferSize));
      if (r <= 0) {
        wait_or_close(c, r);
        return;
      }
      int w = SSL_write(c->ssl, buf.get(), r);
      if (w == r) continue;
      if (w <= 0) {
        if (SSL_get_error(c->ssl, w) != SSL_ERROR_WANT_WRITE) {
          wait_or_close(c, w);
          return;
        }
        w = 0;
      }
      c->pending.assign(buf.get() + w, static_cast<size_t>(r - w));
      watch(c, EPOLLOUT);
      return;
    }
  };

  while (!g_stop) {
    int n = epoll_pwait(ep, events.data(), static_cast<int>(events.size()), -1, &waiting);
    if (n < 0) {
      if (errno == EINTR) continue;
      return PlainFail(kProgram, std::string("epoll_wait: ") + strerror(errno));
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == lfd) {
        while (true) {
          int cfd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (cfd < 0) break;  // EAGAIN, or out of descriptors: try next turn
          SSL* ssl = SSL_new(ctx);
          if (ssl == nullptr || SSL_set_fd(ssl, cfd) != 1) {
            SSL_free(ssl);
            close(cfd);
            continue;
          }
          SSL_set_accept_state(ssl);
          int one = 1;
          setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          if (static_cast<size_t>(cfd) >= conns.size()) conns.resize(cfd + 1);
          conns[cfd] = std::make_unique<Conn>();
          conns[cfd]->fd = cfd;
          conns[cfd]->ssl = ssl;
          epoll_event e = {};
          e.events = EPOLLIN;
          e.data.fd = cfd;
          epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &e);
        }
        continue;
      }
      Conn* c = conns[fd].get();
      if (c != nullptr) serve(c);
    }
  }
  for (auto& c : conns) {
    if (c != nullptr) close_conn(c.get());
  }
  SSL_CTX_free(ctx);
  return 0;
}
