#ifndef TWIST_FRAMEWORK_ERRORS_H_
#define TWIST_FRAMEWORK_ERRORS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace twist {

// Why a connection ended, as passed to Protocol::connectionLost. Twisted has
// three failures; twist encodes them in absl::Status:
//   ConnectionDone     clean close (either side)         -> OK
//   ConnectionLost     reset, broken pipe, timeout, ...   -> UNAVAILABLE + cause
//   ConnectionAborted  abortConnection() on our side      -> ABORTED

inline absl::Status ConnectionDone() { return absl::OkStatus(); }
absl::Status ConnectionLost(int error_number);
absl::Status ConnectionLost(absl::string_view why);
absl::Status ConnectionAborted();

inline bool IsConnectionDone(const absl::Status& s) { return s.ok(); }
inline bool IsConnectionLost(const absl::Status& s) {
  return absl::IsUnavailable(s);
}
inline bool IsConnectionAborted(const absl::Status& s) {
  return absl::IsAborted(s);
}

// Why a connection attempt failed, as passed to
// ClientFactory::clientConnectionFailed (Twisted's ConnectError family):
//   ConnectionRefusedError  nothing listens there (RST; for  -> UNAVAILABLE "connection refused by HOST:PORT: ..."
//                           a Unix path, also no file)          ("... by unix:PATH: No such file or directory")
//   NoRouteError            network/host unreachable       -> UNAVAILABLE "no route to HOST:PORT: ..."
//   other connect errors    (errno)                        -> UNAVAILABLE "cannot connect to HOST:PORT: ..."
//   TimeoutError            no answer within the timeout   -> DEADLINE_EXCEEDED
//   DNSLookupError          the name did not resolve       -> NOT_FOUND
//   UserError               stopConnecting()               -> CANCELLED
//   NoProtocol              the factory built no protocol  -> FAILED_PRECONDITION
// The Is...() tests below tell them apart by code and, for the UNAVAILABLE
// ones, by how the message starts: the status carries no payload, so
// printing it (ToString(), operator<<) shows just the code and the message.
// A status rebuilt with another message (a prefix of yours) loses the kind:
// test the reason as the factory got it.
absl::Status ConnectError(int error_number, absl::string_view destination);
absl::Status ConnectTimeoutError(absl::string_view destination,
                                 absl::Duration timeout);
absl::Status DNSLookupError(absl::string_view host, absl::string_view why);
absl::Status ConnectCancelled(absl::string_view destination);
absl::Status NoProtocol(absl::string_view destination);

bool IsConnectionRefused(const absl::Status& s);
bool IsNoRoute(const absl::Status& s);
inline bool IsConnectTimeout(const absl::Status& s) {
  return absl::IsDeadlineExceeded(s);
}
inline bool IsDNSLookupError(const absl::Status& s) {
  return absl::IsNotFound(s);
}
inline bool IsConnectCancelled(const absl::Status& s) {
  return absl::IsCancelled(s);
}
bool IsNoProtocol(const absl::Status& s);

}  // namespace twist

#endif  // TWIST_FRAMEWORK_ERRORS_H_
