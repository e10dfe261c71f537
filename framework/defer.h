#ifndef TWIST_FRAMEWORK_DEFER_H_
#define TWIST_FRAMEWORK_DEFER_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace twist {

/// The value of a Deferred that carries no value (Python's None): a
/// Deferred<Unit> fires with Unit{} or an error. Callbacks of a
/// Deferred<Unit> may take no argument and may return void or absl::Status.
struct Unit {
  bool operator==(const Unit&) const { return true; }
  bool operator!=(const Unit&) const { return false; }
};

/// The error a cancelled Deferred fires with, unless its canceller fired it
/// (Twisted's CancelledError): CANCELLED.
absl::Status CancelledError();
/// What callback()/errback() return when the Deferred has already fired
/// (Twisted's AlreadyCalledError): FAILED_PRECONDITION, naming both calls.
absl::Status AlreadyCalledError(const char* first, const char* second);
/// The error of a DeferredList with fire_on_one_errback, and of
/// gatherResults (Twisted's FirstError): the failing Deferred's code, with
/// a message "FirstError[#index, original message]".
absl::Status FirstError(const absl::Status& error, size_t index);

template <class T>
class Deferred;

namespace defer_internal {

// Prints "twist: Unhandled error in Deferred: ..." on stderr.
void LogUnhandledError(const absl::Status& error);
// A callback that returned OK where its Deferred needed a value.
absl::Status MissingValueError();
// A callback that returned the Deferred it was added to.
absl::Status SelfChainError();

template <class R>
struct DeferredTraits {
  static constexpr bool kIsDeferred = false;
};
template <class U>
struct DeferredTraits<Deferred<U>> {
  static constexpr bool kIsDeferred = true;
  using Value = U;
};

// The value type a callback's return type R stands for: R, StatusOr<R>,
// Deferred<R>; void and absl::Status stand for Unit.
template <class R>
struct ValueOf {
  using type = R;
};
template <>
struct ValueOf<void> {
  using type = Unit;
};
template <>
struct ValueOf<absl::Status> {
  using type = Unit;
};
template <class U>
struct ValueOf<absl::StatusOr<U>> {
  using type = U;
};
template <class U>
struct ValueOf<Deferred<U>> {
  using type = U;
};

template <class T>
class State;

// Reaches a Deferred's state, for the functions of this file.
struct Access {
  template <class T>
  static const std::shared_ptr<State<T>>& state(const Deferred<T>& d) {
    return d.state_;
  }
};

// What one link of a chain produced: a result, a Deferred to wait for
// (Twisted's chaining), or nothing more (the result was handed on).
template <class T>
struct Step {
  enum Kind { kResult, kWait, kConsumed };
  Kind kind = kResult;
  absl::StatusOr<T> result;
  std::shared_ptr<State<T>> wait;

  static Step Result(absl::StatusOr<T> r) { return Step{kResult, std::move(r), nullptr}; }
  static Step Wait(std::shared_ptr<State<T>> d) {
    return Step{kWait, absl::StatusOr<T>(), std::move(d)};
  }
  static Step Consumed() { return Step{kConsumed, absl::StatusOr<T>(), nullptr}; }
};

// Stands for the side of addCallbacks that was not given: the result goes
// on unchanged (Twisted's passthru).
struct PassOn {};

// Converts what a callback returned into a step of a Deferred<T>'s chain.
template <class T, class R>
Step<T> ToStep(R&& r) {
  using D = std::decay_t<R>;
  if constexpr (DeferredTraits<D>::kIsDeferred) {
    static_assert(std::is_same_v<typename DeferredTraits<D>::Value, T>,
                  "a callback of a Deferred<T> may return a Deferred<T> only");
    return Step<T>::Wait(Access::state(r));
  } else if constexpr (std::is_same_v<D, absl::Status>) {
    if (!r.ok()) return Step<T>::Result(std::forward<R>(r));
    if constexpr (std::is_same_v<T, Unit>) {
      return Step<T>::Result(Unit{});
    } else {
      return Step<T>::Result(MissingValueError());
    }
  } else {
    static_assert(std::is_same_v<typename ValueOf<D>::type, T>,
                  "a callback of a Deferred<T> returns T, absl::StatusOr<T>, "
                  "Deferred<T> or absl::Status; use then() to change the type");
    return Step<T>::Result(absl::StatusOr<T>(std::forward<R>(r)));
  }
}

// Calls a success callback with the value, or with nothing if it takes
// nothing (Deferred<Unit>).
template <class F, class T>
decltype(auto) CallWithValue(F& f, T&& value) {
  if constexpr (std::is_invocable_v<F&, T&&>) {
    return std::invoke(f, std::forward<T>(value));
  } else {
    static_assert(std::is_same_v<std::decay_t<T>, Unit> && std::is_invocable_v<F&>,
                  "the callback cannot take the Deferred's value");
    return std::invoke(f);
  }
}

template <class F, class T>
struct ValueCallResult {
  using type = decltype(CallWithValue(std::declval<F&>(), std::declval<T&&>()));
};

// Runs `call` (which invokes the user's function) and turns its return
// value, or its absence (void), into a step.
template <class T, class Call>
Step<T> RunToStep(Call&& call) {
  using R = decltype(call());
  if constexpr (std::is_void_v<R>) {
    static_assert(std::is_same_v<T, Unit>,
                  "a callback that returns nothing belongs to a Deferred<Unit>");
    call();
    return Step<T>::Result(Unit{});
  } else {
    return ToStep<T>(call());
  }
}

// A Deferred's shared state: its result and the callbacks still to run.
// Owned by the Deferred handles, by whoever will fire it (a timer, a
// connection) and by the chains waiting for it; it refers to what it waits
// for, and to what a then() came from, only weakly, so no cycle keeps an
// unfired chain alive.
template <class T>
class State : public std::enable_shared_from_this<State<T>> {
 public:
  using Link = absl::AnyInvocable<Step<T>(absl::StatusOr<T>)>;
  using Canceller = absl::AnyInvocable<void(Deferred<T>&)>;

  State() = default;
  explicit State(Canceller c) : canceller_(std::move(c)) {}
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  ~State() {
    if (called_ && paused_ == 0 && !consumed_ && !result_.ok()) {
      LogUnhandledError(result_.status());
    }
  }

  absl::Status fire(Step<T> step, const char* how) {
    if (called_) {
      if (suppress_already_called_) {
        // The one call a cancel() without canceller expected.
        suppress_already_called_ = false;
        return absl::OkStatus();
      }
      return AlreadyCalledError(how_, how);
    }
    called_ = true;
    how_ = how;
    auto keep = this->shared_from_this();
    apply(std::move(step));
    run();
    return absl::OkStatus();
  }

  void add(Link link) {
    links_.push_back(std::move(link));
    if (called_) run();
  }

  void cancel() {
    if (!called_) {
      auto keep = this->shared_from_this();
      if (canceller_) {
        Canceller c = std::move(canceller_);
        Deferred<T> self(keep);
        c(self);
      } else {
        suppress_already_called_ = true;
      }
      if (!called_) fire(Step<T>::Result(CancelledError()), "cancel()").IgnoreError();
    } else if (paused_ > 0) {
      // Waiting for another Deferred: cancelling that is what stops us.
      if (std::shared_ptr<State> w = waiting_on_.lock()) w->cancel();
    }
  }

  bool called() const { return called_; }
  bool paused() const { return paused_ > 0; }
  bool consumed() const { return consumed_; }
  // The current result, if the chain has one now (fired, not waiting, not
  // handed on).
  const absl::StatusOr<T>* peek() const {
    return called_ && paused_ == 0 && !consumed_ ? &result_ : nullptr;
  }

 private:
  void apply(Step<T> step) {
    switch (step.kind) {
      case Step<T>::kResult:
        result_ = std::move(step.result);
        return;
      case Step<T>::kConsumed:
        consumed_ = true;
        links_.clear();
        return;
      case Step<T>::kWait:
        if (step.wait.get() == this) {
          result_ = SelfChainError();
          return;
        }
        waiting_on_ = step.wait;
        ++paused_;
        // If it has fired already, this link runs now and resumes us; run()
        // (ours, on the stack) then carries on.
        step.wait->add([self = this->shared_from_this()](absl::StatusOr<T> r) {
          self->resume(std::move(r));
          return Step<T>::Consumed();
        });
        return;
    }
  }

  void resume(absl::StatusOr<T> r) {
    result_ = std::move(r);
    waiting_on_.reset();
    --paused_;
    run();
  }

  void run() {
    if (running_ || paused_ > 0 || consumed_) return;
    auto keep = this->shared_from_this();  // a callback may drop the last handle
    running_ = true;
    while (!links_.empty() && paused_ == 0 && !consumed_) {
      Link link = std::move(links_.front());
      links_.pop_front();
      apply(link(std::move(result_)));
    }
    running_ = false;
  }

  absl::StatusOr<T> result_;
  std::deque<Link> links_;
  Canceller canceller_;
  std::weak_ptr<State> waiting_on_;
  const char* how_ = "";
  int paused_ = 0;
  bool called_ = false;
  bool running_ = false;
  bool consumed_ = false;
  bool suppress_already_called_ = false;
};

}  // namespace defer_internal

/// A result that is not there yet (Twisted's Deferred): a chain of
/// callbacks and errbacks that runs once the result arrives, on the thread
/// that fires it. A Deferred belongs to one reactor thread; nothing in it
/// is locked. It is a handle: copies name the same Deferred.
///
///   Deferred<int> d = fetchCount();
///   d.addCallback([](int n) { return n + 1; })
///    .addErrback([](absl::Status e) -> absl::StatusOr<int> {
///      if (absl::IsNotFound(e)) return 0;  // recover
///      return e;                           // still failing
///    });
///   Deferred<std::string> s = d.then([](int n) { return absl::StrCat(n); });
///
/// Types: in Twisted a callback may return anything. Here addCallback,
/// addErrback, addBoth and addCallbacks keep the type T: their functions
/// return T, absl::StatusOr<T>, absl::Status (an error; OK only for Unit)
/// or a Deferred<T>, which pauses the chain until it fires (chaining).
/// then(f) changes the type: it returns a new Deferred<U> that fires with
/// f's result (U, StatusOr<U>, Deferred<U>, or nothing: Unit), or with the
/// error f was not called for. The Deferred then() was called on hands its
/// result on, as one chained with chainDeferred() does: callbacks added to
/// it later do not run. Cancelling the new Deferred cancels the first.
///
/// Errors are absl::Status (Twisted's Failure); a Deferred that is
/// destroyed holding an error no errback handled prints it once on stderr,
/// as Twisted logs an unhandled error when the Deferred is collected.
template <class T>
class Deferred {
 public:
  static_assert(!defer_internal::DeferredTraits<T>::kIsDeferred,
                "a Deferred's value cannot be a Deferred");
  static_assert(!std::is_same_v<T, absl::Status>, "use Deferred<Unit>");
  static_assert(!std::is_void_v<T>, "use Deferred<Unit>");
  using value_type = T;
  /// Called by cancel() while the Deferred has not fired; it may fire it
  /// (with callback or errback). If it does not, the Deferred fails with
  /// CancelledError().
  using Canceller = absl::AnyInvocable<void(Deferred<T>&)>;

  Deferred() : state_(std::make_shared<defer_internal::State<T>>()) {}
  explicit Deferred(Canceller canceller)
      : state_(std::make_shared<defer_internal::State<T>>(std::move(canceller))) {}

  /// Fires the chain with a value. Only the first callback()/errback()
  /// counts: a second returns AlreadyCalledError (except the one call that a
  /// cancel() without canceller swallows, as in Twisted).
  absl::Status callback(T value) {
    return state_->fire(Step::Result(std::move(value)), "callback()");
  }
  /// Fires the chain with an error; `error` must not be OK
  /// (InvalidArgument, and nothing fires).
  absl::Status errback(absl::Status error) {
    if (error.ok()) {
      return absl::InvalidArgumentError("errback() needs an error, not OK");
    }
    return state_->fire(Step::Result(std::move(error)), "errback()");
  }
  /// Cancels (Twisted's cancel): if the Deferred has not fired, runs the
  /// canceller and, unless that fired it, fails it with CancelledError().
  /// If it is waiting for a Deferred a callback returned, cancels that one.
  /// Otherwise does nothing.
  void cancel() { state_->cancel(); }

  /// callback() or errback() was called.
  bool called() const { return state_->called(); }
  /// Waiting for a Deferred one of its callbacks returned.
  bool paused() const { return state_->paused(); }
  /// The result the chain holds now: null until it fires, while it waits
  /// for another Deferred, and once then()/chainDeferred() handed it on.
  /// For tests (Twisted's successResultOf/failureResultOf).
  const absl::StatusOr<T>* result() const { return state_->peek(); }

  /// Adds a callback, run with the value if the chain holds one when its
  /// turn comes; errors pass it by.
  template <class F>
  Deferred& addCallback(F f) & {
    return addCallbacks(std::move(f), defer_internal::PassOn{});
  }
  template <class F>
  Deferred addCallback(F f) && {
    addCallback(std::move(f));
    return std::move(*this);
  }

  /// Adds an errback, run with the error if the chain holds one when its
  /// turn comes: returning a value recovers, returning an error goes on
  /// failing.
  template <class F>
  Deferred& addErrback(F f) & {
    return addCallbacks(defer_internal::PassOn{}, std::move(f));
  }
  template <class F>
  Deferred addErrback(F f) && {
    addErrback(std::move(f));
    return std::move(*this);
  }

  /// Adds a function run with whatever the chain holds (Twisted's addBoth):
  /// it takes an absl::StatusOr<T>.
  template <class F>
  Deferred& addBoth(F f) & {
    state_->add([f = std::move(f)](absl::StatusOr<T> r) mutable -> Step {
      return defer_internal::RunToStep<T>(
          [&]() -> decltype(auto) { return std::invoke(f, std::move(r)); });
    });
    return *this;
  }
  template <class F>
  Deferred addBoth(F f) && {
    addBoth(std::move(f));
    return std::move(*this);
  }

  /// Adds a callback and an errback at the same level (Twisted's
  /// addCallbacks): the errback does not see an error the callback returns.
  /// addCallback and addErrback are this with the other side passing the
  /// result on, as in Twisted.
  template <class F, class G>
  Deferred& addCallbacks(F f, G g) & {
    using defer_internal::PassOn;
    state_->add([f = std::move(f), g = std::move(g)](absl::StatusOr<T> r) mutable -> Step {
      if (r.ok()) {
        if constexpr (std::is_same_v<F, PassOn>) {
          return Step::Result(std::move(r));
        } else {
          return defer_internal::RunToStep<T>([&]() -> decltype(auto) {
            return defer_internal::CallWithValue(f, std::move(*r));
          });
        }
      }
      if constexpr (std::is_same_v<G, PassOn>) {
        return Step::Result(std::move(r));
      } else {
        return defer_internal::RunToStep<T>(
            [&]() -> decltype(auto) { return std::invoke(g, r.status()); });
      }
    });
    return *this;
  }
  template <class F, class G>
  Deferred addCallbacks(F f, G g) && {
    addCallbacks(std::move(f), std::move(g));
    return std::move(*this);
  }

  /// A Deferred of f's result type, fired with f(value) when this one's
  /// chain gets there with a value, or with the error otherwise (see the
  /// class comment). f returns U, absl::StatusOr<U>, Deferred<U>, void or
  /// absl::Status (the last two: Deferred<Unit>).
  template <class F>
  auto then(F f) {
    using R = typename defer_internal::ValueCallResult<F, T>::type;
    using U = typename defer_internal::ValueOf<std::decay_t<R>>::type;
    std::weak_ptr<defer_internal::State<T>> up = state_;
    Deferred<U> next([up](Deferred<U>&) {
      if (auto s = up.lock()) s->cancel();
    });
    state_->add([f = std::move(f), next](absl::StatusOr<T> r) mutable -> Step {
      if (!next.called()) {  // not if it was cancelled meanwhile
        if (r.ok()) {
          next.fireStep(defer_internal::RunToStep<U>([&]() -> decltype(auto) {
            return defer_internal::CallWithValue(f, std::move(*r));
          }));
        } else {
          next.fireStep(defer_internal::Step<U>::Result(r.status()));
        }
      }
      return Step::Consumed();
    });
    return next;
  }

  /// Hands this chain's result to `other` (Twisted's chainDeferred): other
  /// fires with it; callbacks added here afterwards do not run.
  void chainDeferred(Deferred<T> other) {
    state_->add([other](absl::StatusOr<T> r) mutable -> Step {
      if (!other.called()) other.fireStep(Step::Result(std::move(r)));
      return Step::Consumed();
    });
  }

 private:
  template <class U>
  friend class Deferred;
  friend class defer_internal::State<T>;
  friend struct defer_internal::Access;
  using Step = defer_internal::Step<T>;

  explicit Deferred(std::shared_ptr<defer_internal::State<T>> s) : state_(std::move(s)) {}
  void fireStep(Step step) { state_->fire(std::move(step), "callback()").IgnoreError(); }

  std::shared_ptr<defer_internal::State<T>> state_;
};

/// A Deferred that has already fired with `value` (Twisted's succeed).
template <class T>
Deferred<std::decay_t<T>> succeed(T&& value) {
  Deferred<std::decay_t<T>> d;
  d.callback(std::forward<T>(value)).IgnoreError();
  return d;
}
inline Deferred<Unit> succeed() { return succeed(Unit{}); }

/// A Deferred that has already failed with `error` (Twisted's fail).
template <class T = Unit>
Deferred<T> fail(absl::Status error) {
  Deferred<T> d;
  d.errback(std::move(error)).IgnoreError();
  return d;
}

struct DeferredListOptions {
  /// Fail with FirstError() as soon as one Deferred fails.
  bool fire_on_one_errback = false;
  /// Take the errors from the listed Deferreds, so that they are not
  /// reported as unhandled; otherwise each failed Deferred keeps its error.
  bool consume_errors = false;
};

/// Waits for every Deferred of `list` (Twisted's DeferredList): fires with
/// one absl::StatusOr<T> per Deferred, in the list's order, when all have
/// fired (at once for an empty list), or fails with FirstError() with
/// fire_on_one_errback. Each listed Deferred hands its value on (callbacks
/// added to it later do not run); its error stays with it unless
/// consume_errors. Cancelling the list cancels every Deferred in it.
/// Twisted's fireOnOneCallback (a result of another type) is not provided.
template <class T>
Deferred<std::vector<absl::StatusOr<T>>> DeferredList(
    std::vector<Deferred<T>> list, DeferredListOptions options = {}) {
  using Results = std::vector<absl::StatusOr<T>>;
  std::vector<std::weak_ptr<defer_internal::State<T>>> weak;
  weak.reserve(list.size());
  for (const Deferred<T>& d : list) weak.push_back(defer_internal::Access::state(d));
  Deferred<Results> out([weak = std::move(weak)](Deferred<Results>&) {
    for (const auto& w : weak) {
      if (auto s = w.lock()) s->cancel();
    }
  });
  if (list.empty()) {
    out.callback(Results()).IgnoreError();
    return out;
  }
  struct Collect {
    std::vector<std::optional<absl::StatusOr<T>>> results;
    size_t finished = 0;
  };
  auto collect = std::make_shared<Collect>();
  collect->results.resize(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    defer_internal::Access::state(list[i])->add(
        [collect, out, i, options](absl::StatusOr<T> r) mutable
        -> defer_internal::Step<T> {
      const bool failed = !r.ok();
      absl::Status error = failed ? r.status() : absl::OkStatus();
      collect->results[i] = std::move(r);
      ++collect->finished;
      if (!out.called()) {
        if (failed && options.fire_on_one_errback) {
          out.errback(FirstError(error, i)).IgnoreError();
        } else if (collect->finished == collect->results.size()) {
          Results all;
          all.reserve(collect->results.size());
          for (auto& x : collect->results) all.push_back(std::move(*x));
          out.callback(std::move(all)).IgnoreError();
        }
      }
      if (failed && !options.consume_errors) {
        return defer_internal::Step<T>::Result(std::move(error));
      }
      return defer_internal::Step<T>::Consumed();
    });
  }
  return out;
}

/// The values of every Deferred of `list`, in order, or the first error as
/// FirstError() (Twisted's gatherResults). With consume_errors the listed
/// Deferreds' errors are not reported as unhandled.
template <class T>
Deferred<std::vector<T>> gatherResults(std::vector<Deferred<T>> list,
                                       bool consume_errors = false) {
  return DeferredList(std::move(list), {/*fire_on_one_errback=*/true, consume_errors})
      .then([](std::vector<absl::StatusOr<T>> results) {
        std::vector<T> values;
        values.reserve(results.size());
        for (auto& r : results) values.push_back(std::move(*r));
        return values;
      });
}

}  // namespace twist

#endif  // TWIST_FRAMEWORK_DEFER_H_
