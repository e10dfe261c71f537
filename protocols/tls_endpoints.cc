#include "protocols/tls_endpoints.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "framework/client_factory.h"
#include "framework/endpoints.h"
#include "framework/hostname_endpoint.h"
#include "framework/reactor.h"
#include "framework/tcp_port.h"
#include "protocols/tls.h"
#include "protocols/tls_context.h"

namespace twist {
namespace {

absl::Status Readable(const std::string& path, absl::string_view what) {
  if (::access(path.c_str(), R_OK) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read the ", what, " ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

std::string Quote(absl::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == ':') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

// The context of an ssl: endpoint, from its key and certificate files.
absl::StatusOr<std::shared_ptr<TlsContext>> ServerContext(const ServerEndpointSpec& spec) {
  for (const auto& [path, what] : {std::make_pair(spec.private_key, "private key"),
                                   std::make_pair(spec.cert_key, "certificate")}) {
    if (absl::Status s = Readable(path, what); !s.ok()) return s;
  }
  TlsServerOptions options;
  options.certificate_chain_file = spec.cert_key;
  options.private_key_file = spec.private_key;
  return TlsContext::ForServer(options);
}

// The TLS factory of one ssl: port, owned by the port: it ends its own life
// when the port stops using it (stopFactory, which the port calls when it
// stops listening or the reactor goes). Its connections keep what they
// need (context, settings) themselves, so they may outlive it.
class PortOwnedTlsFactory final : public TLSMemoryBIOFactory {
 public:
  PortOwnedTlsFactory(std::shared_ptr<const TlsContext> context, Factory* user,
                      ReactorTime* reactor, absl::Duration handshake_timeout)
      : TLSMemoryBIOFactory(std::move(context), user, reactor, handshake_timeout), user_(user) {}
  std::unique_ptr<Protocol> buildProtocol(const Address& addr) override {
    // The user's factory may be gone first (declared after the reactor).
    if (user_.get() == nullptr) return nullptr;
    return TLSMemoryBIOFactory::buildProtocol(addr);
  }
  void startFactory() override {
    if (user_.get() != nullptr) TLSMemoryBIOFactory::startFactory();
  }
  void stopFactory() override {
    if (user_.get() != nullptr) TLSMemoryBIOFactory::stopFactory();
    delete this;  // Factory::doStop touches nothing after stopFactory()
  }

 private:
  FactoryRef<Factory> user_;
};

class SslServerEndpoint final : public ServerEndpoint {
 public:
  SslServerEndpoint(Reactor* reactor, ServerEndpointSpec spec, int backlog)
      : reactor_(reactor), spec_(std::move(spec)), backlog_(backlog) {}

  absl::StatusOr<ListeningPort> listen(Factory* factory) override {
    absl::StatusOr<std::shared_ptr<TlsContext>> context = ServerContext(spec_);
    if (!context.ok()) return context.status();
    auto tls = std::make_unique<PortOwnedTlsFactory>(
        *std::move(context), factory, reactor_,
        spec_.handshake_timeout.value_or(absl::Seconds(30)));
    absl::StatusOr<Port*> port =
        reactor_->listenTCP(spec_.port, tls.get(), backlog_, spec_.interface);
    if (!port.ok()) return port.status();
    tls.release();  // the port's now: it is deleted when the port stops
    return ListeningPort(*port);
  }
  absl::StatusOr<ListeningPort> listenDatagram(DatagramProtocol*, size_t) override {
    return absl::InvalidArgumentError(
        absl::StrCat(describe(), " is a stream endpoint: it takes a Factory, not a "
                                 "DatagramProtocol"));
  }
  bool datagram() const override { return false; }
  std::string describe() const override {
    return absl::StrCat("ssl:", spec_.port, ":privateKey=", Quote(spec_.private_key),
                        ":certKey=", Quote(spec_.cert_key), ":interface=",
                        Quote(spec_.interface), ":backlog=", backlog_);
  }

 private:
  Reactor* reactor_;
  ServerEndpointSpec spec_;
  int backlog_;
};

// One connection attempt of a tls: endpoint: the ClientFactory the inner
// tcp endpoint hears from, wrapping the user's protocols in TLS and passing
// every callback on. It keeps itself alive until the attempt has ended and
// the endpoint stopped it (as the Deferred connect of client_endpoint.cc).
class TlsAttempt final : public ClientFactory {
 public:
  TlsAttempt(std::shared_ptr<const TlsContext> context, ClientFactory* user,
             std::shared_ptr<const TlsSettings> settings)
      : context_(std::move(context)), user_(user), settings_(std::move(settings)) {}

  std::unique_ptr<Protocol> buildProtocol(const Address& addr) override {
    ClientFactory* user = user_.get();
    if (user == nullptr) return nullptr;
    std::unique_ptr<Protocol> p = ProtocolWrapper::buildWrapped(user, addr);
    if (p == nullptr) return nullptr;
    return std::make_unique<TLSMemoryBIOProtocol>(context_, settings_, std::move(p));
  }
  void startFactory() override {
    started_ = true;
    if (ClientFactory* u = user_.get()) u->doStart();
  }
  void stopFactory() override {
    started_ = false;
    if (ClientFactory* u = user_.get()) u->doStop();
    maybeRelease();
  }
  void startedConnecting(Connector* c) override {
    if (ClientFactory* u = user_.get()) u->startedConnecting(c);
  }
  void clientConnectionFailed(Connector* c, const absl::Status& reason) override {
    ended_ = true;
    if (ClientFactory* u = user_.get()) u->clientConnectionFailed(c, reason);
    maybeRelease();
  }
  void clientConnectionLost(Connector* c, const absl::Status& reason) override {
    ended_ = true;
    if (ClientFactory* u = user_.get()) u->clientConnectionLost(c, reason);
    maybeRelease();
  }
  void maybeRelease() {
    if (ended_ && !started_) delete this;
  }

 private:
  std::shared_ptr<const TlsContext> context_;
  FactoryRef<ClientFactory> user_;
  std::shared_ptr<const TlsSettings> settings_;
  bool started_ = false;
  bool ended_ = false;
};

class TlsClientEndpoint final : public ClientEndpoint {
 public:
  TlsClientEndpoint(Reactor* reactor, ClientEndpointSpec spec)
      : reactor_(reactor),
        spec_(std::move(spec)),
        tcp_(reactor, spec_.host, spec_.port, spec_.timeout.value_or(absl::Seconds(30)),
             spec_.bind_address) {}

  std::string describe() const override {
    std::string d = absl::StrCat("tls:host=", Quote(spec_.host), ":port=", spec_.port);
    if (!spec_.ca_certs_file.empty()) absl::StrAppend(&d, ":caCertsFile=", Quote(spec_.ca_certs_file));
    if (!spec_.certificate.empty()) absl::StrAppend(&d, ":certificate=", Quote(spec_.certificate));
    return d;
  }

 protected:
  absl::StatusOr<ConnectingAttempt> startConnecting(ClientFactory* factory) override {
    if (context_ == nullptr) {
      // Made once, on the first connect: a bad CA file is that call's error.
      if (!spec_.ca_certs_file.empty()) {
        if (absl::Status s = Readable(spec_.ca_certs_file, "CA certificates"); !s.ok()) return s;
      }
      TlsClientOptions options;
      options.hostname = spec_.host;
      options.ca_certs_file = spec_.ca_certs_file;
      options.certificate_chain_file = spec_.certificate;
      options.private_key_file = spec_.private_key;
      absl::StatusOr<std::shared_ptr<TlsContext>> context = TlsContext::ForClient(options);
      if (!context.ok()) return context.status();
      context_ = *std::move(context);
      auto settings = std::make_shared<TlsSettings>();
      settings->reactor = reactor_;
      // The client's protocol gets the reason in connectionLost: that is
      // its report, not a line on stderr.
      settings->on_handshake_failure = [](const Address&, const absl::Status&) {};
      settings_ = std::move(settings);
    }
    auto* attempt = new TlsAttempt(context_, factory, settings_);
    absl::StatusOr<ConnectingAttempt> started = tcp_.connect(static_cast<ClientFactory*>(attempt));
    if (!started.ok()) delete attempt;  // nothing started: the attempt heard nothing
    return started;
  }

 private:
  Reactor* reactor_;
  ClientEndpointSpec spec_;
  HostnameEndpoint tcp_;
  std::shared_ptr<const TlsContext> context_;
  std::shared_ptr<const TlsSettings> settings_;
};

std::unique_ptr<ServerEndpoint> MakeServer(Reactor* reactor, ServerEndpointSpec spec,
                                           int backlog) {
  return std::make_unique<SslServerEndpoint>(reactor, std::move(spec), backlog);
}

std::unique_ptr<ClientEndpoint> MakeClient(Reactor* reactor, ClientEndpointSpec spec) {
  return std::make_unique<TlsClientEndpoint>(reactor, std::move(spec));
}

absl::StatusOr<std::unique_ptr<Factory>> MakeFactory(Reactor* reactor,
                                                     const ServerEndpointSpec& spec,
                                                     Factory* factory) {
  absl::StatusOr<std::shared_ptr<TlsContext>> context = ServerContext(spec);
  if (!context.ok()) return context.status();
  return std::make_unique<TLSMemoryBIOFactory>(*std::move(context), factory, reactor,
                                               spec.handshake_timeout.value_or(absl::Seconds(30)));
}

// A flag-time check: the context is made and dropped; listen() makes its own.
absl::Status CheckServer(const ServerEndpointSpec& spec) { return ServerContext(spec).status(); }

// Linking the library installs the endpoints (its BUILD target is
// alwayslink), as Twisted's plugins are found without being named.
const bool kInstalled = [] {
  InstallTlsEndpoints();
  return true;
}();

}  // namespace

void InstallTlsEndpoints() {
  endpoints_internal::SetTlsEndpointMakers(&MakeServer, &MakeClient, &MakeFactory);
  endpoints_internal::SetTlsServerCheck(&CheckServer);
}

}  // namespace twist
