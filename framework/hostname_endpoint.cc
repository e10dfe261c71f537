#include "framework/hostname_endpoint.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "framework/client_factory.h"
#include "framework/errors.h"
#include "framework/reactor.h"
#include "framework/tcp_connector.h"

namespace twist {

// ---------------------------------------------------------------------------
// HappyEyeballs

HappyEyeballs::HappyEyeballs(ReactorTime* time, absl::Duration attempt_delay, Hooks hooks)
    : time_(time), attempt_delay_(attempt_delay), hooks_(std::move(hooks)) {}

HappyEyeballs::~HappyEyeballs() { stagger_.cancel().IgnoreError(); }

std::vector<Address> HappyEyeballs::Interleave(std::vector<Address> addresses) {
  if (addresses.empty()) return addresses;
  const int first = addresses.front().family();
  std::vector<Address> same, other;
  for (Address& a : addresses) {
    std::vector<Address>& family = a.family() == first ? same : other;
    // A repeat would be a second attempt to the same place.
    if (std::find(family.begin(), family.end(), a) == family.end()) family.push_back(a);
  }
  std::vector<Address> order;
  order.reserve(addresses.size());
  for (size_t i = 0; i < same.size() || i < other.size(); ++i) {
    if (i < same.size()) order.push_back(same[i]);
    if (i < other.size()) order.push_back(other[i]);
  }
  return order;
}

void HappyEyeballs::start(std::vector<Address> addresses) {
  order_ = Interleave(std::move(addresses));
  running_.assign(order_.size(), false);
  if (order_.empty()) {
    finish(absl::NotFoundError("no address to connect to"));
    return;
  }
  startNext();
}

void HappyEyeballs::startNext() {
  stagger_.cancel().IgnoreError();
  if (finished_ || next_ >= order_.size()) return;
  const size_t index = next_++;
  running_[index] = true;
  ++running_count_;
  if (next_ < order_.size()) {
    // The next address gets its turn after the delay unless this one
    // succeeds (or fails, which starts it at once) first.
    stagger_ = time_->callLater(attempt_delay_, [this] { startNext(); });
  }
  hooks_.start(index, order_[index]);
}

bool HappyEyeballs::succeeded(size_t index) {
  if (finished_ || index >= running_.size() || !running_[index]) return false;
  running_[index] = false;
  --running_count_;
  finish(index);
  return true;
}

void HappyEyeballs::failed(size_t index, absl::Status reason) {
  if (finished_ || index >= running_.size() || !running_[index]) return;
  running_[index] = false;
  --running_count_;
  last_failure_ = std::move(reason);
  if (next_ < order_.size()) {
    // A failure starts the next address at once instead of waiting out
    // the stagger (as Python's asyncio staggered_race does; Twisted waits
    // for its next tick), whether or not others are still running.
    startNext();
    return;
  }
  if (running_count_ == 0) finish(last_failure_);
}

void HappyEyeballs::abort(absl::Status reason) {
  if (finished_) return;
  finish(std::move(reason));
}

void HappyEyeballs::finish(absl::StatusOr<size_t> result) {
  finished_ = true;
  stagger_.cancel().IgnoreError();
  // Losers are cancelled before done() hears, so that done() sees a race
  // that is over.
  for (size_t i = 0; i < running_.size(); ++i) {
    if (!running_[i]) continue;
    running_[i] = false;
    --running_count_;
    hooks_.cancel(i);
  }
  hooks_.done(std::move(result));
}

// ---------------------------------------------------------------------------
// HostnameEndpoint

// One connect(): resolves, races the addresses through connectors of its
// own (it is their ClientFactory), and passes on to the user's factory what
// the user must hear. It owns itself, and goes once the user has heard how
// the attempt ended and none of its connectors will call it again. A
// connector still calls its factory's doStop() after the last callback,
// and lives until the end of that loop iteration: so the attempt is
// deleted by a call on the next turn, whose closure owns it (dropped
// unrun, it deletes the attempt all the same when the reactor goes).
class HostnameEndpoint::Attempt final : public ClientFactory {
 public:
  Attempt(HostnameEndpoint* endpoint, ClientFactory* user)
      : reactor_(endpoint->reactor_),
        host_(endpoint->host_),
        port_(endpoint->port_),
        timeout_(endpoint->timeout_),
        bind_(endpoint->bind_address_),
        destination_(endpoint->describe()),
        user_(user),
        race_(reactor_, endpoint->attempt_delay_,
              HappyEyeballs::Hooks{
                  [this](size_t i, const Address& a) { startLeg(i, a); },
                  [this](size_t i) { cancelLeg(i); },
                  [this](absl::StatusOr<size_t> w) { raceOver(std::move(w)); },
              }) {}

  void begin() {
    if (ClientFactory* u = user_.get()) u->doStart();
    absl::StatusOr<Address> numeric = Address::Parse(host_, port_);
    if (numeric.ok()) {
      race_.start({*numeric});
      return;
    }
    if (timeout_ > absl::ZeroDuration() && timeout_ != absl::InfiniteDuration()) {
      resolve_timeout_ = reactor_->callLater(timeout_, [this] {
        if (pending_tell_) {  // cancelled: say so now (a later turn)
          deliverPendingTell();
          maybeFinish();
          return;
        }
        reactor_->cancelResolve(resolve_id_);
        resolving_ = false;
        endWithoutLegs(ConnectTimeoutError(destination_, timeout_));
      });
    }
    resolving_ = true;
    resolve_id_ = reactor_->resolve(
        host_, port_, [this](absl::StatusOr<std::vector<Address>> addresses) {
          resolving_ = false;
          resolve_timeout_.cancel().IgnoreError();
          if (pending_tell_) {
            deliverPendingTell();  // cancelled: the answer is not wanted
            maybeFinish();
            return;
          }
          if (!addresses.ok()) {
            endWithoutLegs(absl::IsNotFound(addresses.status()) ||
                                   absl::IsCancelled(addresses.status())
                               ? addresses.status()
                               : DNSLookupError(host_, addresses.status().message()));
          } else if (addresses->empty()) {
            endWithoutLegs(DNSLookupError(host_, "no address"));
          } else {
            race_.start(*std::move(addresses));
          }
        });
  }

  std::weak_ptr<const void> liveness() const { return alive_; }

  // ConnectingAttempt::cancel(): ends the race now (every leg is stopped)
  // and tells the user ConnectCancelled on a later turn. That report rides
  // on a zero-delay call, but also on what the reactor always delivers,
  // even when it is destroyed first: the name's resolution (left running
  // until the report is out) and the stopped legs' failures, whichever
  // comes first. False once the race is over (won, lost or cancelled).
  bool cancel() {
    if (race_.finished()) return false;
    tell_later_ = true;
    race_.abort(ConnectCancelled(destination_));  // done() -> tellFailed()
    tell_later_ = false;
    return true;
  }

  std::unique_ptr<Protocol> buildProtocol(const Address& peer) override {
    // The connector that calls is the running one whose address is `peer`
    // (the race's addresses have no repeats).
    size_t index = legs_.size();
    for (size_t i = 0; i < legs_.size(); ++i) {
      if (legs_[i] != nullptr && race_.order()[i] == peer) index = i;
    }
    if (index == legs_.size() || !race_.succeeded(index)) return nullptr;
    ClientFactory* u = user_.get();
    std::unique_ptr<Protocol> p = u != nullptr ? u->buildProtocol(peer) : nullptr;
    if (p == nullptr) {
      refused_ = true;  // that connector fails; the user hears why
    } else if (p->factory() == nullptr) {
      p->setFactory(user_.raw());  // not this attempt: the user's own factory
    }
    return p;
  }

  void startedConnecting(Connector* c) override {
    if (!told_started_) {
      told_started_ = true;
      if (ClientFactory* u = user_.get()) u->startedConnecting(c);
    }
  }

  void clientConnectionFailed(Connector* c, const absl::Status& reason) override {
    auto it = leg_of_.find(c);
    if (it == leg_of_.end()) return;
    const size_t index = it->second;
    leg_of_.erase(it);
    legs_[index] = nullptr;
    if (index == winner_) {
      // The winner failed after all: its protocol was refused, or no
      // transport could be made for it.
      tellFailed(c, refused_ ? NoProtocol(destination_) : reason);
    } else if (index < cancelled_.size() && cancelled_[index]) {
      // A loser we stopped: nothing to say, unless the whole attempt was
      // cancelled and the user is still to hear.
      deliverPendingTell();
    } else if (absl::IsCancelled(reason)) {
      // Not cancelled by us: the reactor is stopping, nothing more will
      // connect.
      last_connector_ = c;
      race_.abort(reason);
    } else {
      last_connector_ = c;
      race_.failed(index, reason);
    }
    last_connector_ = nullptr;
    maybeFinish();
  }

  void clientConnectionLost(Connector* c, const absl::Status& reason) override {
    leg_of_.erase(c);
    if (ClientFactory* u = user_.get()) u->clientConnectionLost(c, reason);
    maybeFinish();
  }

 private:
  void startLeg(size_t index, const Address& address) {
    if (legs_.size() < race_.order().size()) {
      legs_.resize(race_.order().size(), nullptr);
      cancelled_.resize(race_.order().size(), false);
    }
    Connector* c = reactor_->connectTCP(address.host(), address.port(), this, timeout_, bind_);
    legs_[index] = c;
    leg_of_[c] = index;
  }

  void cancelLeg(size_t index) {
    cancelled_[index] = true;
    if (legs_[index] != nullptr) legs_[index]->stopConnecting().IgnoreError();
  }

  void raceOver(absl::StatusOr<size_t> winner) {
    if (winner.ok()) {
      winner_ = *winner;  // the user hears through its protocol
    } else {
      tellFailed(last_connector_, winner.status());
    }
  }

  void tellFailed(Connector* c, const absl::Status& reason) {
    if (told_failed_) return;
    told_failed_ = true;
    if (tell_later_) {  // inside cancel(): not now (see cancel())
      pending_tell_ = true;
      pending_reason_ = reason;
      telling_ = reactor_->callLater(absl::ZeroDuration(), [this] {
        deliverPendingTell();
        maybeFinish();
      });
      return;
    }
    if (ClientFactory* u = user_.get()) u->clientConnectionFailed(c, reason);
  }

  // cancel()'s report, by whichever way comes first; the resolution it
  // kept running is forgotten then.
  void deliverPendingTell() {
    if (!pending_tell_) return;
    pending_tell_ = false;
    telling_.cancel().IgnoreError();
    if (resolving_) {
      reactor_->cancelResolve(resolve_id_);
      resolving_ = false;
      resolve_timeout_.cancel().IgnoreError();
    }
    if (ClientFactory* u = user_.get()) u->clientConnectionFailed(nullptr, pending_reason_);
  }

  // The attempt ended before any connector was started: the name did not
  // resolve in time, or the reactor stopped first.
  void endWithoutLegs(absl::Status reason) {
    race_.abort(std::move(reason));  // done() tells the user
    maybeFinish();
  }

  void maybeFinish() {
    if (finishing_ || !race_.finished() || resolving_ || !leg_of_.empty() || pending_tell_) return;
    finishing_ = true;
    if (ClientFactory* u = user_.get()) u->doStop();
    reactor_->callLater(absl::ZeroDuration(), [owned = std::unique_ptr<Attempt>(this)] {});
  }

  Reactor* reactor_;
  std::string host_;
  int port_;
  absl::Duration timeout_;
  std::optional<Address> bind_;
  std::string destination_;
  FactoryRef<ClientFactory> user_;  // may go before the reactor: not called then
  HappyEyeballs race_;
  std::vector<Connector*> legs_;    // by index in race_.order(); null once over
  std::vector<bool> cancelled_;     // by index: losers we stopped
  absl::flat_hash_map<Connector*, size_t> leg_of_;  // the legs still to end
  size_t winner_ = static_cast<size_t>(-1);
  Connector* last_connector_ = nullptr;  // the one whose failure ends the race
  uint64_t resolve_id_ = 0;
  bool resolving_ = false;
  DelayedCall resolve_timeout_;
  bool told_started_ = false;
  bool told_failed_ = false;
  bool refused_ = false;
  bool finishing_ = false;
  bool tell_later_ = false;   // inside cancel()
  bool pending_tell_ = false;  // cancel()'s report is still to be delivered
  absl::Status pending_reason_;
  DelayedCall telling_;  // one way it goes (see cancel())
  std::shared_ptr<char> alive_ = std::make_shared<char>();  // for ConnectingAttempt
};

HostnameEndpoint::HostnameEndpoint(Reactor* reactor, std::string host, int port,
                                   absl::Duration timeout,
                                   std::optional<Address> bind_address,
                                   absl::Duration attempt_delay)
    : reactor_(reactor),
      host_(std::move(host)),
      port_(port),
      timeout_(timeout),
      bind_address_(std::move(bind_address)),
      attempt_delay_(attempt_delay) {}

absl::StatusOr<ConnectingAttempt> HostnameEndpoint::startConnecting(ClientFactory* factory) {
  if (port_ < 1 || port_ > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("port ", port_, " out of range (1..65535)"));
  }
  auto* attempt = new Attempt(this, factory);
  ConnectingAttempt handle(attempt->liveness(), [attempt] { return attempt->cancel(); });
  attempt->begin();
  return handle;
}

std::string HostnameEndpoint::describe() const {
  return host_.find(':') == std::string::npos ? absl::StrCat("tcp:", host_, ":", port_)
                                              : absl::StrCat("tcp:[", host_, "]:", port_);
}

}  // namespace twist
