#include "framework/datagram_protocol.h"

#include <stdio.h>

namespace twist {

void DatagramProtocol::datagramTruncated(absl::string_view head, size_t full_size,
                                         const Address& addr) {
  // Once: a peer sending oversized datagrams must not flood the log.
  if (warned_truncated_) return;
  warned_truncated_ = true;
  fprintf(stderr,
          "twist: dropped a %zu-byte datagram from %s: longer than the port's "
          "maxPacketSize %zu (further ones are only counted)\n",
          full_size, addr.ToString().c_str(), head.size());
}

}  // namespace twist
