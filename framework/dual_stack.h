#ifndef TWIST_FRAMEWORK_DUAL_STACK_H_
#define TWIST_FRAMEWORK_DUAL_STACK_H_

namespace twist {

/// Whether a port bound to "::" (every IPv6 interface) also serves IPv4
/// peers, which then appear as plain IPv4 addresses (IPV6_V6ONLY off). On
/// by default, as in most servers; kOff leaves IPv4 to a port of its own.
/// Any other address serves its own family only. Used by listenTCP and
/// listenUDP (framework/reactor_tcp.h, framework/reactor_udp.h).
enum class DualStack { kOn, kOff };

}  // namespace twist

#endif  // TWIST_FRAMEWORK_DUAL_STACK_H_
