#ifndef TWIST_FRAMEWORK_CONNECTION_HOST_H_
#define TWIST_FRAMEWORK_CONNECTION_HOST_H_

#include <stddef.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "framework/address.h"
#include "framework/connection_handle.h"
#include "framework/poller.h"
#include "framework/reactor_time.h"

namespace twist {

class Connector;
class Factory;
class Protocol;
class StreamConnection;

/// Size of the host's shared read buffer: the most one read() takes.
inline constexpr size_t kReadBufferSize = 64 * 1024;

/// What a transport, port or connector may ask of the reactor that owns it
/// (framework-internal; Reactor implements it, privately, so users never
/// see it). This is the whole of their access to the reactor: there are no
/// friendships between them. Each comment is the contract.
///
/// What the reactor may ask of them in turn is in their own headers, in
/// the sections marked "For the ConnectionHost that owns it".
///
/// The hot path stays direct: poller(), readBuffer() and time() are plain
/// inline reads of what the host gave at construction, not virtual calls.
/// The virtual calls below happen at most a few times per connection.
class ConnectionHost {
 public:
  using ResolveCallback = absl::AnyInvocable<void(absl::StatusOr<std::vector<Address>>)>;

  ConnectionHost(const ConnectionHost&) = delete;
  ConnectionHost& operator=(const ConnectionHost&) = delete;

  /// The loop's poller. A transport, port or connector adds, modifies and
  /// removes its own descriptor there, with itself as the Selectable, and
  /// no other; it removes it before closing the descriptor.
  Poller& poller() const { return *poller_; }

  /// kReadBufferSize bytes shared by every connection of this host. Valid
  /// from a read() into it until the callback that gets the data returns;
  /// the next read by anyone overwrites it. Only the host's thread uses it.
  char* readBuffer() const { return read_buffer_.get(); }

  /// The loop's time, for timers (callLater) and rates (seconds).
  ReactorTime& time() const { return *time_; }

  /// A port accepted `fd` from `peer`: the host asks `factory` for a
  /// protocol (closing `fd` if it refuses), wraps the socket in a transport
  /// after the peer's family, owns it and starts it. Takes `fd` in every
  /// case. Called from the port's handleEvents.
  virtual void adoptConnection(int fd, Factory* factory, const Address& peer) = 0;

  /// A connector's socket connected: the host wraps it and `protocol` in a
  /// transport (after the peer's family), owns it, tells `connector` (if
  /// any) through Connector::attachConnection before the protocol's
  /// connectionMade, then starts it. On failure (the poller cannot watch
  /// `fd`) the protocol has heard nothing and `fd` is closed. Takes `fd`
  /// and `protocol` in every case.
  virtual absl::StatusOr<StreamConnection*> startConnection(
      int fd, std::unique_ptr<Protocol> protocol, Factory* factory, const Address& peer,
      Connector* connector) = 0;

  /// A connection wants to close once the current callback returns: the
  /// host calls its closeQueued() then, never inside this call. Once per
  /// close the connection asks for (it does not ask again until that ran).
  virtual void enqueueClose(StreamConnection* c) = 0;

  /// The connection has closed its socket and run connectionLost: the host
  /// destroys it at the end of this loop iteration, when no event already
  /// collected can point to it any more. Called once, as its last act.
  virtual void retire(StreamConnection* c) = 0;

  /// The connector may have nothing left to do: the host destroys it at the
  /// end of the iteration if Connector::idle() still holds then. Any number
  /// of times; the connector stays valid until then.
  virtual void connectorMaybeIdle(Connector* c) = 0;

  /// accept() failed with EMFILE/ENFILE on `listen_fd`: the host frees the
  /// descriptor it keeps in reserve, accepts and closes one pending
  /// connection (so that the client hears a close instead of waiting), and
  /// takes the reserve back. False when there was no reserve to spend: the
  /// port must back off instead of retrying at once.
  virtual bool shedOneConnection(int listen_fd) = 0;

  /// The host is shutting down: no new outgoing attempt may begin (a
  /// connector fails it, cancelled, instead).
  virtual bool stopping() const = 0;

  /// Resolves `host` off the loop; `done` runs later on the host's thread,
  /// exactly once, never inside this call (Reactor::resolve has the rest).
  /// Returns the id for cancelResolve().
  virtual uint64_t resolve(absl::string_view host, int port, ResolveCallback done) = 0;
  /// `done` of resolution `id` will not run. Unknown ids are ignored.
  virtual void cancelResolve(uint64_t id) = 0;

  /// A handle to connection `c` (open, of this host) whose posted calls get
  /// `as` (Transport::handle). Called on the host's thread. Default: an
  /// empty handle (a host with no other threads to serve).
  virtual ConnectionHandle connectionHandle(StreamConnection* c, Transport* as) {
    return ConnectionHandle();
  }

 protected:
  /// `poller` and `time` must outlive the host's transports, ports and
  /// connectors.
  ConnectionHost(Poller* poller, ReactorTime* time)
      : poller_(poller), time_(time), read_buffer_(new char[kReadBufferSize]) {}
  virtual ~ConnectionHost() = default;

 private:
  Poller* poller_;
  ReactorTime* time_;
  std::unique_ptr<char[]> read_buffer_;
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_CONNECTION_HOST_H_
