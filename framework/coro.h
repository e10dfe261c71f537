#ifndef TWIST_FRAMEWORK_CORO_H_
#define TWIST_FRAMEWORK_CORO_H_

// C++20 coroutines over Deferred (Twisted's inlineCallbacks / ensureDeferred
// / async def). Only the targets that include this header are compiled as
// C++20 (copts = ["-std=c++20"]); see docs/design.md, "Coroutines".
#if __cplusplus < 202002L
#error "framework/coro.h needs C++20: add copts = [\"-std=c++20\"] to the target (docs/design.md)"
#endif

#include <coroutine>
#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "framework/defer.h"
#include "framework/defer_later.h"
#include "framework/reactor_time.h"

namespace twist {
namespace coro_internal {

// Owns a suspended coroutine frame until it is resumed: destroyed
// unresumed (the Deferred it waited for went away unfired: its source is
// gone, say the reactor), it destroys the frame, so nothing leaks.
class FrameOwner {
 public:
  explicit FrameOwner(std::coroutine_handle<> h) : h_(h) {}
  FrameOwner(FrameOwner&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  FrameOwner& operator=(FrameOwner&&) = delete;
  ~FrameOwner() {
    if (h_) h_.destroy();
  }
  std::coroutine_handle<> release() { return std::exchange(h_, nullptr); }

 private:
  std::coroutine_handle<> h_;
};

// What a Deferred coroutine's cancel() reaches: the Deferred it awaits now,
// and whether the frame is still there. Shared (weakly) with the
// coroutine's Deferred, which may outlive the frame.
struct CancelHook {
  absl::AnyInvocable<void()> cancel_awaited;
  bool frame_alive = true;
};

struct PromiseBase {
  std::shared_ptr<CancelHook> hook = std::make_shared<CancelHook>();
  std::suspend_never initial_suspend() noexcept { return {}; }
  std::suspend_never final_suspend() noexcept { return {}; }
  // twist reports errors as absl::Status; an exception escaping a
  // coroutine is a bug.
  void unhandled_exception() noexcept { std::terminate(); }
};

template <class T>
class DeferredPromise;

// `co_await deferred`: gives the absl::StatusOr<T> the chain holds when it
// gets there, and takes it (the Deferred hands its result on, as to a
// callback of Twisted's inlineCallbacks).
template <class T>
class DeferredAwaiter {
 public:
  explicit DeferredAwaiter(Deferred<T> d) : state_(defer_internal::Access::state(d)) {}

  bool await_ready() const noexcept { return false; }

  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) {
    // Our reference goes: the frame must not keep the Deferred alive, or a
    // Deferred that never fires and the frame it owns would keep each
    // other. Whoever will fire it owns it.
    std::shared_ptr<defer_internal::State<T>> s = std::move(state_);
    if constexpr (std::is_base_of_v<PromiseBase, P>) {
      std::weak_ptr<defer_internal::State<T>> w = s;
      h.promise().hook->cancel_awaited = [w] {
        if (auto st = w.lock()) st->cancel();
      };
      hook_ = h.promise().hook.get();
    }
    s->add([this, owner = FrameOwner(h)](absl::StatusOr<T> r) mutable {
      result_ = std::move(r);
      std::coroutine_handle<> frame = owner.release();
      if (suspended_) frame.resume();  // else: await_suspend returns false
      return defer_internal::Step<T>::Consumed();
    });
    if (result_.has_value()) return false;  // fired already: go straight on
    suspended_ = true;
    return true;  // `s` may be the last reference: the frame may go with it
  }

  absl::StatusOr<T> await_resume() {
    if (hook_ != nullptr) hook_->cancel_awaited = nullptr;
    return std::move(*result_);
  }

 private:
  std::shared_ptr<defer_internal::State<T>> state_;
  std::optional<absl::StatusOr<T>> result_;
  CancelHook* hook_ = nullptr;
  bool suspended_ = false;
};

// The promise of a coroutine that returns Deferred<T>: the Deferred fires
// with what it co_returns (T, absl::StatusOr<T>, or an absl::Status: an
// error, or OK for Deferred<Unit>). It runs at once, up to its first
// suspension, as Twisted's ensureDeferred does.
template <class T>
class DeferredPromise : public PromiseBase {
 public:
  DeferredPromise() : out_(canceller()) {}
  ~DeferredPromise() { hook->frame_alive = false; }

  Deferred<T> get_return_object() { return out_; }

  template <class R>
  void return_value(R&& r) {
    using D = std::decay_t<R>;
    if constexpr (std::is_same_v<D, absl::Status>) {
      if (!r.ok()) {
        out_.errback(std::forward<R>(r)).IgnoreError();
      } else if constexpr (std::is_same_v<T, Unit>) {
        out_.callback(Unit{}).IgnoreError();
      } else {
        out_.errback(defer_internal::MissingValueError()).IgnoreError();
      }
    } else {
      absl::StatusOr<T> v(std::forward<R>(r));
      if (v.ok()) {
        out_.callback(std::move(*v)).IgnoreError();
      } else {
        out_.errback(v.status()).IgnoreError();
      }
    }
  }

 private:
  // Cancelling the coroutine's Deferred cancels what it awaits; it resumes
  // with CancelledError and decides. If it goes on (it recovered, or it
  // waits on something that is not a Deferred), the Deferred waits for what
  // it co_returns, as Twisted's inlineCallbacks chains to a new Deferred:
  // the coroutine's Deferred fires with CancelledError only if it says so.
  typename Deferred<T>::Canceller canceller() {
    return [this, w = std::weak_ptr<CancelHook>(hook)](Deferred<T>& self) {
      std::shared_ptr<CancelHook> h = w.lock();
      if (h == nullptr) return;  // the frame is gone: CancelledError
      if (h->cancel_awaited) h->cancel_awaited();  // may end the coroutine
      if (self.called() || !h->frame_alive) return;
      Deferred<T> rest(canceller());
      out_ = rest;
      defer_internal::Access::state(self)
          ->fire(defer_internal::Step<T>::Wait(defer_internal::Access::state(rest)), "cancel()")
          .IgnoreError();
    };
  }

  Deferred<T> out_;
};

}  // namespace coro_internal

/// `co_await d` in a coroutine: suspends until `d` fires and gives its
/// result as absl::StatusOr<T>. `d` is an rvalue: a call's result, or
/// `std::move(local)`. The frame must not hold the Deferred it waits for:
/// the Deferred owns the suspended frame, so a local handle on it would
/// keep both alive forever if it never fired (see docs/design.md).
template <class T>
coro_internal::DeferredAwaiter<T> operator co_await(Deferred<T>&& d) {
  return coro_internal::DeferredAwaiter<T>(std::move(d));
}
/// Deleted: write `co_await std::move(d)`. A coroutine that kept the
/// Deferred it awaits would be leaked with it if it never fired.
template <class T>
void operator co_await(const Deferred<T>& d) = delete;

/// A Deferred that fires `delay` from now: `co_await sleep(reactor, delay)`.
inline Deferred<Unit> sleep(ReactorTime* clock, absl::Duration delay) {
  return task::deferLater(clock, delay);
}

}  // namespace twist

// A function returning Deferred<T> may be a coroutine (co_await / co_return):
// Twisted's ensureDeferred(coroutine) is just calling it.
template <class T, class... Args>
struct std::coroutine_traits<twist::Deferred<T>, Args...> {
  using promise_type = twist::coro_internal::DeferredPromise<T>;
};

#endif  // TWIST_FRAMEWORK_CORO_H_
