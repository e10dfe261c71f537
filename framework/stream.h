#ifndef TWIST_FRAMEWORK_STREAM_H_
#define TWIST_FRAMEWORK_STREAM_H_

// A connection as straight-line coroutine code (the seeds' gevent server in
// C++): read a line or some bytes, write, wait for the write buffer to
// drain, in a loop, instead of callbacks. C++20 (see framework/coro.h).

#include <coroutine>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "framework/coro.h"
#include "framework/defer.h"
#include "framework/endpoints.h"
#include "framework/protocol.h"
#include "framework/transport.h"

namespace twist {

/// The end of the input: what a read gives once the peer closed cleanly and
/// everything it sent has been read (OUT_OF_RANGE, like an EOF).
absl::Status EndOfStream();
inline bool IsEndOfStream(const absl::Status& s) { return absl::IsOutOfRange(s); }

/// One connection, for a coroutine: StreamProtocol hands it to the
/// coroutine as a shared_ptr, so it outlives the connection safely.
///
///   Deferred<Unit> echo(std::shared_ptr<Stream> s) {
///     for (;;) {
///       absl::StatusOr<std::string> data = co_await s->read();
///       if (!data.ok()) co_return absl::OkStatus();   // closed or lost
///       s->write(*data);
///       if (absl::Status d = co_await s->drain(); !d.ok()) co_return d;
///     }
///   }
///
/// One read and one drain at a time (a second concurrent one fails with
/// FAILED_PRECONDITION). After the peer's half-close (its EOF), reads give
/// what is buffered and then EndOfStream(), while writes still go: a
/// StreamProtocol closes the connection when its coroutine is done, so what
/// came before the EOF is answered. When the connection is lost, a pending read or
/// drain resumes with the loss reason (EndOfStream() for a clean close once
/// the input is used up), and every later one fails at once the same way.
/// Input is buffered up to `max_buffered` bytes; beyond that the stream
/// stops reading from the peer until the coroutine reads (backpressure both
/// ways). Every method runs on the reactor's thread.
class Stream {
 public:
  explicit Stream(size_t max_buffered = 64 * 1024) : max_buffered_(max_buffered) {}
  /// A coroutine still waiting here is destroyed (only possible if it
  /// does not hold the stream itself).
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  class Read;
  class ReadView;
  class Drain;

  /// The bytes received and not yet read (at least one), as they came.
  Read read();
  /// The same without a copy: a view of the bytes, valid until the
  /// coroutine's next co_await (bytes that arrive while the coroutine waits
  /// here are handed over where the reactor read them).
  ReadView readView() {
    if (consumed_ != 0) dropConsumed();
    if (want_ != Want::kNone) return ReadView(this, true);
    want_ = Want::kView;
    return ReadView(this, false);
  }
  /// The next line, without its delimiter. A line longer than `max_length`
  /// fails with RESOURCE_EXHAUSTED (and closes the connection).
  Read readLine(absl::string_view delimiter = "\n", size_t max_length = 16384);
  /// Exactly `n` bytes.
  Read readExactly(size_t n);
  /// Waits until the write buffer is back below the transport's low water
  /// mark if it went above the high one; at once otherwise. Gives the loss
  /// reason if the connection goes first.
  Drain drain() { return Drain(this); }

  /// Queued for the peer; ignored once the connection is lost.
  void write(absl::string_view data) {
    if (transport_ != nullptr) transport_->write(data);
  }
  void loseConnection();
  void abortConnection();
  /// Null once the connection is lost.
  Transport* transport() const { return transport_; }
  bool connected() const { return transport_ != nullptr; }

  // For StreamProtocol.
  void attach(Transport* t) { transport_ = t; }
  void received(absl::string_view data) {
    if (reader_ && want_ == Want::kView && in_.empty() && !input_ended_) {
      // The reader waits for exactly this: handed over without a copy.
      direct_ = data;
      has_direct_ = true;
      std::exchange(reader_, nullptr).resume();
      has_direct_ = false;  // dead once the coroutine waits again
      return;
    }
    receivedSlow(data);
  }
  /// The peer shut down its side: reads give what is buffered, then
  /// EndOfStream(); writes still go until the coroutine is done.
  void inputEnded();
  void lost(const absl::Status& reason);
  void writePaused(bool paused);

  /// `co_await stream->read()` etc.: gives absl::StatusOr<std::string>.
  class Read {
   public:
    bool await_ready() { return refused_.has_value() || s_->readReady(); }
    void await_suspend(std::coroutine_handle<> h) { s_->reader_ = h; }
    absl::StatusOr<std::string> await_resume() {
      if (refused_.has_value()) return *refused_;
      return s_->take();
    }

   private:
    friend class Stream;
    Read(Stream* s, std::optional<absl::Status> refused)
        : s_(s), refused_(std::move(refused)) {}
    Stream* s_;
    std::optional<absl::Status> refused_;  // another read is pending
  };
  /// `co_await stream->readView()`: gives absl::StatusOr<absl::string_view>.
  class ReadView {
   public:
    // Inline, and without a Status until one is needed: this is the
    // coroutine echo's per-message path (bench/echo_instructions.py).
    bool await_ready() const {
      return refused_ || s_->has_direct_ || !s_->in_.empty() || s_->input_ended_;
    }
    void await_suspend(std::coroutine_handle<> h) { s_->reader_ = h; }
    absl::StatusOr<absl::string_view> await_resume() {
      if (refused_) return absl::FailedPreconditionError("another read is pending on this stream");
      return s_->takeView();
    }

   private:
    friend class Stream;
    ReadView(Stream* s, bool refused) : s_(s), refused_(refused) {}
    Stream* s_;
    bool refused_;
  };
  /// `co_await stream->drain()`: gives absl::Status.
  class Drain {
   public:
    bool await_ready() const { return !s_->write_paused_ || s_->loss_.has_value(); }
    bool await_suspend(std::coroutine_handle<> h) {
      // Another coroutine waits here already: refused, rather than dropping
      // its handle (it would never resume, and its frame would leak).
      if (s_->drainer_) {
        refused_ = true;
        return false;
      }
      s_->drainer_ = h;
      return true;
    }
    absl::Status await_resume() const {
      if (refused_) return absl::FailedPreconditionError("another drain is pending on this stream");
      return s_->loss_.has_value() ? *s_->loss_ : absl::OkStatus();
    }

   private:
    friend class Stream;
    explicit Drain(Stream* s) : s_(s) {}
    Stream* s_;
    bool refused_ = false;
  };

 private:
  enum class Want { kNone, kSome, kView, kLine, kExactly };

  Read start(Want want, absl::string_view delimiter, size_t n);
  // Whether what the reader wants is there (or will never be).
  bool readReady();
  absl::StatusOr<std::string> take();
  void receivedSlow(absl::string_view data);
  absl::StatusOr<absl::string_view> takeView() {
    want_ = Want::kNone;
    if (has_direct_) {
      has_direct_ = false;
      return direct_;
    }
    return takeBufferedView();
  }
  absl::StatusOr<absl::string_view> takeBufferedView();
  // Forgets the bytes a view handed out (it is dead by now).
  void dropConsumed();
  void resumeReader();
  void setReading(bool on);
  absl::Status readEnd() const { return loss_.has_value() ? *loss_ : EndOfStream(); }

  Transport* transport_ = nullptr;
  const size_t max_buffered_;
  std::string in_;
  size_t scanned_ = 0;  // bytes of in_ already searched for the delimiter
  Want want_ = Want::kNone;
  std::string delimiter_;
  size_t n_ = 0;  // readExactly's count, readLine's maximum
  std::optional<absl::Status> error_;  // the current read failed (too long)
  size_t line_end_ = 0;                // where readReady found the delimiter
  bool line_found_ = false;
  size_t consumed_ = 0;        // prefix of in_ handed out by readView
  absl::string_view direct_;   // bytes handed straight from received()
  bool has_direct_ = false;
  std::optional<absl::Status> loss_;   // the connection is gone
  // No more input will come (the peer's EOF, or the connection is gone):
  // reads then give readEnd() once the buffer is used up.
  bool input_ended_ = false;
  std::coroutine_handle<> reader_;
  std::coroutine_handle<> drainer_;
  bool write_paused_ = false;
  bool reading_paused_ = false;
};

/// The protocol that runs `handler(stream)` (a coroutine returning
/// Deferred<Unit>) for its connection, from connectionMade. When the
/// coroutine's Deferred fires, the connection is closed (cleanly; an error
/// is printed on stderr first). `Factory::forProtocol<StreamProtocol>(h)`
/// serves it.
class StreamProtocol : public Protocol, public HalfCloseableProtocol, public Producer {
 public:
  using Handler = std::function<Deferred<Unit>(std::shared_ptr<Stream>)>;
  explicit StreamProtocol(Handler handler, size_t max_buffered = 64 * 1024)
      : handler_(std::move(handler)), stream_(std::make_shared<Stream>(max_buffered)) {}
  ~StreamProtocol() override;

  void connectionMade() override;
  void dataReceived(absl::string_view data) override;
  // Half-closeable, so that what the coroutine has still to read and answer
  // after the peer's EOF is answered: the connection closes when it is done.
  void readConnectionLost() override { stream_->inputEnded(); }
  void connectionLost(const absl::Status& reason) override;
  void pauseProducing() override { stream_->writePaused(true); }
  void resumeProducing() override { stream_->writePaused(false); }

 private:
  Handler handler_;
  std::shared_ptr<Stream> stream_;
};

/// Connects through `endpoint` and gives the connection as a Stream: the
/// connect awaitable of straight-line client code.
///
///   absl::StatusOr<std::shared_ptr<Stream>> s = co_await connectStream(*endpoint);
///   if (!s.ok()) co_return s.status();   // refused, timed out, cancelled...
///   (*s)->write("hello\n");
///
/// Fails as endpoint.connect() does; cancelling the Deferred (or the
/// coroutine awaiting it) stops the attempt. The connection is closed
/// cleanly, after what is queued, when the last copy of the pointer goes
/// (or at loseConnection()); the Stream itself stays safe to use after.
Deferred<std::shared_ptr<Stream>> connectStream(ClientEndpoint& endpoint,
                                                size_t max_buffered = 64 * 1024);

}  // namespace twist

#endif  // TWIST_FRAMEWORK_STREAM_H_
