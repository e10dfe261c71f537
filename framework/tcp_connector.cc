#include "framework/tcp_connector.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "framework/client_factory.h"
#include "framework/errors.h"
#include "framework/connection_host.h"
#include "framework/stream_connection.h"

namespace twist {

Connector::Connector(ConnectionHost* reactor, std::string host, int port,
                     ClientFactory* factory, absl::Duration timeout,
                     std::optional<Address> bind_address)
    : reactor_(reactor),
      host_(std::move(host)),
      port_(port),
      factory_(factory),
      timeout_(timeout),
      bind_(std::move(bind_address)) {}

Connector::Connector(ConnectionHost* reactor, std::string path, ClientFactory* factory,
                     absl::Duration timeout)
    : Connector(reactor, "", 0, factory, timeout, std::nullopt) {
  unix_path_ = std::move(path);
}

Connector::~Connector() {
  cancelResolution();
  timeout_call_.cancel().IgnoreError();
  reconnect_call_.cancel().IgnoreError();
  failure_call_.cancel().IgnoreError();
  backlog_retry_.cancel().IgnoreError();
  closeSocket();
}

std::string Connector::getDestination() const {
  if (unix_path_.has_value()) {
    absl::StatusOr<Address> a = Address::Unix(*unix_path_);
    return a.ok() ? a->ToString() : absl::StrCat("unix:", *unix_path_);
  }
  return host_.find(':') == std::string::npos ? absl::StrCat(host_, ":", port_)
                                              : absl::StrCat("[", host_, "]:", port_);
}

Transport* Connector::transport() const { return connection_; }

bool Connector::idle() const {
  return state_ == State::kDisconnected && !failing_ && !reconnect_call_.active();
}

absl::Status Connector::connect() {
  if (state_ != State::kDisconnected || failing_) {
    return absl::FailedPreconditionError(
        absl::StrCat("connector to ", getDestination(), " is already in use"));
  }
  reconnect_call_.cancel().IgnoreError();
  if (reactor_->stopping()) {
    return absl::FailedPreconditionError("the reactor is stopping");
  }
  state_ = State::kConnecting;
  const uint64_t attempt = ++attempt_;
  addresses_.clear();
  next_address_ = 0;
  first_error_ = absl::OkStatus();
  if (!factory_started_) {
    factory_started_ = true;
    if (ClientFactory* f = factory_.get()) f->doStart();
  }
  if (timeout_ > absl::ZeroDuration() && timeout_ != absl::InfiniteDuration()) {
    timeout_call_ = reactor_->time().callLater(timeout_, [this] {
      fail(ConnectTimeoutError(getDestination(), timeout_), /*deferred=*/false);
    });
  }
  if (ClientFactory* f = factory_.get()) f->startedConnecting(this);
  if (state_ != State::kConnecting || attempt != attempt_ || failing_) {
    return absl::OkStatus();  // stopped from inside startedConnecting
  }
  if (unix_path_.has_value()) {
    absl::StatusOr<Address> a = Address::Unix(*unix_path_);
    if (!a.ok()) {
      fail(a.status(), /*deferred=*/true);
      return absl::OkStatus();
    }
    addresses_.push_back(*a);
    backlog_wait_ = absl::Milliseconds(1);
    tryNextAddress(/*deferred=*/true);
    return absl::OkStatus();
  }
  if (port_ < 0 || port_ > 65535) {
    fail(absl::InvalidArgumentError(
             absl::StrCat("invalid port ", port_, ": must be 0..65535")),
         /*deferred=*/true);
    return absl::OkStatus();
  }
  absl::StatusOr<Address> numeric = Address::Parse(host_, port_);
  if (numeric.ok()) {
    addresses_.push_back(*numeric);
    tryNextAddress(/*deferred=*/true);
    return absl::OkStatus();
  }
  resolve();
  return absl::OkStatus();
}

void Connector::resolve() {
  // getaddrinfo blocks, so it runs on the reactor's pool (a few threads,
  // however many connectors): the host's resolve (Reactor::resolve).
  resolution_ = reactor_->resolve(
      host_, port_, [this](absl::StatusOr<std::vector<Address>> addresses) {
        resolution_ = 0;
        resolved(std::move(addresses));
      });
}

void Connector::cancelResolution() {
  if (resolution_ != 0) reactor_->cancelResolve(std::exchange(resolution_, 0));
}

void Connector::start() {
  absl::Status s = connect();
  if (s.ok()) return;
  state_ = State::kConnecting;  // what fail() ends
  fail(std::move(s), /*deferred=*/true);
}

absl::Status Connector::connectLater(absl::Duration delay) {
  reconnect_call_.cancel().IgnoreError();
  if (reactor_->stopping()) {
    return absl::FailedPreconditionError("the reactor is stopping");
  }
  reconnect_call_ = reactor_->time().callLater(delay, [this] {
    // Failing here (reactor stopping, already connecting) just ends it.
    connect().IgnoreError();
    if (idle()) reactor_->connectorMaybeIdle(this);
  });
  return absl::OkStatus();
}

void Connector::resolved(absl::StatusOr<std::vector<Address>> addresses) {
  if (state_ != State::kConnecting || failing_) return;
  if (!addresses.ok()) {
    // NotFound: Address::ResolveAll already names the host and the reason.
    // ResourceExhausted (no pool thread could take the look-up) and
    // Cancelled (the reactor stopped) are the reactor's reasons, not the
    // resolver's.
    const absl::Status& s = addresses.status();
    fail(absl::IsNotFound(s) || absl::IsResourceExhausted(s) || absl::IsCancelled(s)
             ? s
             : DNSLookupError(host_, s.message()),
         /*deferred=*/false);
    return;
  }
  if (addresses->empty()) {
    fail(DNSLookupError(host_, "no address"), /*deferred=*/false);
    return;
  }
  addresses_ = *std::move(addresses);
  next_address_ = 0;
  tryNextAddress(/*deferred=*/false);
}

void Connector::tryNextAddress(bool deferred) {
  while (next_address_ < addresses_.size()) {
    absl::Status s = beginConnect(addresses_[next_address_++]);
    if (s.ok()) return;
    closeSocket();
    if (first_error_.ok()) first_error_ = std::move(s);
  }
  fail(first_error_.ok() ? ConnectError(EINVAL, getDestination()) : first_error_,
       deferred);
}

absl::Status Connector::beginConnect(const Address& address) {
  fd_ = ::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return ConnectError(errno, getDestination());
  if (bind_.has_value() &&
      ::bind(fd_, bind_->sockaddr_ptr(), bind_->length()) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot bind to ", bind_->ToString()));
  }
  int rc;
  do {
    rc = ::connect(fd_, address.sockaddr_ptr(), address.length());
  } while (rc != 0 && errno == EINTR);
  if (rc != 0 && errno == EAGAIN && address.isUnix()) {
    // The listener's backlog is full, and a non-blocking Unix connect does
    // not wait for room (nor does the socket become writable when there is
    // some): try again shortly, the waits doubling up to 100 ms, until the
    // timeout ends the attempt.
    closeSocket();
    --next_address_;
    backlog_retry_ = reactor_->time().callLater(backlog_wait_, [this] { tryNextAddress(false); });
    backlog_wait_ = std::min(backlog_wait_ * 2, absl::Milliseconds(100));
    return absl::OkStatus();
  }
  // Connected at once or not, the handshake's end is seen through
  // writability: connectionMade never runs inside the caller's connect().
  if (rc != 0 && errno != EINPROGRESS) return ConnectError(errno, getDestination());
  absl::Status s = reactor_->poller().add(fd_, kWritable, this);
  if (!s.ok()) return absl::ResourceExhaustedError(s.message());
  registered_ = true;
  return absl::OkStatus();
}

void Connector::handleEvents(uint32_t ready) {
  if (state_ != State::kConnecting || fd_ < 0) return;
  int error = 0;
  socklen_t len = sizeof(error);
  if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &len) != 0) error = errno;
  if (error != 0) {
    closeSocket();
    if (first_error_.ok()) first_error_ = ConnectError(error, getDestination());
    tryNextAddress(/*deferred=*/false);
    return;
  }
  connected();
}

void Connector::connected() {
  timeout_call_.cancel().IgnoreError();
  int fd = releaseSocket();
  absl::StatusOr<Address> peer = Address::PeerOf(fd);
  // A Unix client's peer is the path it connected to, as in Twisted (the
  // kernel would give the name as the server spelled it when it bound).
  if (peer.ok() && peer->isUnix()) peer = addresses_[next_address_ - 1];
  if (!peer.ok()) {
    // The connection died between the handshake and now.
    ::close(fd);
    fail(ConnectError(ECONNRESET, getDestination()), /*deferred=*/true);
    return;
  }
  ClientFactory* live = factory_.get();
  std::unique_ptr<Protocol> protocol = live != nullptr ? live->buildProtocol(*peer) : nullptr;
  if (protocol == nullptr) {
    ::close(fd);
    fail(NoProtocol(getDestination()), /*deferred=*/true);
    return;
  }
  // Connected before the protocol's connectionMade() runs, which may ask
  // for transport() or disconnect(): startConnection sets connection_.
  state_ = State::kConnected;
  absl::StatusOr<StreamConnection*> c = reactor_->startConnection(
      fd, std::move(protocol), factory_.raw(), *peer, this);
  if (!c.ok()) {
    connection_ = nullptr;
    state_ = State::kConnecting;
    fail(absl::ResourceExhaustedError(c.status().message()), /*deferred=*/true);
    return;
  }
}

absl::Status Connector::stopConnecting() {
  if (state_ == State::kDisconnected && reconnect_call_.active()) {
    reconnect_call_.cancel().IgnoreError();
    reactor_->connectorMaybeIdle(this);
    return absl::OkStatus();
  }
  if (state_ != State::kConnecting || failing_) {
    return absl::FailedPreconditionError(
        absl::StrCat("not connecting to ", getDestination()));
  }
  fail(ConnectCancelled(getDestination()), /*deferred=*/true);
  return absl::OkStatus();
}

bool Connector::abandonable() const {
  return state_ == State::kConnecting || failing_ || reconnect_call_.active();
}

void Connector::abandon() {
  if (failing_) {
    // Its loop turn will not come: the factory hears now what it would
    // have heard then.
    failure_call_.cancel().IgnoreError();
    deliverPendingFailure();
    return;
  }
  if (reconnect_call_.active()) {
    // A retry that will not happen: the factory hears, and forgets us.
    reconnect_call_.cancel().IgnoreError();
    reportFailure(ConnectCancelled(getDestination()));
    return;
  }
  fail(ConnectCancelled(getDestination()), /*deferred=*/false);
}

void Connector::disconnect() {
  if (state_ == State::kConnected && connection_ != nullptr) {
    connection_->loseConnection();
  } else {
    stopConnecting().IgnoreError();
  }
}

int Connector::releaseSocket() {
  if (registered_) {
    reactor_->poller().remove(fd_);
    registered_ = false;
  }
  return std::exchange(fd_, -1);
}

void Connector::closeSocket() {
  if (int fd = releaseSocket(); fd >= 0) ::close(fd);
}

void Connector::fail(absl::Status reason, bool deferred) {
  if (state_ != State::kConnecting || failing_) return;
  timeout_call_.cancel().IgnoreError();
  backlog_retry_.cancel().IgnoreError();
  closeSocket();
  cancelResolution();  // an answer still on its way is now unwanted
  if (!deferred) {
    reportFailure(reason);
    return;
  }
  failing_ = true;
  pending_failure_ = std::move(reason);
  failure_call_ = reactor_->time().callLater(absl::ZeroDuration(),
                                      [this] { deliverPendingFailure(); });
}

void Connector::deliverPendingFailure() {
  failing_ = false;
  reportFailure(std::exchange(pending_failure_, absl::OkStatus()));
}

void Connector::reportFailure(const absl::Status& reason) {
  state_ = State::kDisconnected;
  if (ClientFactory* f = factory_.get()) f->clientConnectionFailed(this, reason);
  afterAttempt();
}

void Connector::afterAttempt() {
  // Unless the factory's callback connected again (Twisted's rule).
  if (state_ == State::kDisconnected && factory_started_) {
    factory_started_ = false;
    if (ClientFactory* f = factory_.get()) f->doStop();
  }
  if (idle()) reactor_->connectorMaybeIdle(this);
}

void Connector::connectionLost(const absl::Status& reason) {
  connection_ = nullptr;
  state_ = State::kDisconnected;
  if (ClientFactory* f = factory_.get()) f->clientConnectionLost(this, reason);
  afterAttempt();
}

}  // namespace twist
