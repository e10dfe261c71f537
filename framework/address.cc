#include "framework/address.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <string.h>

#include <vector>

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

Address Address::FromSockaddr(const sockaddr* sa, socklen_t len) {
  Address a;
  if (sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    memcpy(&a.addr_.v4, sa, sizeof(sockaddr_in));
  } else if (sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    memcpy(&a.addr_.v6, sa, sizeof(sockaddr_in6));
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
  return 0;
}

}  // namespace twist
