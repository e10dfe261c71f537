// ClientEndpoint's Deferred style (Twisted's endpoint.connect), built on the
// callback style every endpoint implements.

#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "framework/client_factory.h"
#include "framework/endpoints.h"
#include "framework/errors.h"
#include "framework/protocol.h"

namespace twist {
namespace {

class DeferredConnect;

// Stands between the connection and the user's protocol only to learn that
// its connectionMade() has run (Twisted's _WrappingProtocol): the user's
// protocol gets the real transport, so this adds one call per event and
// nothing per write.
class ConnectedNotifier final : public Protocol,
                                public HalfCloseableProtocol,
                                public BufferingProtocol {
 public:
  ConnectedNotifier(std::unique_ptr<Protocol> wrapped, std::shared_ptr<DeferredConnect> owner)
      : wrapped_(std::move(wrapped)),
        half_closeable_(dynamic_cast<HalfCloseableProtocol*>(wrapped_.get())),
        buffering_(dynamic_cast<BufferingProtocol*>(wrapped_.get())),
        owner_(std::move(owner)) {}

  void connectionMade() override;
  void dataReceived(absl::string_view data) override { wrapped_->dataReceived(data); }
  void readConnectionLost() override {
    // What the transport does for a protocol that is not half-closeable.
    if (half_closeable_ != nullptr) {
      half_closeable_->readConnectionLost();
    } else {
      transport()->loseConnection();
    }
  }
  void readingResumed() override {
    if (buffering_ != nullptr) buffering_->readingResumed();
  }
  void connectionLost(const absl::Status& reason) override { wrapped_->connectionLost(reason); }

 private:
  std::unique_ptr<Protocol> wrapped_;
  HalfCloseableProtocol* half_closeable_;
  BufferingProtocol* buffering_;
  std::shared_ptr<DeferredConnect> owner_;
};

// One attempt of connect(Factory*) (Twisted's _WrappingFactory): the
// ClientFactory the endpoint hears from, firing the Deferred. It keeps
// itself alive (self_) from connect() until the endpoint is done with it:
// after the attempt's last callback and, if it was started, its doStop().
class DeferredConnect final : public ClientFactory,
                              public std::enable_shared_from_this<DeferredConnect> {
 public:
  DeferredConnect(Factory* user, std::unique_ptr<Factory> owned, std::string destination)
      : user_(user),
        owned_(std::move(owned)),
        destination_(std::move(destination)),
        deferred_([this](Deferred<Protocol*>& d) { cancelled(d); }) {}

  Deferred<Protocol*> start(ClientEndpoint& endpoint) {
    self_ = shared_from_this();
    Deferred<Protocol*> d = deferred_;
    absl::StatusOr<ConnectingAttempt> attempt = endpoint.connect(static_cast<ClientFactory*>(this));
    if (!attempt.ok()) {
      deferred_.errback(attempt.status()).IgnoreError();
      self_.reset();  // the endpoint never took us
      return d;
    }
    attempt_ = *std::move(attempt);
    return d;
  }

  void connected(Protocol* p) {
    deferred_.callback(p).IgnoreError();  // ignored if cancelled meanwhile
  }

  std::unique_ptr<Protocol> buildProtocol(const Address& addr) override {
    if (deferred_.called()) return nullptr;  // cancelled: refused
    Factory* user = user_.get();
    if (user == nullptr) return nullptr;  // gone before the reactor
    std::unique_ptr<Protocol> p = user->buildProtocol(addr);
    if (p == nullptr) {
      refused_ = true;
      return nullptr;
    }
    if (owned_ == nullptr && p->factory() == nullptr) p->setFactory(user);
    // The notifier's factory() is this: it keeps this alive as long as it.
    return std::make_unique<ConnectedNotifier>(std::move(p), shared_from_this());
  }
  void startFactory() override {
    started_ = true;
    if (Factory* user = user_.get()) user->doStart();
  }
  void stopFactory() override {
    started_ = false;
    if (Factory* user = user_.get()) user->doStop();
    maybeRelease();  // Factory::doStop touches nothing after this
  }
  void clientConnectionFailed(Connector*, const absl::Status& reason) override {
    // Twisted's NoProtocol when the factory refused.
    deferred_
        .errback(refused_ ? NoProtocol(destination_) : reason)
        .IgnoreError();  // ignored if cancelled already
    ended_ = true;
    maybeRelease();
  }
  void clientConnectionLost(Connector*, const absl::Status&) override {
    ended_ = true;
    maybeRelease();
  }

 private:
  // Twisted's _WrappingFactory._canceller: fails at once with
  // ConnectingCancelledError, then stops the attempt (whose failure report,
  // later, finds the Deferred fired and is dropped).
  void cancelled(Deferred<Protocol*>& d) {
    d.errback(ConnectCancelled(destination_)).IgnoreError();
    attempt_.cancel();
  }
  void maybeRelease() {
    if (ended_ && !started_) self_.reset();  // may destroy this
  }

  FactoryRef<Factory> user_;  // may go before the reactor: not called then
  std::unique_ptr<Factory> owned_;  // connectProtocol's: ours to keep
  std::string destination_;
  Deferred<Protocol*> deferred_;
  ConnectingAttempt attempt_;
  std::shared_ptr<DeferredConnect> self_;
  bool refused_ = false;
  bool started_ = false;
  bool ended_ = false;
};

void ConnectedNotifier::connectionMade() {
  wrapped_->makeConnection(transport());
  // Fired even if connectionMade() asked to close: the close waits for this
  // callback to return, and Twisted fires it too.
  owner_->connected(wrapped_.get());
}

Deferred<Protocol*> Connect(ClientEndpoint& endpoint, Factory* user,
                            std::unique_ptr<Factory> owned) {
  auto c = std::make_shared<DeferredConnect>(user, std::move(owned), endpoint.describe());
  return c->start(endpoint);
}

}  // namespace

Deferred<Protocol*> ClientEndpoint::connect(Factory* factory) {
  return Connect(*this, factory, nullptr);
}

namespace endpoints_internal {

namespace {
// Hands over connectProtocol's one protocol.
class OneProtocolFactory final : public Factory {
 public:
  explicit OneProtocolFactory(std::unique_ptr<Protocol> p) : protocol_(std::move(p)) {}
  std::unique_ptr<Protocol> buildProtocol(const Address&) override { return std::move(protocol_); }

 private:
  std::unique_ptr<Protocol> protocol_;
};
}  // namespace

Deferred<Protocol*> ConnectProtocol(ClientEndpoint& endpoint, std::unique_ptr<Protocol> protocol) {
  auto owned = std::make_unique<OneProtocolFactory>(std::move(protocol));
  Factory* user = owned.get();
  return Connect(endpoint, user, std::move(owned));
}

}  // namespace endpoints_internal
}  // namespace twist
