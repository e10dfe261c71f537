#ifndef TWIST_FRAMEWORK_ENDPOINTS_H_
#define TWIST_FRAMEWORK_ENDPOINTS_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "framework/address.h"
#include "framework/defer.h"
#include "framework/protocol.h"

namespace twist {

class ClientFactory;
class DatagramProtocol;
class Port;
class Reactor;
class UdpPort;

/// Endpoint strings, as Twisted's serverFromString / clientFromString read
/// them: a type, then ':'-separated arguments, each positional or
/// key=value; '\' makes the next character literal ('\:' is a colon inside
/// an argument). Server types:
///
///   tcp:PORT[:interface=ADDR][:backlog=N]     (interface "" = every IPv4 one)
///   tcp6:PORT[:interface=ADDR][:backlog=N]    (interface "::" by default)
///   unix:PATH[:mode=0666][:lockfile=1][:backlog=N]   (unix:@NAME: abstract)
///   udp:PORT[:interface=ADDR]
///   ssl:PORT:privateKey=KEY.pem[:certKey=CERT.pem][:interface=ADDR][:backlog=N]
///       [:handshakeTimeout=S]   (TLS over tcp; certKey defaults to privateKey)
///
/// Client types:
///
///   tcp:host=H:port=P[:timeout=S][:bindAddress=A]   (or tcp:H:P)
///   unix:path=P[:timeout=S]                         (or unix:P)
///   tls:host=H:port=P[:caCertsFile=CA.pem][:certificate=C.pem][:privateKey=K.pem]
///       [:timeout=S][:bindAddress=A]   (or tls:H:P; the server's certificate
///       is checked against H, and against the system's CAs without caCertsFile)
///
/// ssl: and tls: are served by //protocols:tls_endpoints (OpenSSL), which a
/// program links to use them; without it they are InvalidArgument saying so.
///
/// Positional arguments fill the parameters in the order shown (Twisted's
/// `_parse`: tcp:8000:127.0.0.1 is interface 127.0.0.1). A bad string is
/// InvalidArgument naming the bad part: "unknown endpoint type 'tpc'",
/// "port 70000 out of range (0..65535)", "unknown parameter 'foo' for a tcp
/// endpoint", "mode '999' is not an octal permission", ...

/// Twisted's _tokenize + _parse: `description` split into positional
/// arguments and key=value parameters, escapes removed. The type is
/// args[0]. A key given twice is an error (Python's would be a TypeError).
struct EndpointArguments {
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> kwargs;  // in order
};
absl::StatusOr<EndpointArguments> ParseEndpointArguments(absl::string_view description);

/// A server endpoint string, parsed and checked (no socket yet).
struct ServerEndpointSpec {
  enum class Type { kTcp, kTcp6, kUnix, kUdp, kSsl };
  Type type = Type::kTcp;
  int port = 0;                // tcp, tcp6, udp
  std::string interface;       // tcp, tcp6, udp: a numeric address
  std::optional<int> backlog;  // tcp, tcp6, unix; unset: the caller's default
  std::string path;            // unix: a file path, or "@name" (abstract)
  int mode = 0666;             // unix: the socket file's permissions
  bool lockfile = true;        // unix: guard the path with PATH.lock
  std::string private_key;     // ssl: PEM private key (privateKey=)
  std::string cert_key;        // ssl: PEM certificate chain (certKey=)
  std::optional<absl::Duration> handshake_timeout;  // ssl; unset: 30 s
  bool datagram() const { return type == Type::kUdp; }
  bool abstract() const { return type == Type::kUnix && !path.empty() && path[0] == '@'; }
};
absl::StatusOr<ServerEndpointSpec> ParseServerEndpoint(absl::string_view description);

/// A client endpoint string, parsed and checked.
struct ClientEndpointSpec {
  enum class Type { kTcp, kUnix, kTls };
  Type type = Type::kTcp;
  std::string host;  // tcp: a name or a numeric address
  int port = 0;      // tcp: 1..65535
  /// timeout=; unset: 30 seconds (Twisted's default).
  std::optional<absl::Duration> timeout;
  std::optional<Address> bind_address;  // tcp
  std::string path;                     // unix ("@name": abstract)
  std::string ca_certs_file;            // tls: CAs to trust; "": the system's
  std::string certificate;              // tls: a client certificate, PEM
  std::string private_key;              // tls: its key
};
absl::StatusOr<ClientEndpointSpec> ParseClientEndpoint(absl::string_view description);

/// What a server endpoint's listen() started (Twisted's IListeningPort),
/// whatever its kind. Small and copyable; the port itself is owned by the
/// reactor, so this stays valid for the reactor's lifetime.
class ListeningPort {
 public:
  explicit ListeningPort(Port* stream) : stream_(stream) {}
  explicit ListeningPort(UdpPort* udp) : udp_(udp) {}

  /// Where it listens, as a person reads it: "127.0.0.1:8000",
  /// "[::1]:8000", "unix:/tmp/echo.sock", "unix:@name",
  /// "udp:127.0.0.1:9000". The real port when 0 was asked for.
  std::string describe() const;
  void stopListening();
  /// The stream port (tcp, tcp6, unix: a TCP or Unix socket), else nullptr.
  Port* stream() const { return stream_; }
  /// The UDP port (udp), else nullptr.
  UdpPort* udp() const { return udp_; }

 private:
  Port* stream_ = nullptr;
  UdpPort* udp_ = nullptr;
};

/// Twisted's IStreamServerEndpoint, plus the datagram case (udp): one
/// object per endpoint string, made by serverFromString. A stream endpoint
/// takes a Factory (listen), a datagram one a DatagramProtocol
/// (listenDatagram); the other call is InvalidArgument.
class ServerEndpoint {
 public:
  virtual ~ServerEndpoint() = default;
  /// Listens, building a protocol with `factory` for each connection.
  virtual absl::StatusOr<ListeningPort> listen(Factory* factory) = 0;
  /// Binds, delivering every datagram to `protocol` (not owned); longer
  /// ones than `max_packet_size` are reported as truncated (listenUDP's
  /// maxPacketSize).
  virtual absl::StatusOr<ListeningPort> listenDatagram(DatagramProtocol* protocol,
                                                       size_t max_packet_size = 8192) = 0;
  virtual bool datagram() const = 0;
  /// The endpoint as a string (what it was made from, made canonical).
  virtual std::string describe() const = 0;
};

/// A connection attempt an endpoint started, for stopping it before it
/// connects (what cancelling the Deferred of Twisted's endpoint.connect()
/// does). Small and movable; safe to keep after the attempt is over.
class ConnectingAttempt {
 public:
  ConnectingAttempt() = default;
  /// `stop` is called by cancel() while `alive` has not expired; it stops
  /// the attempt and says whether there was one to stop.
  ConnectingAttempt(std::weak_ptr<const void> alive, absl::AnyInvocable<bool()> stop)
      : alive_(std::move(alive)), stop_(std::move(stop)) {}

  /// Stops the attempt if it has not connected yet: its factory's
  /// clientConnectionFailed() then gets ConnectCancelled() ("connecting to
  /// X was cancelled", IsConnectCancelled) on a later loop turn, never
  /// inside this call. True if it stopped one; false once the attempt has
  /// connected, failed or ended, or was cancelled already.
  bool cancel() { return !alive_.expired() && stop_ && stop_(); }

 private:
  std::weak_ptr<const void> alive_;
  absl::AnyInvocable<bool()> stop_;
};

/// Twisted's IStreamClientEndpoint, in two styles:
///
/// - connect(Factory*) is Twisted's: a Deferred that fires with the
///   factory's protocol once its connectionMade() has run, or fails with
///   why the attempt failed; cancelling it before then stops the attempt
///   (ConnectCancelled). The protocol belongs to its connection: the
///   pointer is good until its connectionLost() returns.
/// - connect(ClientFactory*) is the callback style of Reactor::connectTCP:
///   how the attempt goes reaches `factory` (startedConnecting, then
///   clientConnectionFailed or the protocol's callbacks and
///   clientConnectionLost), on a later loop turn, never inside connect().
///   The Connector* those callbacks get is for information only and may be
///   nullptr (a failure of the whole attempt, such as a name that does not
///   resolve): retry through the endpoint, not the connector. The returned
///   ConnectingAttempt stops it.
///
/// Which style is picked by overload resolution on the pointer's declared
/// type: a `ClientFactory*` gets the callbacks, a `Factory*` (even to a
/// ClientFactory) the Deferred. Either way a factory destroyed before the
/// attempt is over (declared after the reactor, say) is not called again.
/// An endpoint implements startConnecting() (the callback style); the
/// Deferred style is built on it.
class ClientEndpoint {
 public:
  virtual ~ClientEndpoint() = default;
  Deferred<Protocol*> connect(Factory* factory);
  absl::StatusOr<ConnectingAttempt> connect(ClientFactory* factory) {
    return startConnecting(factory);
  }
  virtual std::string describe() const = 0;

 protected:
  /// Starts one attempt, as connect(ClientFactory*) describes; an error
  /// (nothing started, the factory hears nothing) only for an endpoint that
  /// cannot connect at all.
  virtual absl::StatusOr<ConnectingAttempt> startConnecting(ClientFactory* factory) = 0;
};

/// Twisted's connectProtocol(endpoint, protocol): connects `protocol`
/// itself (no factory of the caller's) and fires with it once its
/// connectionMade() has run; cancellable as connect() is.
template <class P>
Deferred<P*> connectProtocol(ClientEndpoint& endpoint, std::unique_ptr<P> protocol);

/// The endpoint `description` names, on `reactor` (Twisted's
/// serverFromString). A stream endpoint with no backlog= gets
/// `default_backlog` (Twisted's 50).
absl::StatusOr<std::unique_ptr<ServerEndpoint>> serverFromString(
    Reactor* reactor, absl::string_view description, int default_backlog = 50);
std::unique_ptr<ServerEndpoint> serverFromSpec(Reactor* reactor, ServerEndpointSpec spec,
                                               int default_backlog = 50);
/// For a server that listens on `spec`'s address some other way than
/// serverFromSpec(...)->listen(): a ReactorPool's listeners, or a socket a
/// worker process adopts (Reactor::adoptStreamPort). The factory to serve
/// `spec`'s connections with on `reactor`: for ssl:, one that wraps
/// `factory`'s protocols in TLS (the key and certificate read now; errors as
/// listen()'s), owned by the caller and kept past the reactor; for every
/// other type nullptr, meaning `factory` itself.
absl::StatusOr<std::unique_ptr<Factory>> serverFactoryForSpec(Reactor* reactor,
                                                              const ServerEndpointSpec& spec,
                                                              Factory* factory);

/// The client endpoint `description` names (Twisted's clientFromString). A
/// tcp endpoint is a HostnameEndpoint: it resolves the host and races its
/// addresses (framework/hostname_endpoint.h).
absl::StatusOr<std::unique_ptr<ClientEndpoint>> clientFromString(
    Reactor* reactor, absl::string_view description);
std::unique_ptr<ClientEndpoint> clientFromSpec(Reactor* reactor, ClientEndpointSpec spec);

/// Whether this program can serve ssl: and connect tls: endpoints (it links
/// //protocols:tls_endpoints): for a program to refuse TLS options early.
bool TlsEndpointsAvailable();

/// What of `spec` can be checked before listening, for a program to report
/// a bad flag as usage: for ssl:, its key and certificate are read as
/// listen() reads them (unreadable, not PEM, not matching: the error names
/// the file); OK for every other type, and when the program does not link
/// TLS (listen() says so).
absl::Status CheckServerEndpointSpec(const ServerEndpointSpec& spec);

namespace endpoints_internal {
// The ssl: and tls: endpoints, installed by //protocols:tls_endpoints when a
// program links it (the framework itself does not depend on OpenSSL).
using TlsServerMaker = std::unique_ptr<ServerEndpoint> (*)(Reactor*, ServerEndpointSpec, int);
using TlsClientMaker = std::unique_ptr<ClientEndpoint> (*)(Reactor*, ClientEndpointSpec);
using TlsFactoryMaker = absl::StatusOr<std::unique_ptr<Factory>> (*)(Reactor*,
                                                                     const ServerEndpointSpec&,
                                                                     Factory*);
void SetTlsEndpointMakers(TlsServerMaker server, TlsClientMaker client, TlsFactoryMaker factory);
using TlsServerCheck = absl::Status (*)(const ServerEndpointSpec&);
void SetTlsServerCheck(TlsServerCheck check);
}  // namespace endpoints_internal

// --- connectProtocol -------------------------------------------------------

namespace endpoints_internal {
// connectProtocol's work: connects with a factory, owned by the attempt,
// that hands over `protocol`.
Deferred<Protocol*> ConnectProtocol(ClientEndpoint& endpoint, std::unique_ptr<Protocol> protocol);
}  // namespace endpoints_internal

template <class P>
Deferred<P*> connectProtocol(ClientEndpoint& endpoint, std::unique_ptr<P> protocol) {
  return endpoints_internal::ConnectProtocol(endpoint, std::move(protocol))
      .then([](Protocol* p) { return static_cast<P*>(p); });
}

}  // namespace twist

#endif  // TWIST_FRAMEWORK_ENDPOINTS_H_
