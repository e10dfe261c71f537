#include "framework/endpoints.h"

#include <sys/un.h>

#include <cmath>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "framework/hostname_endpoint.h"
#include "framework/reactor.h"
#include "framework/tcp_port.h"
#include "framework/udp_port.h"

namespace twist {
namespace {

absl::Status Bad(absl::string_view why) { return absl::InvalidArgumentError(why); }

// Twisted's quoteStringArgument: what describe() writes back.
std::string Quote(absl::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == ':') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

// The parameters of one endpoint type: their names in positional order.
struct Params {
  absl::string_view kind;  // "tcp", "unix client", ... for messages
  std::vector<absl::string_view> names;
  absl::string_view usage;
};

using Values = absl::flat_hash_map<std::string, std::string>;

// Positional arguments fill `params.names` in order, then key=value ones
// by name; anything else is an error naming it.
absl::StatusOr<Values> Bind(
    const EndpointArguments& parsed, const Params& params) {
  Values values;
  for (size_t i = 1; i < parsed.args.size(); ++i) {
    if (i - 1 >= params.names.size()) {
      return Bad(absl::StrCat("unexpected argument '", parsed.args[i], "' in a ",
                              params.kind, " endpoint (", params.usage, ")"));
    }
    values[std::string(params.names[i - 1])] = parsed.args[i];
  }
  for (const auto& [key, value] : parsed.kwargs) {
    bool known = false;
    for (absl::string_view n : params.names) known = known || n == key;
    if (!known) {
      return Bad(absl::StrCat("unknown parameter '", key, "' for a ", params.kind,
                              " endpoint (", params.usage, ")"));
    }
    if (!values.emplace(key, value).second) {
      return Bad(absl::StrCat("parameter '", key, "' given twice"));
    }
  }
  return values;
}

bool AllDigits(absl::string_view s) {
  if (s.empty() || s.size() > 9) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

absl::StatusOr<int> ParsePort(absl::string_view s, int lowest) {
  if (s.empty()) return Bad("port is empty");
  int port = 0;
  if (!AllDigits(s) || !absl::SimpleAtoi(s, &port)) {
    return Bad(absl::StrCat("port '", s, "' is not a number"));
  }
  if (port < lowest || port > 65535) {
    return Bad(absl::StrCat("port ", port, " out of range (", lowest, "..65535)"));
  }
  return port;
}

absl::StatusOr<int> ParseBacklog(absl::string_view s) {
  int backlog = 0;
  if (!AllDigits(s) || !absl::SimpleAtoi(s, &backlog) || backlog < 1 || backlog > 65535) {
    return Bad(absl::StrCat("backlog '", s, "' is not a number from 1 to 65535"));
  }
  return backlog;
}

absl::StatusOr<std::string> ParseInterface(absl::string_view s, bool ipv6_only) {
  absl::StatusOr<Address> a = Address::Parse(s, 0);
  if (!a.ok()) {
    return Bad(absl::StrCat("interface '", s, "' is not a numeric IPv4 or IPv6 address"));
  }
  if (ipv6_only && !a->isIPv6()) {
    return Bad(absl::StrCat("interface '", s, "' is not an IPv6 address (tcp6)"));
  }
  return a->host();
}

absl::StatusOr<absl::Duration> ParseTimeout(absl::string_view s) {
  double seconds = 0;
  if (!absl::SimpleAtod(s, &seconds) || !std::isfinite(seconds) || seconds <= 0 ||
      seconds > 1e9) {
    return Bad(absl::StrCat("timeout '", s, "' is not a number of seconds above 0"));
  }
  return absl::Seconds(seconds);
}

// Parameter `key`, if given, read by `parse` into `*out`.
template <typename T>
absl::Status ParseIfGiven(const Values& values, absl::string_view key,
                          absl::StatusOr<T> (*parse)(absl::string_view),
                          std::optional<T>* out) {
  auto it = values.find(key);
  if (it == values.end()) return absl::OkStatus();
  absl::StatusOr<T> value = parse(it->second);
  if (!value.ok()) return value.status();
  *out = *std::move(value);
  return absl::OkStatus();
}

absl::Status CheckUnixPath(absl::string_view path) {
  if (path.empty()) return Bad("unix endpoint needs a path");
  // sun_path holds 108 bytes: a path and its NUL, or NUL and an abstract name.
  constexpr size_t kMax = sizeof(sockaddr_un{}.sun_path) - 1;
  if (path[0] == '@' && path.size() == 1) return Bad("unix abstract name '@' is empty");
  const size_t length = path[0] == '@' ? path.size() - 1 : path.size();
  if (length > kMax) {
    return Bad(absl::StrCat("unix path '", path, "' is longer than ", kMax, " bytes"));
  }
  return absl::OkStatus();
}

// The type (args[0]), lower-cased: Twisted's clientFromString upper-cases
// it, so TCP: works there; serverFromString's built-ins are lower case.
absl::StatusOr<std::pair<EndpointArguments, std::string>> Split(absl::string_view description) {
  if (description.empty()) return Bad("empty endpoint description");
  absl::StatusOr<EndpointArguments> parsed = ParseEndpointArguments(description);
  if (!parsed.ok()) return parsed.status();
  if (parsed->args.empty()) {
    return Bad(absl::StrCat("endpoint '", description, "' has no type (such as tcp:)"));
  }
  std::string type = absl::AsciiStrToLower(parsed->args[0]);
  return std::make_pair(*std::move(parsed), std::move(type));
}

// --- Endpoints -------------------------------------------------------------

// tcp:, tcp6: and unix: differ only in how they listen and how they read.
class StreamServerEndpoint final : public ServerEndpoint {
 public:
  StreamServerEndpoint(Reactor* reactor, ServerEndpointSpec spec, int backlog)
      : reactor_(reactor), spec_(std::move(spec)), backlog_(backlog) {}

  absl::StatusOr<ListeningPort> listen(Factory* factory) override {
    absl::StatusOr<Port*> port =
        spec_.type == ServerEndpointSpec::Type::kUnix
            ? reactor_->listenUNIX(spec_.path, factory, backlog_, spec_.mode, spec_.lockfile)
            : reactor_->listenTCP(spec_.port, factory, backlog_, spec_.interface);
    if (!port.ok()) return port.status();
    return ListeningPort(*port);
  }
  absl::StatusOr<ListeningPort> listenDatagram(DatagramProtocol*, size_t) override {
    return Bad(absl::StrCat(describe(),
                            " is a stream endpoint: it takes a Factory, not a DatagramProtocol"));
  }
  bool datagram() const override { return false; }
  std::string describe() const override {
    if (spec_.type == ServerEndpointSpec::Type::kUnix) {
      return absl::StrFormat("unix:%s:mode=%04o:lockfile=%d:backlog=%d", Quote(spec_.path),
                             spec_.mode, spec_.lockfile ? 1 : 0, backlog_);
    }
    return absl::StrCat(spec_.type == ServerEndpointSpec::Type::kTcp6 ? "tcp6:" : "tcp:",
                        spec_.port, ":interface=", Quote(spec_.interface),
                        ":backlog=", backlog_);
  }

 private:
  Reactor* reactor_;
  ServerEndpointSpec spec_;
  int backlog_;
};

class UdpServerEndpoint final : public ServerEndpoint {
 public:
  UdpServerEndpoint(Reactor* reactor, ServerEndpointSpec spec)
      : reactor_(reactor), spec_(std::move(spec)) {}

  absl::StatusOr<ListeningPort> listen(Factory*) override {
    return Bad(absl::StrCat(describe(),
                            " is a datagram endpoint: it takes a DatagramProtocol, not a Factory"));
  }
  absl::StatusOr<ListeningPort> listenDatagram(DatagramProtocol* protocol,
                                               size_t max_packet_size) override {
    absl::StatusOr<UdpPort*> port =
        reactor_->listenUDP(spec_.port, protocol, spec_.interface, max_packet_size);
    if (!port.ok()) return port.status();
    return ListeningPort(*port);
  }
  bool datagram() const override { return true; }
  std::string describe() const override {
    return absl::StrCat("udp:", spec_.port, ":interface=", Quote(spec_.interface));
  }

 private:
  Reactor* reactor_;
  ServerEndpointSpec spec_;
};

class UnixClientEndpoint final : public ClientEndpoint {
 public:
  UnixClientEndpoint(Reactor* reactor, ClientEndpointSpec spec)
      : reactor_(reactor), spec_(std::move(spec)) {}

  std::string describe() const override {
    return absl::StrCat("unix:path=", Quote(spec_.path), ":timeout=",
                        absl::ToDoubleSeconds(spec_.timeout.value_or(absl::Seconds(30))));
  }

 protected:
  absl::StatusOr<ConnectingAttempt> startConnecting(ClientFactory* factory) override {
    Connector* c =
        reactor_->connectUNIX(spec_.path, factory, spec_.timeout.value_or(absl::Seconds(30)));
    // Only the attempt begun here, while it is connecting (not a later one
    // the factory began on the same connector, nor a pending connectLater);
    // stopConnecting() defers the factory's clientConnectionFailed.
    return ConnectingAttempt(c->liveness(), [c, attempt = c->attemptNumber()] {
      return c->state() == Connector::State::kConnecting && c->attemptNumber() == attempt &&
             c->stopConnecting().ok();
    });
  }

 private:
  Reactor* reactor_;
  ClientEndpointSpec spec_;
};

absl::Status NoTls(absl::string_view type) {
  return Bad(absl::StrCat(type, ": endpoints need twist's TLS support, which this program "
                                "does not link (//protocols:tls_endpoints)"));
}

// A spec of type ssl: or tls: made without parsing, in a program without
// the TLS library: fails when used.
class MissingTlsEndpoint final : public ServerEndpoint, public ClientEndpoint {
 public:
  absl::StatusOr<ListeningPort> listen(Factory*) override { return NoTls("ssl"); }
  absl::StatusOr<ListeningPort> listenDatagram(DatagramProtocol*, size_t) override {
    return NoTls("ssl");
  }
  bool datagram() const override { return false; }
  std::string describe() const override { return "tls (unavailable)"; }

 protected:
  absl::StatusOr<ConnectingAttempt> startConnecting(ClientFactory*) override {
    return NoTls("tls");
  }
};

struct TlsMakers {
  endpoints_internal::TlsServerMaker server = nullptr;
  endpoints_internal::TlsClientMaker client = nullptr;
  endpoints_internal::TlsFactoryMaker factory = nullptr;
  endpoints_internal::TlsServerCheck check = nullptr;
};
TlsMakers& Tls() {
  static TlsMakers makers;
  return makers;
}

}  // namespace

bool TlsEndpointsAvailable() { return Tls().server != nullptr; }

void endpoints_internal::SetTlsEndpointMakers(TlsServerMaker server, TlsClientMaker client,
                                              TlsFactoryMaker factory) {
  Tls().server = server;
  Tls().client = client;
  Tls().factory = factory;
}

void endpoints_internal::SetTlsServerCheck(TlsServerCheck check) { Tls().check = check; }

absl::Status CheckServerEndpointSpec(const ServerEndpointSpec& spec) {
  if (spec.type != ServerEndpointSpec::Type::kSsl || Tls().check == nullptr) {
    return absl::OkStatus();
  }
  return Tls().check(spec);
}

absl::StatusOr<std::unique_ptr<Factory>> serverFactoryForSpec(Reactor* reactor,
                                                              const ServerEndpointSpec& spec,
                                                              Factory* factory) {
  if (spec.type != ServerEndpointSpec::Type::kSsl) return std::unique_ptr<Factory>();
  if (Tls().factory == nullptr) return NoTls("ssl");
  return Tls().factory(reactor, spec, factory);
}

// --- Parsing ---------------------------------------------------------------

absl::StatusOr<EndpointArguments> ParseEndpointArguments(absl::string_view description) {
  // Twisted's _tokenize: ':' separates arguments; the first '=' of an
  // argument separates its key from its value (later ones are part of the
  // value); '\' takes the next character as it is.
  EndpointArguments out;
  std::vector<std::string> sofar;  // the argument being read: [value] or [key, value]
  std::string current;
  bool after_equals = false;
  auto add = [&] {
    sofar.push_back(std::move(current));
    current.clear();
    if (sofar.size() == 1) {
      out.args.push_back(std::move(sofar[0]));
    } else {
      out.kwargs.emplace_back(std::move(sofar[0]), std::move(sofar[1]));
    }
    sofar.clear();
    after_equals = false;
  };
  for (size_t i = 0; i < description.size(); ++i) {
    const char c = description[i];
    if (c == ':') {
      add();
    } else if (c == '=' && !after_equals) {
      sofar.push_back(std::move(current));
      current.clear();
      after_equals = true;
    } else if (c == '\\') {
      if (i + 1 == description.size()) {
        return Bad(absl::StrCat("endpoint '", description, "' ends in a lone backslash"));
      }
      current.push_back(description[++i]);
    } else {
      current.push_back(c);
    }
  }
  add();
  return out;
}

absl::StatusOr<ServerEndpointSpec> ParseServerEndpoint(absl::string_view description) {
  auto split = Split(description);
  if (!split.ok()) return split.status();
  const auto& [parsed, type] = *split;
  ServerEndpointSpec spec;
  if (type == "tcp" || type == "tcp6" || type == "udp") {
    const bool v6 = type == "tcp6";
    const Params params =
        type == "tcp"    ? Params{"tcp", {"port", "interface", "backlog"},
                               "tcp:PORT[:interface=ADDR][:backlog=N]"}
        : type == "tcp6" ? Params{"tcp6", {"port", "backlog", "interface"},
                                  "tcp6:PORT[:interface=ADDR][:backlog=N]"}
                         : Params{"udp", {"port", "interface"}, "udp:PORT[:interface=ADDR]"};
    auto values = Bind(parsed, params);
    if (!values.ok()) return values.status();
    spec.type = type == "tcp"    ? ServerEndpointSpec::Type::kTcp
                : v6             ? ServerEndpointSpec::Type::kTcp6
                                 : ServerEndpointSpec::Type::kUdp;
    auto port = values->find("port");
    if (port == values->end()) {
      return Bad(absl::StrCat(type, " endpoint needs a port (", params.usage, ")"));
    }
    absl::StatusOr<int> p = ParsePort(port->second, 0);
    if (!p.ok()) return p.status();
    spec.port = *p;
    spec.interface = v6 ? "::" : "";
    if (auto it = values->find("interface"); it != values->end() && !it->second.empty()) {
      absl::StatusOr<std::string> i = ParseInterface(it->second, v6);
      if (!i.ok()) return i.status();
      spec.interface = *i;
    }
    if (absl::Status s = ParseIfGiven(*values, "backlog", &ParseBacklog, &spec.backlog);
        !s.ok()) {
      return s;
    }
    return spec;
  }
  if (type == "unix") {
    const Params params{"unix", {"address", "mode", "backlog", "lockfile"},
                        "unix:PATH[:mode=0666][:lockfile=1][:backlog=N]"};
    auto values = Bind(parsed, params);
    if (!values.ok()) return values.status();
    spec.type = ServerEndpointSpec::Type::kUnix;
    if (auto it = values->find("address"); it != values->end()) spec.path = it->second;
    if (absl::Status s = CheckUnixPath(spec.path); !s.ok()) return s;
    if (auto it = values->find("mode"); it != values->end()) {
      // Twisted's int(mode, 8); "0o600" too.
      absl::string_view m = it->second;
      if (m.size() > 2 && m[0] == '0' && (m[1] == 'o' || m[1] == 'O')) m.remove_prefix(2);
      int mode = 0;
      bool octal = !m.empty() && m.size() <= 4;
      for (char c : m) {
        octal = octal && c >= '0' && c <= '7';
        mode = mode * 8 + (c - '0');
      }
      if (!octal || mode > 0777) {
        return Bad(absl::StrCat("mode '", it->second,
                                "' is not an octal permission (0 to 0777, such as 0600)"));
      }
      spec.mode = mode;
    }
    if (auto it = values->find("lockfile"); it != values->end()) {
      if (it->second != "0" && it->second != "1") {
        return Bad(absl::StrCat("lockfile '", it->second, "' must be 0 or 1"));
      }
      spec.lockfile = it->second == "1";
    }
    if (absl::Status s = ParseIfGiven(*values, "backlog", &ParseBacklog, &spec.backlog);
        !s.ok()) {
      return s;
    }
    return spec;
  }
  if (type == "ssl") {
    // Twisted's _parseSSL: ssl:PORT:privateKey=...:certKey=...
    const Params params{"ssl",
                        {"port", "privateKey", "certKey", "interface", "backlog",
                         "handshakeTimeout"},
                        "ssl:PORT:privateKey=KEY.pem[:certKey=CERT.pem][:interface=ADDR]"
                        "[:backlog=N][:handshakeTimeout=S]"};
    if (Tls().server == nullptr) return NoTls("ssl");
    auto values = Bind(parsed, params);
    if (!values.ok()) return values.status();
    spec.type = ServerEndpointSpec::Type::kSsl;
    auto port = values->find("port");
    if (port == values->end()) {
      return Bad(absl::StrCat("ssl endpoint needs a port (", params.usage, ")"));
    }
    absl::StatusOr<int> p = ParsePort(port->second, 0);
    if (!p.ok()) return p.status();
    spec.port = *p;
    if (auto it = values->find("interface"); it != values->end() && !it->second.empty()) {
      absl::StatusOr<std::string> i = ParseInterface(it->second, false);
      if (!i.ok()) return i.status();
      spec.interface = *i;
    }
    auto key = values->find("privateKey");
    if (key == values->end() || key->second.empty()) {
      return Bad(absl::StrCat("ssl endpoint needs privateKey= (", params.usage, ")"));
    }
    spec.private_key = key->second;
    auto cert = values->find("certKey");
    spec.cert_key = cert != values->end() && !cert->second.empty() ? cert->second
                                                                    : spec.private_key;
    if (absl::Status s = ParseIfGiven(*values, "backlog", &ParseBacklog, &spec.backlog);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = ParseIfGiven(*values, "handshakeTimeout", &ParseTimeout,
                                      &spec.handshake_timeout);
        !s.ok()) {
      return s;
    }
    return spec;
  }
  return Bad(absl::StrCat("unknown endpoint type '", parsed.args[0],
                          "' (a server endpoint is tcp:, tcp6:, unix:, udp: or ssl:)"));
}

absl::StatusOr<ClientEndpointSpec> ParseClientEndpoint(absl::string_view description) {
  auto split = Split(description);
  if (!split.ok()) return split.status();
  auto& [parsed, type] = *split;
  ClientEndpointSpec spec;
  if (type == "tcp" || type == "tls") {
    const bool tls = type == "tls";
    const Params params =
        tls ? Params{"tls client",
                     {"host", "port", "timeout", "bindAddress", "caCertsFile", "certificate",
                      "privateKey"},
                     "tls:host=H:port=P[:caCertsFile=CA.pem][:certificate=C.pem]"
                     "[:privateKey=K.pem][:timeout=S][:bindAddress=A]"}
            : Params{"tcp client", {"host", "port", "timeout", "bindAddress"},
                     "tcp:host=H:port=P[:timeout=S][:bindAddress=A]"};
    if (tls && Tls().client == nullptr) return NoTls("tls");
    // Twisted's _parseClientTCP: tcp:H:P, or one positional argument that
    // is the port when host= is given, else the host.
    // Only host and port may be positional (tcp:H:P), as in Twisted.
    if (parsed.args.size() > 3) {
      return Bad(absl::StrCat("unexpected argument '", parsed.args[3], "' in a ",
                              params.kind, " endpoint (", params.usage, ")"));
    }
    EndpointArguments named = parsed;
    bool has_host = false;
    for (const auto& kv : parsed.kwargs) has_host = has_host || kv.first == "host";
    if (parsed.args.size() == 2 && has_host) {
      named.args.resize(1);
      named.kwargs.emplace_back("port", parsed.args[1]);
    }
    auto values = Bind(named, params);
    if (!values.ok()) return values.status();
    spec.type = tls ? ClientEndpointSpec::Type::kTls : ClientEndpointSpec::Type::kTcp;
    auto host = values->find("host");
    if (host == values->end() || host->second.empty()) {
      return Bad(absl::StrCat(type, " client endpoint needs a host (", params.usage, ")"));
    }
    spec.host = host->second;
    auto port = values->find("port");
    if (port == values->end()) {
      return Bad(absl::StrCat(type, " client endpoint needs a port (", params.usage, ")"));
    }
    absl::StatusOr<int> p = ParsePort(port->second, 1);
    if (!p.ok()) return p.status();
    spec.port = *p;
    if (absl::Status s = ParseIfGiven(*values, "timeout", &ParseTimeout, &spec.timeout);
        !s.ok()) {
      return s;
    }
    if (auto it = values->find("bindAddress"); it != values->end()) {
      absl::StatusOr<Address> a = Address::Parse(it->second, 0);
      if (!a.ok() || it->second.empty()) {
        return Bad(absl::StrCat("bindAddress '", it->second,
                                "' is not a numeric IPv4 or IPv6 address"));
      }
      spec.bind_address = *a;
    }
    if (auto it = values->find("caCertsFile"); it != values->end()) spec.ca_certs_file = it->second;
    if (auto it = values->find("certificate"); it != values->end()) spec.certificate = it->second;
    if (auto it = values->find("privateKey"); it != values->end()) spec.private_key = it->second;
    if (spec.private_key.empty()) spec.private_key = spec.certificate;
    return spec;
  }
  if (type == "unix") {
    const Params params{"unix client", {"path", "timeout"}, "unix:path=P[:timeout=S]"};
    auto values = Bind(parsed, params);
    if (!values.ok()) return values.status();
    spec.type = ClientEndpointSpec::Type::kUnix;
    if (auto it = values->find("path"); it != values->end()) spec.path = it->second;
    if (absl::Status s = CheckUnixPath(spec.path); !s.ok()) return s;
    if (absl::Status s = ParseIfGiven(*values, "timeout", &ParseTimeout, &spec.timeout);
        !s.ok()) {
      return s;
    }
    return spec;
  }
  return Bad(absl::StrCat("unknown endpoint type '", parsed.args[0],
                          "' (a client endpoint is tcp:, unix: or tls:)"));
}

// --- ListeningPort and construction ----------------------------------------

std::string ListeningPort::describe() const {
  // "127.0.0.1:8000", "[::1]:8000", "unix:/tmp/echo.sock", "unix:@name".
  if (stream_ != nullptr) return stream_->getHost().ToString();
  if (udp_ != nullptr) return absl::StrCat("udp:", udp_->getHost().ToString());
  return "nothing";
}

void ListeningPort::stopListening() {
  if (stream_ != nullptr) stream_->stopListening();
  if (udp_ != nullptr) udp_->stopListening();
}

std::unique_ptr<ServerEndpoint> serverFromSpec(Reactor* reactor, ServerEndpointSpec spec,
                                               int default_backlog) {
  const int backlog = spec.backlog.value_or(default_backlog);
  switch (spec.type) {
    case ServerEndpointSpec::Type::kTcp:
    case ServerEndpointSpec::Type::kTcp6:
    case ServerEndpointSpec::Type::kUnix:
      return std::make_unique<StreamServerEndpoint>(reactor, std::move(spec), backlog);
    case ServerEndpointSpec::Type::kUdp:
      return std::make_unique<UdpServerEndpoint>(reactor, std::move(spec));
    case ServerEndpointSpec::Type::kSsl:
      if (Tls().server != nullptr) return Tls().server(reactor, std::move(spec), backlog);
      return std::make_unique<MissingTlsEndpoint>();
  }
  return nullptr;
}

absl::StatusOr<std::unique_ptr<ServerEndpoint>> serverFromString(
    Reactor* reactor, absl::string_view description, int default_backlog) {
  absl::StatusOr<ServerEndpointSpec> spec = ParseServerEndpoint(description);
  if (!spec.ok()) return spec.status();
  return serverFromSpec(reactor, *std::move(spec), default_backlog);
}

std::unique_ptr<ClientEndpoint> clientFromSpec(Reactor* reactor, ClientEndpointSpec spec) {
  if (spec.type == ClientEndpointSpec::Type::kTls) {
    if (Tls().client != nullptr) return Tls().client(reactor, std::move(spec));
    return std::make_unique<MissingTlsEndpoint>();
  }
  if (spec.type == ClientEndpointSpec::Type::kUnix) {
    return std::make_unique<UnixClientEndpoint>(reactor, std::move(spec));
  }
  return std::make_unique<HostnameEndpoint>(reactor, spec.host, spec.port,
                                            spec.timeout.value_or(absl::Seconds(30)),
                                            spec.bind_address);
}

absl::StatusOr<std::unique_ptr<ClientEndpoint>> clientFromString(
    Reactor* reactor, absl::string_view description) {
  absl::StatusOr<ClientEndpointSpec> spec = ParseClientEndpoint(description);
  if (!spec.ok()) return spec.status();
  return clientFromSpec(reactor, *std::move(spec));
}

}  // namespace twist
