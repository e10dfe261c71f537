#include "framework/client_factory.h"

#include <algorithm>

#include "framework/tcp_connector.h"

namespace twist {

std::unique_ptr<Protocol> ReconnectingClientFactory::buildProtocol(
    const Address& addr) {
  resetDelay();
  return ClientFactory::buildProtocol(addr);
}

void ReconnectingClientFactory::startedConnecting(Connector* connector) {
  connector_ = connector;
  connector_alive_ = connector->liveness();
}

void ReconnectingClientFactory::clientConnectionFailed(
    Connector* connector, const absl::Status& reason) {
  retry(connector);
}

void ReconnectingClientFactory::clientConnectionLost(
    Connector* connector, const absl::Status& reason) {
  retry(connector);
}

void ReconnectingClientFactory::retry(Connector* connector) {
  // Not retrying: the connector may be gone once this callback returns.
  connector_ = nullptr;
  if (!continue_trying_) return;
  ++retries_;
  if (maxRetries.has_value() && retries_ > *maxRetries) return;
  absl::Duration d = delay();
  d = std::min(d * factor, maxDelay);
  if (jitter > 0) {
    // Uniform within d*(1±jitter), so that every delay is bounded (Twisted:
    // a normal variate with standard deviation d*jitter).
    const double j = std::min(jitter, 1.0);
    std::uniform_real_distribution<double> spread(1 - j, 1 + j);
    d = d * spread(random_);
  }
  delay_ = d;
  delay_started_ = true;
  // Refused while the reactor stops: then nothing is pending on it.
  if (connector->connectLater(d).ok()) {
    connector_ = connector;
    connector_alive_ = connector->liveness();
  }
}

void ReconnectingClientFactory::resetDelay() {
  delay_started_ = false;
  retries_ = 0;
  continue_trying_ = true;
}

void ReconnectingClientFactory::stopTrying() {
  continue_trying_ = false;
  if (connector_ != nullptr && connector_alive_.expired()) connector_ = nullptr;
  if (connector_ != nullptr) {
    // Cancels a pending retry or an attempt in progress; an established
    // connection is left alone (it is not reconnected when it ends).
    connector_->stopConnecting().IgnoreError();
    if (connector_->state() == Connector::State::kDisconnected) connector_ = nullptr;
  }
}

}  // namespace twist
