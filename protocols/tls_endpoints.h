#ifndef TWIST_PROTOCOLS_TLS_ENDPOINTS_H_
#define TWIST_PROTOCOLS_TLS_ENDPOINTS_H_

namespace twist {

/// The ssl: server and tls: client endpoint strings (framework/endpoints.h
/// has their syntax), Twisted's endpoint plugins of the same names: linking
/// //protocols:tls_endpoints installs them, so serverFromString and
/// clientFromString understand them. This call does the same, for a
/// program that wants to say so.
///
///   ssl:8443:privateKey=key.pem:certKey=cert.pem   listens on TCP port 8443
///       and serves the factory's protocols over TLS (TLSMemoryBIOFactory),
///       with a 30 s handshake timeout (handshakeTimeout=S). The files are
///       read when listen() is called; an unreadable or mismatched one fails
///       it. The port owns its TLS factory.
///   tls:host=H:port=P[:caCertsFile=ca.pem]   connects like tcp: (every
///       address of H raced) and checks that the server's certificate names
///       H and chains to a CA of caCertsFile, or of the system's store.
void InstallTlsEndpoints();

}  // namespace twist

#endif  // TWIST_PROTOCOLS_TLS_ENDPOINTS_H_
