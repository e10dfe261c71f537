#ifndef TWIST_PROTOCOLS_THROTTLING_H_
#define TWIST_PROTOCOLS_THROTTLING_H_

#include <cstdint>
#include <limits>
#include <memory>

#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/time/time.h"
#include "framework/delayed_call.h"
#include "framework/protocol.h"
#include "framework/reactor_time.h"
#include "protocols/policies.h"

namespace twist {

/// Limits the bandwidth and the number of connections of the protocols of
/// another factory (Twisted's policies.ThrottlingFactory):
///
///   ThrottlingFactory throttled(reactor, echo.get(), /*max_connection_count=*/100,
///                               /*read_limit=*/64 * 1024, /*write_limit=*/64 * 1024);
///   reactor->listenTCP(8000, &throttled);
///
/// The limits are bytes per second for all of this factory's connections
/// together, as in Twisted. Every second it compares what was read (and
/// written) with the limit; over it, every connection stops reading (its
/// transport is paused) until the excess has been paid for at the limit's
/// rate, and likewise every producer registered for writing is paused.
/// Unlike Twisted (docs/design.md says why): reading or writing is also
/// paused as soon as the second's allowance is spent, not only when the
/// second ends; a second that starts inside a pause allows only its
/// unpaused part; lifting the throttle never resumes what the protocol or
/// the transport itself paused; and reconnecting does not clear an excess.
/// So the rate holds within one second's allowance plus one read, whatever
/// the sender's speed.
///
/// As in Twisted, writes are throttled only through a producer: a protocol
/// that writes without one (or a pull producer, which is just not asked for
/// more) is counted but never stopped. Echo is its transport's producer, so
/// its writes are throttled by pausing its reads.
///
/// A connection over `max_connection_count` is refused: buildProtocol
/// returns nullptr and the reactor closes it at once. Needs only time (a
/// Reactor, or task::Clock in tests). The factory must outlive its
/// connections; the wrapped factory must outlive it.
class ThrottlingFactory : public WrappingFactory {
 public:
  static constexpr int64_t kNoLimit = std::numeric_limits<int64_t>::max();

  ThrottlingFactory(ReactorTime* reactor, Factory* wrapped,
                    int max_connection_count = std::numeric_limits<int>::max(),
                    int64_t read_limit = kNoLimit, int64_t write_limit = kNoLimit);
  ~ThrottlingFactory() override;

  std::unique_ptr<Protocol> buildProtocol(const Address& addr) override;

  /// Connections built and not yet lost.
  int connectionCount() const { return connection_count_; }
  /// Connections refused for being over max_connection_count.
  int refusedCount() const { return refused_; }
  /// Whether reading (writing) is throttled at the moment.
  bool readsThrottled() const { return reads_.throttled; }
  bool writesThrottled() const { return writes_.throttled; }

 private:
  class ThrottlingProtocol;
  // One direction's accounting: bytes counted since the last check, and
  // `due`, when the bytes let through so far would have passed at `limit`.
  struct Meter {
    int64_t limit;
    int64_t this_second = 0;
    int64_t allowance = kNoLimit;  // what this second may still let through
    absl::Time due = absl::InfinitePast();
    absl::Time last_check;
    bool throttled = false;
    DelayedCall check;       // every second while there are connections
    DelayedCall unthrottle;  // at `due`, while throttled
    bool limited() const { return limit != kNoLimit; }
  };

  void startChecks();
  void stopChecks();
  void check(Meter& m);
  // `m` let `bytes` through; throttles once the second's allowance is spent.
  void count(Meter& m, size_t bytes) {
    m.this_second += static_cast<int64_t>(bytes);
    if (m.this_second > m.allowance && !m.throttled) setThrottled(m, true);
  }
  // What may pass between `now` and the next check, `due` permitting.
  static int64_t allowance(const Meter& m, absl::Time now);
  void setThrottled(Meter& m, bool throttled);
  // Calls `fn` on each live protocol, skipping one lost meanwhile.
  void forEachProtocol(absl::FunctionRef<void(ThrottlingProtocol*)> fn);

  ReactorTime* reactor_;
  int max_connection_count_;
  int connection_count_ = 0;
  int refused_ = 0;
  Meter reads_;
  Meter writes_;
  absl::flat_hash_set<ThrottlingProtocol*> protocols_;  // connected, not lost
};

}  // namespace twist

#endif  // TWIST_PROTOCOLS_THROTTLING_H_
