#include "framework/address.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stddef.h>
#include <string.h>

#include <algorithm>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace twist {

Address::Address() { memset(&addr_, 0, sizeof(addr_)); }

absl::StatusOr<Address> Address::Parse(absl::string_view host, int port) {
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrFormat("invalid port %d: must be 0..65535", port));
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  Address a;
  std::string h(host.empty() ? "0.0.0.0" : host);
  if (inet_pton(AF_INET, h.c_str(), &a.addr_.v4.sin_addr) == 1) {
    a.addr_.v4.sin_family = AF_INET;
    a.addr_.v4.sin_port = htons(static_cast<uint16_t>(port));
    return a;
  }
  if (inet_pton(AF_INET6, h.c_str(), &a.addr_.v6.sin6_addr) == 1) {
    a.addr_.v6.sin6_family = AF_INET6;
    a.addr_.v6.sin6_port = htons(static_cast<uint16_t>(port));
    return a;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "invalid address '", host, "': not a numeric IPv4 or IPv6 address"));
}

absl::StatusOr<Address> Address::Resolve(absl::string_view host, int port) {
  absl::StatusOr<std::vector<Address>> all = ResolveAll(host, port);
  if (!all.ok()) return all.status();
  return all->front();
}

absl::StatusOr<std::vector<Address>> Address::ResolveAll(absl::string_view host,
                                                         int port) {
  absl::StatusOr<Address> numeric = Parse(host, port);
  if (numeric.ok()) return std::vector<Address>{*numeric};
  if (port < 0 || port > 65535) return numeric.status();
  addrinfo hints;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* result = nullptr;
  std::string h(host);
  std::string service = absl::StrCat(port);
  int rc = getaddrinfo(h.c_str(), service.c_str(), &hints, &result);
  if (rc != 0) {
    return absl::NotFoundError(
        absl::StrCat("cannot resolve '", host, "': ", gai_strerror(rc)));
  }
  std::vector<Address> all;
  for (const addrinfo* ai = result; ai != nullptr; ai = ai->ai_next) {
    Address a = FromSockaddr(ai->ai_addr, ai->ai_addrlen);
    if (a.family() == AF_UNSPEC) continue;
    // getaddrinfo may list an address once per protocol: keep the first.
    bool seen = false;
    for (const Address& b : all) seen = seen || a == b;
    if (!seen) all.push_back(a);
  }
  freeaddrinfo(result);
  if (all.empty()) {
    return absl::NotFoundError(
        absl::StrCat("cannot resolve '", host, "': no IPv4 or IPv6 address"));
  }
  return all;
}

namespace {
constexpr size_t kSunPathOffset = offsetof(sockaddr_un, sun_path);
constexpr size_t kSunPathSize = sizeof(sockaddr_un{}.sun_path);
}  // namespace

absl::StatusOr<Address> Address::Unix(absl::string_view path) {
  if (path.empty()) return absl::InvalidArgumentError("a Unix socket path is empty");
  const bool abstract = path[0] == '@';
  absl::string_view name = abstract ? path.substr(1) : path;
  if (abstract && name.empty()) {
    return absl::InvalidArgumentError("the abstract Unix socket name '@' is empty");
  }
  if (name.size() > kSunPathSize - 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Unix socket path '", path, "' is ", name.size(), " bytes long; at most ",
        kSunPathSize - 1, " fit"));
  }
  if (!abstract && name.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("a Unix socket path cannot hold a NUL byte");
  }
  Address a;
  a.addr_.un.sun_family = AF_UNIX;
  // Abstract: a NUL, then the name, without terminator. A path: the path and
  // its NUL (already there: the address starts zeroed).
  memcpy(a.addr_.un.sun_path + (abstract ? 1 : 0), name.data(), name.size());
  a.unix_length_ = static_cast<uint8_t>(kSunPathOffset + name.size() + 1);
  return a;
}

Address Address::FromSockaddr(const sockaddr* sa, socklen_t len) {
  Address a;
  if (sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    memcpy(&a.addr_.v4, sa, sizeof(sockaddr_in));
  } else if (sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    memcpy(&a.addr_.v6, sa, sizeof(sockaddr_in6));
  } else if (sa->sa_family == AF_UNIX && len >= sizeof(sa_family_t)) {
    len = std::min<socklen_t>(len, sizeof(sockaddr_un));
    memcpy(&a.addr_.un, sa, len);
    if (len > kSunPathOffset && a.addr_.un.sun_path[0] != '\0') {
      // A path: the kernel may count its NUL, or not; keep exactly one.
      const size_t n = strnlen(a.addr_.un.sun_path, len - kSunPathOffset);
      if (n == kSunPathSize) {
        len = sizeof(sockaddr_un);  // 108 bytes without a NUL (not from us)
      } else {
        len = static_cast<socklen_t>(kSunPathOffset + n + 1);
      }
    }
    // Else abstract (the length is the name's end) or unnamed (no sun_path).
    a.unix_length_ = static_cast<uint8_t>(len);
  }
  return a;
}

namespace {
using NameFn = int (*)(int, sockaddr*, socklen_t*);

absl::StatusOr<Address> NameOf(int fd, NameFn fn, absl::string_view what) {
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (fn(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return absl::ErrnoToStatus(errno, what);
  }
  return Address::FromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}
}  // namespace

absl::StatusOr<Address> Address::LocalOf(int fd) {
  return NameOf(fd, getsockname, "getsockname");
}

absl::StatusOr<Address> Address::PeerOf(int fd) {
  return NameOf(fd, getpeername, "getpeername");
}

bool Address::isAbstract() const {
  return isUnix() && unix_length_ > kSunPathOffset && addr_.un.sun_path[0] == '\0';
}

std::string Address::path() const {
  if (!isUnix() || unix_length_ <= kSunPathOffset) return "";
  if (isAbstract()) {
    return absl::StrCat("@", absl::string_view(addr_.un.sun_path + 1,
                                               unix_length_ - kSunPathOffset - 1));
  }
  return std::string(addr_.un.sun_path, strnlen(addr_.un.sun_path, kSunPathSize));
}

std::string Address::host() const {
  char buf[INET6_ADDRSTRLEN] = "";
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &addr_.v4.sin_addr, buf, sizeof(buf));
  } else if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &addr_.v6.sin6_addr, buf, sizeof(buf));
  }
  return buf;
}

int Address::port() const {
  if (family() == AF_INET) return ntohs(addr_.v4.sin_port);
  if (family() == AF_INET6) return ntohs(addr_.v6.sin6_port);
  return 0;
}

std::string Address::ToString() const {
  if (isIPv6()) return absl::StrCat("[", host(), "]:", port());
  if (family() == AF_INET) return absl::StrCat(host(), ":", port());
  if (isUnix()) {
    std::string p = path();
    if (p.empty()) return "unix:(unnamed)";
    // Abstract names may hold any byte (other programs' NULs, say).
    if (isAbstract()) {
      bool printable = true;
      for (char c : p) printable = printable && c >= 0x20 && c < 0x7f;
      if (!printable) return absl::StrCat("unix:", absl::CHexEscape(p));
    }
    return absl::StrCat("unix:", p);
  }
  return "unspecified";
}

bool Address::isIPv6Any() const {
  return isIPv6() && IN6_IS_ADDR_UNSPECIFIED(&addr_.v6.sin6_addr);
}

Address Address::unmapped() const {
  if (!isIPv6() || !IN6_IS_ADDR_V4MAPPED(&addr_.v6.sin6_addr)) return *this;
  Address a;
  a.addr_.v4.sin_family = AF_INET;
  a.addr_.v4.sin_port = addr_.v6.sin6_port;
  memcpy(&a.addr_.v4.sin_addr, &addr_.v6.sin6_addr.s6_addr[12], 4);
  return a;
}

socklen_t Address::length() const {
  if (family() == AF_INET) return sizeof(sockaddr_in);
  if (family() == AF_INET6) return sizeof(sockaddr_in6);
  if (family() == AF_UNIX) return unix_length_;
  return 0;
}

}  // namespace twist
