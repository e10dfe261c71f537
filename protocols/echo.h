#ifndef TWIST_PROTOCOLS_ECHO_H_
#define TWIST_PROTOCOLS_ECHO_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "framework/protocol.h"

namespace twist {

/// Sends back every byte it receives (RFC 862, twisted.protocols.wire.Echo).
///
/// The transport is its own producer: while more than the high water mark
/// is waiting for a peer that does not read, the echo stops reading from
/// that peer, so memory stays bounded however much it sends. It is
/// half-closeable: a peer that shuts down its write side still gets all of
/// its echo, then end of file.
class Echo : public Protocol, public HalfCloseableProtocol {
 public:
  void connectionMade() override;
  void dataReceived(absl::string_view data) override;
  void readConnectionLost() override;
};

}  // namespace twist

#endif  // TWIST_PROTOCOLS_ECHO_H_
