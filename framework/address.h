#ifndef TWIST_FRAMEWORK_ADDRESS_H_
#define TWIST_FRAMEWORK_ADDRESS_H_

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace twist {

/// An IPv4 or IPv6 endpoint, or a Unix socket's name (Twisted's
/// IPv4Address / IPv6Address / UNIXAddress in one value type, so that
/// Factory::buildProtocol() and Transport::getPeer() serve every stream
/// transport). Copyable and free of allocation: it holds a sockaddr_un
/// (116 bytes in all), which is why connections keep their peer in a
/// compact form of their own and build an Address when asked.
class Address {
 public:
  /// An unspecified address (family AF_UNSPEC, port 0).
  Address();

  /// Parses a numeric IPv4 or IPv6 host ("127.0.0.1", "::1", "[::1]") and a
  /// port in 0..65535. "" means every IPv4 interface, as in Twisted.
  static absl::StatusOr<Address> Parse(absl::string_view host, int port);
  /// Like Parse, but also resolves a host name (e.g. "localhost") with
  /// getaddrinfo. Blocks while resolving: meant for start-up code.
  static absl::StatusOr<Address> Resolve(absl::string_view host, int port);
  /// Every address `host` resolves to, in getaddrinfo's order (IPv6 and
  /// IPv4), without repeats; NotFound if none. Blocks like Resolve.
  static absl::StatusOr<std::vector<Address>> ResolveAll(absl::string_view host,
                                                         int port);
  /// A Unix socket name: a file path ("/run/echo.sock", or relative), or
  /// "@name" for Linux's abstract namespace (no file; the kernel frees the
  /// name when its socket closes). At most 107 bytes (after the '@' for an
  /// abstract name): sun_path holds 108 with the NUL.
  static absl::StatusOr<Address> Unix(absl::string_view path);
  /// An IPv4, IPv6 or Unix address as the kernel gives it (accept,
  /// getsockname, recvfrom); unspecified for any other family.
  static Address FromSockaddr(const sockaddr* sa, socklen_t len);
  /// getsockname / getpeername of a socket.
  static absl::StatusOr<Address> LocalOf(int fd);
  static absl::StatusOr<Address> PeerOf(int fd);

  int family() const { return addr_.sa.sa_family; }
  bool isIPv6() const { return family() == AF_INET6; }
  /// "::", every IPv6 interface (what a dual-stack port binds).
  bool isIPv6Any() const;
  bool isUnix() const { return family() == AF_UNIX; }
  /// A Unix name in the abstract namespace ("@name").
  bool isAbstract() const;
  /// A Unix socket's name as Unix() takes it: the path, "@name" for an
  /// abstract one, "" for an unnamed socket (a client that did not bind,
  /// as most do). "" for IP addresses.
  std::string path() const;
  /// The numeric host, without brackets ("::1").
  std::string host() const;
  int port() const;
  /// "127.0.0.1:8000", "[::1]:8000", "unix:/tmp/echo.sock",
  /// "unix:@name", or "unix:(unnamed)" for an unnamed Unix socket.
  std::string ToString() const;
  /// An IPv4 peer of a dual-stack IPv6 socket comes as ::ffff:a.b.c.d; this
  /// gives it as the IPv4 address a.b.c.d (same port). Any other address is
  /// returned as it is.
  Address unmapped() const;

  const sockaddr* sockaddr_ptr() const { return &addr_.sa; }
  socklen_t length() const;

  friend bool operator==(const Address& a, const Address& b) {
    return a.ToString() == b.ToString();
  }
  friend bool operator!=(const Address& a, const Address& b) {
    return !(a == b);
  }

 private:
  union {
    sockaddr sa;
    sockaddr_in v4;
    sockaddr_in6 v6;
    sockaddr_un un;
  } addr_;
  // AF_UNIX: how many bytes of addr_.un name it (an abstract name may hold
  // any byte, NUL included, so the length is the name's only end).
  uint8_t unix_length_ = 0;
};

/// Resolves a host name to its addresses for Reactor::connectTCP
/// (Address::ResolveAll by default; see ReactorOptions::resolver). Runs on
/// the reactor's thread pool, several at a time: it must be thread-safe.
using NameResolver =
    std::function<absl::StatusOr<std::vector<Address>>(const std::string& host, int port)>;

}  // namespace twist

#endif  // TWIST_FRAMEWORK_ADDRESS_H_
