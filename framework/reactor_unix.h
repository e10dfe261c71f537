#ifndef TWIST_FRAMEWORK_REACTOR_UNIX_H_
#define TWIST_FRAMEWORK_REACTOR_UNIX_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace twist {

class ClientFactory;
class Connector;
class Factory;
class Port;

/// Unix-domain stream sockets (Twisted's IReactorUNIX). Reactor implements
/// it. As in ReactorTCP, the public calls hold the defaults and forward to
/// protected virtuals without any.
class ReactorUNIX {
 public:
  virtual ~ReactorUNIX() = default;

  /// Listens on the Unix-domain stream socket `path` (Twisted's listenUNIX)
  /// and builds a protocol with `factory` for each connection, as
  /// listenTCP does; the same protocols work over both.
  ///  - `path`: a file path (at most 107 bytes), or "@name" for Linux's
  ///    abstract namespace (no file: mode and want_pid do not apply).
  ///  - `backlog`: as for listenTCP.
  ///  - `mode`: the socket file's permissions (connecting needs write
  ///    permission), set before the socket listens. Twisted's default 0666.
  ///  - `want_pid`: guard the path with the lock file PATH.lock, holding
  ///    this process's pid, for the port's life (Twisted's wantPID).
  /// A stale socket file (nobody listens on it) is replaced; a live server's
  /// path is never taken, nor a path that is not a socket. With want_pid,
  /// two servers never replace each other's socket even when they start at
  /// the same moment (framework/unix_socket_file.h has the rules).
  /// stopListening() (and so stop(), SIGTERM after installSignalHandlers(),
  /// and the reactor's destruction) removes the socket file this port
  /// created and its lock file, and nothing else.
  /// Errors, each "cannot listen on unix:PATH: ...": INVALID_ARGUMENT for a
  /// bad path; the errno status of EADDRINUSE (as listenTCP's port in use)
  /// for a path held by a live server ("a server is listening there",
  /// "locked by process 1234 (PATH.lock)") or that is not a socket; the
  /// errno of socket/bind/listen otherwise. The port is owned by the
  /// implementation; the pointer stays valid for its lifetime.
  absl::StatusOr<Port*> listenUNIX(absl::string_view path, Factory* factory,
                                   int backlog = 50, int mode = 0666,
                                   bool want_pid = false) {
    return doListenUNIX(path, factory, backlog, mode, want_pid);
  }

  /// Connects to the Unix-domain stream socket `path` (a file path or
  /// "@name", as for listenUNIX; Twisted's connectUNIX), with the same
  /// Connector and ClientFactory callbacks as connectTCP. No file, or one
  /// nobody listens on, fails as "connection refused by unix:PATH: ..."
  /// (IsConnectionRefused); a bad path as INVALID_ARGUMENT. A listener whose
  /// backlog is full is tried again (a Unix connect does not wait for room
  /// when non-blocking) until `timeout` (DEADLINE_EXCEEDED).
  Connector* connectUNIX(absl::string_view path, ClientFactory* factory,
                         absl::Duration timeout = absl::Seconds(30)) {
    return doConnectUNIX(path, factory, timeout);
  }

 protected:
  virtual absl::StatusOr<Port*> doListenUNIX(absl::string_view path, Factory* factory,
                                             int backlog, int mode, bool want_pid) = 0;
  virtual Connector* doConnectUNIX(absl::string_view path, ClientFactory* factory,
                                   absl::Duration timeout) = 0;
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_REACTOR_UNIX_H_
