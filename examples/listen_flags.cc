#include "examples/listen_flags.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cerrno>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "examples/usage.h"
#include "gflags/gflags.h"

DEFINE_string(listen, "",
              "Endpoint to listen on; repeat for several, served in the order given: "
              "tcp:PORT[:interface=ADDR][:backlog=N], tcp6:PORT[:interface=ADDR], "
              "unix:PATH[:mode=0666][:lockfile=1] (unix:@NAME: abstract), "
              "udp:PORT[:interface=ADDR] (datagram servers), "
              "ssl:PORT:privateKey=KEY.pem[:certKey=CERT.pem] (TLS, in servers linked with "
              "//protocols:tls_endpoints). '\\:' is a colon inside "
              "a value (interface=\\:\\:1). Replaces --host/--port.");
DEFINE_string(host, "127.0.0.1",
              "Address to listen on, with --port the short form of one endpoint: a "
              "numeric IPv4 or IPv6 address (\"::1\", \"0.0.0.0\").");
DEFINE_int32(port, 8000, "Port to listen on, 0..65535; 0 picks a free one.");
DEFINE_string(tls_cert, "",
              "PEM certificate chain (the server's certificate, then intermediates): with "
              "--tls_key, serve TLS on --host/--port, as "
              "--listen=ssl:PORT:interface=HOST:privateKey=KEY:certKey=CERT would.");
DEFINE_string(tls_key, "", "PEM private key of --tls_cert's certificate.");

namespace twist {
namespace {

std::vector<std::string>& Listens() {
  static auto* listens = new std::vector<std::string>;
  return *listens;
}

bool Given(const char* flag) { return !gflags::GetCommandLineFlagInfoOrDie(flag).is_default; }

// --tls_cert and --tls_key: both or neither, readable, with --host/--port
// only, in a stream server that links TLS. Returns whether they are given.
absl::StatusOr<bool> TlsFlags(bool datagram) {
  const bool cert = Given("tls_cert"), key = Given("tls_key");
  if (!cert && !key) return false;
  if (!cert || !key) {
    return absl::InvalidArgumentError(absl::StrCat(
        cert ? "--tls_cert needs --tls_key" : "--tls_key needs --tls_cert",
        ": TLS takes the certificate and its private key"));
  }
  if (datagram) {
    return absl::InvalidArgumentError("--tls_cert/--tls_key: a datagram server has no TLS");
  }
  if (!Listens().empty()) {
    return absl::InvalidArgumentError(
        "--tls_cert/--tls_key and --listen both say how to listen: name the files in the "
        "endpoint (--listen=ssl:PORT:privateKey=KEY:certKey=CERT) or use --host/--port");
  }
  if (!TlsEndpointsAvailable()) {
    return absl::InvalidArgumentError(
        "--tls_cert/--tls_key: this server does not serve TLS (it does not link "
        "//protocols:tls_endpoints)");
  }
  for (const auto& [flag, path] : {std::make_pair("tls_cert", FLAGS_tls_cert),
                                   std::make_pair("tls_key", FLAGS_tls_key)}) {
    if (::access(path.c_str(), R_OK) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, "=", path, ": cannot read it: ", strerror(errno)));
    }
  }
  return true;
}

}  // namespace

absl::Status ParseServerFlags(int* argc, char*** argv) {
  // --listen=E, -listen=E, --listen E, -listen E; "--" ends the flags.
  std::vector<char*> rest;
  int i = 0;
  for (; i < *argc; ++i) {
    absl::string_view arg = (*argv)[i];
    if (i > 0 && arg == "--") break;
    absl::string_view name = arg;
    if (i == 0 || !(absl::ConsumePrefix(&name, "--") || absl::ConsumePrefix(&name, "-")) ||
        !absl::ConsumePrefix(&name, "listen")) {
      rest.push_back((*argv)[i]);
      continue;
    }
    if (absl::ConsumePrefix(&name, "=")) {
      Listens().emplace_back(name);
    } else if (name.empty()) {
      if (i + 1 == *argc) return absl::InvalidArgumentError("--listen needs an endpoint");
      Listens().emplace_back((*argv)[++i]);
    } else {
      rest.push_back((*argv)[i]);  // --listenfoo: gflags says it is unknown
    }
  }
  for (; i < *argc; ++i) rest.push_back((*argv)[i]);
  for (size_t j = 0; j < rest.size(); ++j) (*argv)[j] = rest[j];
  *argc = static_cast<int>(rest.size());
  (*argv)[*argc] = nullptr;
  if (absl::Status s = ParseFlags(argc, argv); !s.ok()) return s;
  if (*argc > 1) {
    return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", (*argv)[1], "'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ServerEndpointSpec>> ListenSpecs(bool datagram) {
  if (!FLAGS_listen.empty()) {
    // gflags itself read a --listen (keeping only the last): the program
    // parsed its flags without ParseServerFlags, and would listen elsewhere
    // than asked.
    return absl::InternalError(
        "--listen reached gflags: the program must parse its flags with ParseServerFlags");
  }
  std::vector<ServerEndpointSpec> specs;
  const bool short_form = Given("host") || Given("port");
  absl::StatusOr<bool> tls = TlsFlags(datagram);
  if (!tls.ok()) return tls.status();
  if (!Listens().empty()) {
    if (short_form) {
      return absl::InvalidArgumentError(
          "--host/--port and --listen both name where to listen: use one or the other");
    }
    for (const std::string& listen : Listens()) {
      absl::StatusOr<ServerEndpointSpec> spec = ParseServerEndpoint(listen);
      if (!spec.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--listen=", listen, ": ", spec.status().message()));
      }
      if (spec->datagram() != datagram) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--listen=", listen, ": this server takes ",
            datagram ? "datagram endpoints (udp:)" : "stream endpoints (tcp:, tcp6:, unix:, ssl:)"));
      }
      // A key or certificate that is not one is bad usage too, said now
      // rather than when the server listens.
      if (absl::Status s = CheckServerEndpointSpec(*spec); !s.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("--listen=", listen, ": ", s.message()));
      }
      specs.push_back(*std::move(spec));
    }
    return specs;
  }
  if (FLAGS_port < 0 || FLAGS_port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid --port ", FLAGS_port, ": must be 0..65535"));
  }
  ServerEndpointSpec spec;
  spec.type = datagram ? ServerEndpointSpec::Type::kUdp : ServerEndpointSpec::Type::kTcp;
  spec.port = FLAGS_port;
  spec.interface = FLAGS_host;  // a name such as localhost is resolved by listenTCP
  if (*tls) {
    spec.type = ServerEndpointSpec::Type::kSsl;
    spec.cert_key = FLAGS_tls_cert;
    spec.private_key = FLAGS_tls_key;
    if (absl::Status s = CheckServerEndpointSpec(spec); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--tls_cert/--tls_key: ", s.message()));
    }
  }
  if (datagram) {
    absl::StatusOr<Address> a = Address::Parse(FLAGS_host, 0);
    if (!a.ok()) return absl::InvalidArgumentError(absl::StrCat("--host: ", a.status().message()));
  }
  specs.push_back(std::move(spec));
  return specs;
}

void PrintListening(const std::vector<ListeningPort>& ports) {
  for (const ListeningPort& p : ports) printf("listening on %s\n", p.describe().c_str());
  fflush(stdout);
}

}  // namespace twist
