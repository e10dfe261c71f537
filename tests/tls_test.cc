// TLS (protocols/tls.h) through the real reactor over loopback sockets:
// twist against twist, and twist against a plain OpenSSL client on a
// blocking socket, for what only a raw peer can do (close without
// close_notify, offer TLS 1.1, send garbage).

#include "protocols/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_cat.h"
#include "framework/client_factory.h"
#include "framework/endpoints.h"
#include "framework/errors.h"
#include "framework/reactor.h"
#include "framework/tcp_port.h"
#include "gtest/gtest.h"
#include "protocols/basic.h"
#include "protocols/echo.h"
#include "protocols/tls_context.h"
#include "protocols/tls_endpoints.h"
#include "tests/test_util.h"
#include "tests/tls_certs.h"

namespace twist {
namespace {

using testing::BlockingClient;
using testing::kTimeout;
using testing::RunBeside;
using testing::RunUntil;
using testing::Certs;
using testing::StreamByte;
using testing::TestCerts;

std::shared_ptr<TlsContext> ServerContext(const std::string& name = "server",
                                          std::vector<std::string> alpn = {}) {
  TlsServerOptions o;
  o.certificate_chain_file = Certs().pem(name);
  o.private_key_file = Certs().key(name);
  o.alpn = std::move(alpn);
  absl::StatusOr<std::shared_ptr<TlsContext>> c = TlsContext::ForServer(o);
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

std::shared_ptr<TlsContext> ClientContext(const std::string& host = "localhost",
                                          const std::string& ca = "ca",
                                          std::vector<std::string> alpn = {}) {
  TlsClientOptions o;
  o.hostname = host;
  o.ca_certs_file = Certs().pem(ca);
  o.alpn = std::move(alpn);
  absl::StatusOr<std::shared_ptr<TlsContext>> c = TlsContext::ForClient(o);
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

// Records what a connection saw; echoes if asked; answers "quit" with
// "bye" and loseConnection().
struct Seen {
  std::string data;
  bool made = false;
  bool lost = false;
  absl::Status reason;
  Transport* transport = nullptr;
};
class Recorder : public Protocol {
 public:
  Recorder(Seen* seen, bool echo, std::string first_write = "")
      : seen_(seen), echo_(echo), first_write_(std::move(first_write)) {}
  void connectionMade() override {
    seen_->made = true;
    seen_->transport = transport();
    if (!first_write_.empty()) transport()->write(first_write_);
  }
  void dataReceived(absl::string_view data) override {
    seen_->data.append(data.data(), data.size());
    if (data == "quit") {
      transport()->write("bye");
      transport()->loseConnection();
      return;
    }
    if (echo_) transport()->write(data);
  }
  void connectionLost(const absl::Status& reason) override {
    seen_->lost = true;
    seen_->reason = reason;
    seen_->transport = nullptr;
  }

 private:
  Seen* seen_;
  bool echo_;
  std::string first_write_;
};

class OneClient : public ClientFactory {
 public:
  OneClient(Seen* seen, std::string first_write = "") : seen_(seen), first_(first_write) {}
  std::unique_ptr<Protocol> buildProtocol(const Address&) override {
    return std::make_unique<Recorder>(seen_, false, first_);
  }
  void clientConnectionFailed(Connector*, const absl::Status& reason) override {
    failed = reason;
  }
  absl::Status failed;

 private:
  Seen* seen_;
  std::string first_;
};

// A TLS server on 127.0.0.1 whose connections are Recorders (echoing),
// with its handshake failures counted.
// Its Recorders' records are in `seen`, which outlives the reactor (its
// destructor still closes connections, whose Recorders then write there).
struct Server {
  Server(Reactor* reactor, std::deque<Seen>* seen_store, std::shared_ptr<TlsContext> context,
         absl::Duration handshake_timeout = absl::Seconds(30))
      : seen(*seen_store),
        plain([this] { return std::make_unique<Recorder>(&seen.emplace_back(), true); }),
        tls(std::move(context), &plain, reactor, handshake_timeout) {
    tls.setHandshakeFailureHandler(
        [this](const Address&, const absl::Status& reason) { failures.push_back(reason); });
    absl::StatusOr<Port*> p = reactor->listenTCP(0, &tls, 50, "127.0.0.1");
    EXPECT_TRUE(p.ok()) << p.status();
    port = *p;
  }
  Address address() const { return port->getHost(); }
  std::deque<Seen>& seen;
  Factory plain;
  TLSMemoryBIOFactory tls;
  std::vector<absl::Status> failures;
  Port* port = nullptr;
};

// A plain OpenSSL client on a blocking socket (run beside the reactor).
class RawTlsClient {
 public:
  explicit RawTlsClient(int max_version = TLS1_3_VERSION, bool verify = true) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_max_proto_version(ctx_, max_version);
    if (max_version < TLS1_2_VERSION) SSL_CTX_set_security_level(ctx_, 0);
    if (verify) {
      SSL_CTX_load_verify_locations(ctx_, Certs().pem("ca").c_str(), nullptr);
      SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    }
  }
  ~RawTlsClient() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    SSL_CTX_free(ctx_);
  }
  // Handshakes over `fd`; the error text on failure.
  std::string Connect(int fd) {
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd);
    SSL_set_tlsext_host_name(ssl_, "localhost");
    if (SSL_connect(ssl_) != 1) return absl::StrCat("failed: ", TakeOpenSslErrors());
    return "ok";
  }
  bool Write(absl::string_view data) {
    return SSL_write(ssl_, data.data(), static_cast<int>(data.size())) ==
           static_cast<int>(data.size());
  }
  // Reads exactly n bytes; fewer if the stream ends.
  std::string Read(size_t n) {
    std::string out;
    char buf[16384];
    while (out.size() < n) {
      int r = SSL_read(ssl_, buf, static_cast<int>(std::min(sizeof buf, n - out.size())));
      if (r <= 0) {
        last_error = SSL_get_error(ssl_, r);
        break;
      }
      out.append(buf, static_cast<size_t>(r));
    }
    return out;
  }
  SSL* ssl() const { return ssl_; }
  int last_error = 0;

 private:
  SSL_CTX* ctx_;
  SSL* ssl_ = nullptr;
};

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Certs();
    reactor_ = testing::MakeReactor("epoll");
  }
  // What the Recorders write to lives longer than the reactor (declared
  // first, destroyed last), whose destructor may still close connections.
  Seen& NewSeen() { return seen_.emplace_back(); }
  std::deque<Seen>* NewStore() { return &stores_.emplace_back(); }
  std::deque<Seen> seen_;
  std::deque<std::deque<Seen>> stores_;
  std::unique_ptr<Reactor> reactor_;
};

TEST_F(TlsTest, UnixSocketEchoesWithPeerCertificateAlpnAndSni) {
  testing::SocketDir dir;
  std::deque<Seen>& server_seen = *NewStore();
  Factory plain([&] { return std::make_unique<Recorder>(&server_seen.emplace_back(), true); });
  TLSMemoryBIOFactory tls(ServerContext("server", {"h2", "http/1.1"}), &plain, reactor_.get());
  ASSERT_TRUE(reactor_->listenUNIX(dir.path("tls.sock"), &tls).ok());

  Seen& client = NewSeen();
  OneClient user(&client, "hello over unix");
  TLSMemoryBIOClientFactory client_tls(ClientContext("localhost", "ca", {"http/1.1", "h2"}), &user,
                                       reactor_.get());
  reactor_->connectUNIX(dir.path("tls.sock"), &client_tls);
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return client.data == "hello over unix"; }))
      << client.data << " " << client.reason;
  TlsTransport* t = TlsOf(client.transport);
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(t->handshakeDone());
  EXPECT_EQ(t->tlsVersion(), "TLSv1.3");
  EXPECT_EQ(t->negotiatedProtocol(), "h2");  // the server's preference
  std::optional<Certificate> cert = t->getPeerCertificate();
  ASSERT_TRUE(cert.has_value());
  EXPECT_EQ(cert->commonName(), "localhost");
  EXPECT_EQ(cert->issuer(), "CN=twist test CA");
  ASSERT_EQ(server_seen.size(), 1u);
  TlsTransport* s = TlsOf(server_seen[0].transport);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->serverName(), "localhost");
  EXPECT_FALSE(s->getPeerCertificate().has_value());  // no client certificate
  // A Unix transport's own calls still pass through the TLS layer.
  auto* local = dynamic_cast<UnixTransport*>(server_seen[0].transport);
  ASSERT_NE(local, nullptr);
  EXPECT_TRUE(local->getPeerCredentials().ok());

  client.transport->loseConnection();  // close_notify, both ways
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return client.lost && server_seen[0].lost; }));
  EXPECT_TRUE(client.reason.ok()) << client.reason;
  EXPECT_TRUE(server_seen[0].reason.ok()) << server_seen[0].reason;
  EXPECT_TRUE(tls.handshakeFailures() == 0);
}

TEST_F(TlsTest, ClientOverTheTlsEndpointSeesEachVerificationFailure) {
  struct Case {
    std::string server_cert, host, ca, expected;
  };
  const std::vector<Case> cases = {
      {"expired", "localhost", "ca", "certificate has expired"},
      {"wronghost", "localhost", "ca", "hostname mismatch"},
      {"server", "localhost", "other_ca", "unable to get local issuer certificate"},
      {"server", "127.0.0.2", "ca", "IP address mismatch"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.server_cert + " " + c.host + " " + c.ca);
    Server server(reactor_.get(), NewStore(), ServerContext(c.server_cert));
    // The endpoint dials 127.0.0.1 whatever name it checks: the host is
    // given as a literal address in each case but "localhost".
    const std::string endpoint = absl::StrCat(
        "tls:host=", c.host == "127.0.0.2" ? "127.0.0.1" : c.host, ":port=",
        server.address().port(), ":caCertsFile=", Certs().pem(c.ca));
    absl::StatusOr<std::unique_ptr<ClientEndpoint>> e = clientFromString(reactor_.get(), endpoint);
    ASSERT_TRUE(e.ok()) << e.status();
    std::unique_ptr<ClientEndpoint> ep = *std::move(e);
    if (c.host == "127.0.0.2") {
      // Checked against a name the certificate does not carry.
      TlsClientOptions o;
      o.hostname = "127.0.0.2";
      o.ca_certs_file = Certs().pem("ca");
      Seen& client = NewSeen();
      OneClient user(&client, "x");
      TLSMemoryBIOClientFactory f(*TlsContext::ForClient(o), &user, reactor_.get());
      reactor_->connectTCP("127.0.0.1", server.address().port(), &f);
      ASSERT_TRUE(RunUntil(*reactor_, [&] { return client.lost && !server.failures.empty(); }));
      EXPECT_TRUE(IsTlsHandshakeFailure(client.reason)) << client.reason;
      EXPECT_TRUE(absl::StrContains(client.reason.message(), c.expected)) << client.reason;
      continue;
    }
    Seen& client = NewSeen();
    OneClient user(&client, "x");
    ASSERT_TRUE(ep->connect(&user).ok());
    ASSERT_TRUE(RunUntil(*reactor_, [&] { return client.lost && !server.failures.empty(); }))
        << client.reason;
    EXPECT_TRUE(IsTlsHandshakeFailure(client.reason)) << client.reason;
    EXPECT_TRUE(absl::StrContains(client.reason.message(), c.expected)) << client.reason;
    EXPECT_EQ(client.data, "");  // nothing got through
    // The server heard the client's alert, and reports it once.
    ASSERT_EQ(server.failures.size(), 1u);
    EXPECT_TRUE(IsTlsHandshakeFailure(server.failures[0])) << server.failures[0];
    EXPECT_TRUE(absl::StrContains(server.failures[0].message(), "alert")) << server.failures[0];
    EXPECT_EQ(server.tls.handshakeFailures(), 1);
    // ... and still serves a good client afterwards.
    if (c.server_cert == "server") {
      Seen& good = NewSeen();
      OneClient good_user(&good, "still here");
      auto ok = clientFromString(reactor_.get(),
                                 absl::StrCat("tls:host=localhost:port=", server.address().port(),
                                              ":caCertsFile=", Certs().pem("ca")));
      ASSERT_TRUE(ok.ok());
      ASSERT_TRUE((*ok)->connect(&good_user).ok());
      ASSERT_TRUE(RunUntil(*reactor_, [&] { return good.data == "still here"; })) << good.reason;
      good.transport->loseConnection();
      ASSERT_TRUE(RunUntil(*reactor_, [&] { return good.lost; }));
    }
    server.port->stopListening();
  }
}

TEST_F(TlsTest, PeerWithoutCloseNotifyIsReportedAsTruncated) {
  Server server(reactor_.get(), NewStore(), ServerContext());
  for (bool clean : {false, true}) {
    SCOPED_TRACE(clean ? "close_notify" : "no close_notify");
    absl::StatusOr<BlockingClient> c = BlockingClient::Connect(server.address());
    ASSERT_TRUE(c.ok());
    RawTlsClient raw;
    std::string echoed;
    ASSERT_TRUE(RunBeside(*reactor_, [&] {
      if (raw.Connect(c->fd()) != "ok") return;
      raw.Write("ping");
      echoed = raw.Read(4);
      if (clean) SSL_shutdown(raw.ssl());
      c->ShutdownWrite();  // a FIN, with or without close_notify before it
    }));
    EXPECT_EQ(echoed, "ping");
    Seen& s = server.seen.back();
    ASSERT_TRUE(RunUntil(*reactor_, [&] { return s.lost; }));
    if (clean) {
      EXPECT_TRUE(s.reason.ok()) << s.reason;
    } else {
      EXPECT_TRUE(IsTlsTruncated(s.reason)) << s.reason;
      EXPECT_TRUE(IsConnectionLost(s.reason)) << s.reason;
    }
  }
  EXPECT_TRUE(server.failures.empty());
}

TEST_F(TlsTest, LoseConnectionSendsCloseNotifyAfterWhatWasWritten) {
  Server server(reactor_.get(), NewStore(), ServerContext());
  absl::StatusOr<BlockingClient> c = BlockingClient::Connect(server.address());
  ASSERT_TRUE(c.ok());
  RawTlsClient raw;
  std::string got;
  int end = 0;
  ASSERT_TRUE(RunBeside(*reactor_, [&] {
    if (raw.Connect(c->fd()) != "ok") return;
    raw.Write("quit");  // the server writes "bye" and loses the connection
    got = raw.Read(100);
    end = raw.last_error;
  }));
  EXPECT_EQ(got, "bye");
  EXPECT_EQ(end, SSL_ERROR_ZERO_RETURN) << "the stream did not end with close_notify";
}

TEST_F(TlsTest, HandshakeFailuresEndOnlyThatConnectionWithAReadableReason) {
  Server server(reactor_.get(), NewStore(), ServerContext());
  struct Case {
    std::string name;
    std::string send;       // raw bytes, or "" for a TLS 1.1 client
    std::string expected;   // in the server's reason
  };
  const std::vector<Case> cases = {
      {"plain text", "GET / HTTP/1.0\r\n\r\n", "does not speak TLS"},
      {"line of text", "hello there, are you TLS?\r\n", "does not speak TLS"},
      {"garbage", std::string("\x16\x03\x01\x00\x05garbagegarbage", 20), "TLS handshake with"},
      {"TLS 1.1", "", "unsupported protocol"},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.name);
    const size_t before = server.failures.size();
    absl::StatusOr<BlockingClient> c = BlockingClient::Connect(server.address());
    ASSERT_TRUE(c.ok());
    std::string client_says;
    ASSERT_TRUE(RunBeside(*reactor_, [&] {
      if (k.send.empty()) {
        RawTlsClient old(TLS1_1_VERSION);
        client_says = old.Connect(c->fd());
        return;
      }
      (void)c->SendAll(k.send);
      (void)c->ReadUntilClosed();  // the server closes it
    }));
    ASSERT_TRUE(RunUntil(*reactor_, [&] { return server.failures.size() > before; }));
    ASSERT_EQ(server.failures.size(), before + 1) << "reported once";
    const absl::Status& r = server.failures.back();
    EXPECT_TRUE(IsTlsHandshakeFailure(r)) << r;
    EXPECT_TRUE(absl::StrContains(r.message(), k.expected)) << r;
    EXPECT_TRUE(absl::StartsWith(r.message(), "TLS handshake with 127.0.0.1:")) << r;
    ASSERT_TRUE(RunUntil(*reactor_, [&] { return server.seen.back().lost; }));
    EXPECT_EQ(server.seen.back().reason, r);  // the wrapped protocol hears the same
    if (k.send.empty()) {
      EXPECT_TRUE(absl::StrContains(client_says, "failed")) << client_says;
    }
  }
  // The server still serves.
  Seen& good = NewSeen();
  OneClient user(&good, "fine");
  TLSMemoryBIOClientFactory f(ClientContext(), &user, reactor_.get());
  reactor_->connectTCP("127.0.0.1", server.address().port(), &f);
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return good.data == "fine"; })) << good.reason;
}

TEST_F(TlsTest, HandshakeTimeoutClosesAStalledPeer) {
  Server server(reactor_.get(), NewStore(), ServerContext(), absl::Milliseconds(200));
  for (bool partial : {false, true}) {
    SCOPED_TRACE(partial ? "half a hello" : "silent");
    const size_t before = server.failures.size();
    absl::StatusOr<BlockingClient> c = BlockingClient::Connect(server.address());
    ASSERT_TRUE(c.ok());
    absl::StatusOr<std::string> rest;
    ASSERT_TRUE(RunBeside(*reactor_, [&] {
      if (partial) (void)c->SendAll(std::string("\x16\x03\x01\x02\x00\x01", 6));
      rest = c->ReadUntilClosed();
    }));
    ASSERT_TRUE(rest.ok()) << rest.status();  // closed well before kTimeout
    ASSERT_TRUE(RunUntil(*reactor_, [&] { return server.failures.size() > before; }));
    EXPECT_TRUE(IsTlsHandshakeTimeout(server.failures.back())) << server.failures.back();
    ASSERT_TRUE(RunUntil(*reactor_, [&] { return server.seen.back().lost; }));
    EXPECT_TRUE(IsTlsHandshakeTimeout(server.seen.back().reason));
  }
}

// A line protocol that turns to TLS on "STARTTLS" (SMTP's way).
class StartTlsServer : public LineReceiver {
 public:
  explicit StartTlsServer(std::shared_ptr<TlsContext> context) : context_(std::move(context)) {}
  void lineReceived(absl::string_view line) override {
    if (line == "STARTTLS") {
      sendLine("GO");  // the last plain line
      absl::Status s = startTLS(transport(), context_);
      if (!s.ok()) sendLine(absl::StrCat("ERR ", s.message()));
      return;
    }
    sendLine(absl::StrCat(TlsOf(transport()) != nullptr ? "tls " : "plain ", line));
  }

 private:
  std::shared_ptr<TlsContext> context_;
};

class StartTlsClient : public LineReceiver {
 public:
  StartTlsClient(std::shared_ptr<TlsContext> context, std::vector<std::string>* lines)
      : context_(std::move(context)), lines_(lines) {}
  void connectionMade() override { sendLine("hi"); }
  void lineReceived(absl::string_view line) override {
    lines_->emplace_back(line);
    if (line == "plain hi") {
      sendLine("STARTTLS");
    } else if (line == "GO") {
      ASSERT_TRUE(startTLS(transport(), context_).ok());
      sendLine("secret");
    } else if (line == "tls secret") {
      TlsTransport* t = TlsOf(transport());
      ASSERT_NE(t, nullptr);
      std::optional<Certificate> cert = t->getPeerCertificate();
      lines_->push_back(cert.has_value() ? cert->commonName() : "no certificate");
      // A second startTLS is refused.
      lines_->push_back(startTLS(transport(), context_).ToString());
      transport()->loseConnection();
    }
  }

 private:
  std::shared_ptr<TlsContext> context_;
  std::vector<std::string>* lines_;
};

TEST_F(TlsTest, StartTlsInTheMiddleOfALineProtocol) {
  std::shared_ptr<TlsContext> server_context = ServerContext();
  Factory server([&] { return std::make_unique<StartTlsServer>(server_context); });
  absl::StatusOr<Port*> port = reactor_->listenTCP(0, &server, 50, "127.0.0.1");
  ASSERT_TRUE(port.ok());
  std::vector<std::string> lines;
  std::shared_ptr<TlsContext> client_context = ClientContext();
  ClientFactory client;
  struct Maker : ClientFactory {
    std::function<std::unique_ptr<Protocol>()> make;
    std::unique_ptr<Protocol> buildProtocol(const Address&) override { return make(); }
    bool lost = false;
    absl::Status reason;
    void clientConnectionLost(Connector*, const absl::Status& r) override {
      lost = true;
      reason = r;
    }
  } maker;
  maker.make = [&] { return std::make_unique<StartTlsClient>(client_context, &lines); };
  reactor_->connectTCP("127.0.0.1", (*port)->getHost().port(), &maker);
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return maker.lost; }));
  EXPECT_TRUE(maker.reason.ok()) << maker.reason;
  ASSERT_EQ(lines.size(), 5u) << absl::StrJoin(lines, "|");
  EXPECT_EQ(lines[0], "plain hi");
  EXPECT_EQ(lines[1], "GO");
  EXPECT_EQ(lines[2], "tls secret");
  EXPECT_EQ(lines[3], "localhost");
  EXPECT_TRUE(absl::StrContains(lines[4], "TLS already")) << lines[4];
}

TEST_F(TlsTest, EchoesSixtyFourMegabytesByteForByte) {
  Factory echo([] { return std::make_unique<Echo>(); });
  TLSMemoryBIOFactory tls(ServerContext(), &echo, reactor_.get());
  absl::StatusOr<Port*> port = reactor_->listenTCP(0, &tls, 50, "127.0.0.1");
  ASSERT_TRUE(port.ok());
  constexpr size_t kTotal = 64u << 20;
  std::string payload(kTotal, '\0');
  for (size_t i = 0; i < kTotal; ++i) payload[i] = StreamByte(i);

  Seen& client = NewSeen();
  OneClient user(&client);
  TLSMemoryBIOClientFactory f(ClientContext(), &user, reactor_.get());
  reactor_->connectTCP("127.0.0.1", (*port)->getHost().port(), &f);
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return client.made; }));
  // In 1 MiB writes, the first before the handshake has even begun.
  for (size_t at = 0; at < kTotal; at += 1u << 20) {
    client.transport->write(absl::string_view(payload).substr(at, 1u << 20));
  }
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return client.data.size() >= kTotal || client.lost; },
                       absl::Seconds(120)))
      << client.data.size();
  ASSERT_EQ(client.data.size(), kTotal);
  EXPECT_TRUE(client.data == payload) << "the echo differs";
  client.transport->loseConnection();
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return client.lost; }));
  EXPECT_TRUE(client.reason.ok()) << client.reason;
}

// TLS inside TLS (a tunnel through a TLS proxy): each layer's records
// leave through the layer below, whose own OpenSSL call runs while the
// layer above is still sending; neither's bytes may join the other's.
TEST_F(TlsTest, TlsInsideTlsEchoesByteForByte) {
  std::deque<Seen>& server_seen = *NewStore();
  Factory plain([&] { return std::make_unique<Recorder>(&server_seen.emplace_back(), true); });
  TLSMemoryBIOFactory inner(ServerContext(), &plain, reactor_.get());
  TLSMemoryBIOFactory outer(ServerContext(), &inner, reactor_.get());
  absl::StatusOr<Port*> port = reactor_->listenTCP(0, &outer, 50, "127.0.0.1");
  ASSERT_TRUE(port.ok());
  std::string payload(200000, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = StreamByte(i);

  Seen& client = NewSeen();
  OneClient user(&client, payload);
  TLSMemoryBIOClientFactory client_inner(ClientContext(), &user, reactor_.get());
  TLSMemoryBIOClientFactory client_outer(ClientContext(), &client_inner, reactor_.get());
  reactor_->connectTCP("127.0.0.1", (*port)->getHost().port(), &client_outer);
  ASSERT_TRUE(RunUntil(*reactor_,
                       [&] { return client.data.size() >= payload.size() || client.lost; }))
      << client.data.size() << " " << client.reason;
  EXPECT_TRUE(client.data == payload) << "the echo differs";
  ASSERT_FALSE(client.lost) << client.reason;
  client.transport->loseConnection();
  ASSERT_TRUE(RunUntil(*reactor_, [&] { return client.lost; }));
  EXPECT_TRUE(client.reason.ok()) << client.reason;
  EXPECT_EQ(inner.handshakeFailures() + outer.handshakeFailures(), 0);
}

// At shutdown a connection still in its handshake is waited for, within
// the grace (docs/design.md, "TLS", "At shutdown"): a client that completes
// it then gets close_notify; one that stalls is aborted when the grace
// ends, with no alert (OpenSSL's SSL_shutdown refuses mid-handshake and has
// no other way to send one): not a byte, then the end of the stream.
TEST(TlsShutdownTest, AHandshakeIsWaitedForWithinTheGrace) {
  Certs();
  for (bool completes : {true, false}) {
    SCOPED_TRACE(completes ? "completes in the grace" : "stalls");
    std::deque<Seen> store;  // outlives the reactor
    ReactorOptions options;
    options.shutdown_grace = completes ? kTimeout : absl::Milliseconds(300);
    absl::StatusOr<std::unique_ptr<Reactor>> created = Reactor::Create(options);
    ASSERT_TRUE(created.ok()) << created.status();
    std::unique_ptr<Reactor> reactor = *std::move(created);
    Server server(reactor.get(), &store, ServerContext());
    absl::StatusOr<BlockingClient> c = BlockingClient::Connect(server.address());
    ASSERT_TRUE(c.ok()) << c.status();
    // The wrapped protocol is connected at once, before the handshake.
    ASSERT_TRUE(RunUntil(*reactor, [&] { return !store.empty() && store.back().made; }));
    std::thread client;
    std::string handshake;
    size_t read = 0;
    int error = 0;
    absl::StatusOr<std::string> rest = absl::UnknownError("not read");
    // "during shutdown": the server has asked the connection to close.
    reactor->addSystemEventTrigger(EventPhase::kDuring, "shutdown", [&] {
      client = std::thread([&] {
        if (!completes) {
          rest = c->ReadUntilClosed();
          return;
        }
        RawTlsClient tls;
        handshake = tls.Connect(c->fd());
        read = tls.Read(1).size();
        error = tls.last_error;
      });
    });
    reactor->callLater(absl::ZeroDuration(), [&] { reactor->stop(); });
    reactor->run();
    client.join();
    ASSERT_TRUE(store.back().lost);
    if (completes) {
      EXPECT_EQ(handshake, "ok");
      EXPECT_EQ(read, 0u);
      EXPECT_EQ(error, SSL_ERROR_ZERO_RETURN) << "no close_notify";
      EXPECT_TRUE(IsConnectionDone(store.back().reason)) << store.back().reason;
    } else {
      ASSERT_TRUE(rest.ok()) << rest.status();
      EXPECT_EQ(*rest, "") << "the server sent something";
      EXPECT_TRUE(IsConnectionAborted(store.back().reason)) << store.back().reason;
    }
  }
}

TEST(TlsContextTest, BadFilesAndOptionsAreReadableErrors) {
  Certs();
  TlsServerOptions o;
  o.certificate_chain_file = "/nonexistent/cert.pem";
  o.private_key_file = Certs().key("server");
  absl::StatusOr<std::shared_ptr<TlsContext>> c = TlsContext::ForServer(o);
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(absl::StrContains(c.status().message(), "cannot read the certificate chain "
                                                      "/nonexistent/cert.pem"))
      << c.status();
  o.certificate_chain_file = Certs().pem("server");
  o.private_key_file = Certs().key("client");  // another certificate's key
  c = TlsContext::ForServer(o);
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(absl::StrContains(c.status().message(), "mismatch")) << c.status();
  TlsClientOptions client;
  c = TlsContext::ForClient(client);
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(absl::StrContains(c.status().message(), "host name")) << c.status();
  client.insecure_skip_verification = true;  // explicit, and named so
  EXPECT_TRUE(TlsContext::ForClient(client).ok());
}

TEST(TlsEndpointStrings, ParseAndDescribe) {
  absl::StatusOr<ServerEndpointSpec> s =
      ParseServerEndpoint("ssl:8443:privateKey=key.pem:certKey=cert.pem:interface=127.0.0.1");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->type, ServerEndpointSpec::Type::kSsl);
  EXPECT_EQ(s->port, 8443);
  EXPECT_EQ(s->private_key, "key.pem");
  EXPECT_EQ(s->cert_key, "cert.pem");
  s = ParseServerEndpoint("ssl:8443:privateKey=both.pem");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->cert_key, "both.pem");  // certKey defaults to privateKey
  s = ParseServerEndpoint("ssl:8443");
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::StrContains(s.status().message(), "privateKey")) << s.status();
  absl::StatusOr<ClientEndpointSpec> c =
      ParseClientEndpoint("tls:host=example.com:port=443:caCertsFile=ca.pem");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->type, ClientEndpointSpec::Type::kTls);
  EXPECT_EQ(c->host, "example.com");
  EXPECT_EQ(c->port, 443);
  EXPECT_EQ(c->ca_certs_file, "ca.pem");
  c = ParseClientEndpoint("tls:example.com:443");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ca_certs_file, "");  // the system's store
  c = ParseClientEndpoint("tls:host=example.com:port=443:verify=no");
  EXPECT_FALSE(c.ok());
}

}  // namespace
}  // namespace twist
