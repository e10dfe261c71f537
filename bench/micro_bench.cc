// Micro-benchmarks of twist's hot paths, with Google Benchmark:
//
//   ./tools/bazel run -c opt //bench:micro_bench
//
// OutputBuffer: what a transport does with bytes the kernel refused.
// TimerQueue: what callLater/cancel/firing cost with many timers pending.
// Line splitting: the inner loop of a line protocol. BM_LineReceiver feeds
// LineReceiver (through a StringTransport) the reads a socket would give;
// BM_LineSplit is the floor to compare it with, a bare find('\n') loop.

#include <sys/uio.h>

#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "framework/clock.h"
#include "framework/delayed_call.h"
#include "framework/output_buffer.h"
#include "framework/string_transport.h"
#include "protocols/basic.h"

namespace twist {
namespace {

// ---- OutputBuffer -----------------------------------------------------------

// Appends `writes` pieces of `size` bytes, then drains them the way a
// transport does: peek into iovecs, consume what a sendmsg() would take.
void BM_OutputBufferAppendConsume(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  const int writes = static_cast<int>(state.range(1));
  const std::string piece(size, 'x');
  OutputBuffer out;
  iovec iov[64];
  for (auto _ : state) {
    for (int i = 0; i < writes; ++i) out.append(piece);
    while (!out.empty()) {
      int n = out.peek(iov, 64);
      size_t total = 0;
      for (int i = 0; i < n; ++i) total += iov[i].iov_len;
      benchmark::DoNotOptimize(iov);
      out.consume(total);
    }
  }
  state.SetBytesProcessed(state.iterations() * size * writes);
}
BENCHMARK(BM_OutputBufferAppendConsume)
    ->Args({64, 1})
    ->Args({64, 16})
    ->Args({1024, 16})
    ->Args({16 * 1024, 4})
    ->Args({64 * 1024, 4});

// A steady backlog: each turn appends one piece and the kernel takes a
// partial amount, as under a slow reader.
void BM_OutputBufferPartialDrain(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  const std::string piece(size, 'x');
  OutputBuffer out;
  for (int i = 0; i < 64; ++i) out.append(piece);
  iovec iov[64];
  for (auto _ : state) {
    out.append(piece);
    int n = out.peek(iov, 64);
    benchmark::DoNotOptimize(n);
    out.consume(size - size / 4 + (out.size() > 128 * size ? size : 0));
  }
  state.SetBytesProcessed(state.iterations() * size);
}
BENCHMARK(BM_OutputBufferPartialDrain)->Arg(64)->Arg(4096);

// ---- TimerQueue -------------------------------------------------------------

// callLater then cancel with `pending` other timers in the queue (an idle
// timeout per connection, reset on every message, is this pattern).
void BM_TimerInsertCancel(benchmark::State& state) {
  FakeClock clock;
  TimerQueue timers(&clock);
  std::vector<DelayedCall> others;
  for (int64_t i = 0; i < state.range(0); ++i) {
    others.push_back(timers.callLater(absl::Seconds(1 + i % 1000), [] {}));
  }
  for (auto _ : state) {
    DelayedCall c = timers.callLater(absl::Milliseconds(500), [] {});
    c.cancel().IgnoreError();
  }
}
BENCHMARK(BM_TimerInsertCancel)->Arg(0)->Arg(1000)->Arg(100000);

// reset() of a pending call: the idle-timeout refresh.
void BM_TimerReset(benchmark::State& state) {
  FakeClock clock;
  TimerQueue timers(&clock);
  std::vector<DelayedCall> others;
  for (int64_t i = 0; i < state.range(0); ++i) {
    others.push_back(timers.callLater(absl::Seconds(1 + i % 1000), [] {}));
  }
  DelayedCall c = timers.callLater(absl::Seconds(30), [] {});
  for (auto _ : state) {
    c.reset(absl::Seconds(30)).IgnoreError();
  }
}
BENCHMARK(BM_TimerReset)->Arg(0)->Arg(100000);

// Schedules `batch` calls, moves the clock past them and fires them all.
void BM_TimerFire(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  FakeClock clock;
  TimerQueue timers(&clock);
  int64_t fired = 0;
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) {
      timers.callLater(absl::Microseconds(i), [&fired] { ++fired; });
    }
    clock.advance(absl::Microseconds(batch));
    timers.runDue([] {});
  }
  if (timers.size() != 0) state.SkipWithError("not every call fired");
  benchmark::DoNotOptimize(fired);
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_TimerFire)->Arg(1)->Arg(100)->Arg(10000);

// ---- Line splitting ---------------------------------------------------------

// Calls `line` for every '\n'-terminated line in `data` (without the
// delimiter) and returns the unterminated rest, which a line receiver keeps
// for the next dataReceived.
absl::string_view SplitLines(absl::string_view data,
                             absl::FunctionRef<void(absl::string_view)> line) {
  while (true) {
    size_t nl = data.find('\n');
    if (nl == absl::string_view::npos) return data;
    line(data.substr(0, nl));
    data.remove_prefix(nl + 1);
  }
}

// A 64 KiB read full of `line_length`-byte lines, cut mid-line as reads are.
std::string ReadOfLines(size_t line_length) {
  std::string data;
  while (data.size() < 64 * 1024) {
    data.append(line_length - 1, 'a');
    data.push_back('\n');
  }
  data.resize(64 * 1024);
  return data;
}

void BM_LineSplit(benchmark::State& state) {
  const size_t line_length = static_cast<size_t>(state.range(0));
  const std::string data = ReadOfLines(line_length);
  int64_t lines = 0;
  for (auto _ : state) {
    absl::string_view rest =
        SplitLines(data, [&lines](absl::string_view l) {
          benchmark::DoNotOptimize(l.data());
          ++lines;
        });
    benchmark::DoNotOptimize(rest);
  }
  state.SetBytesProcessed(state.iterations() * data.size());
  state.counters["lines/s"] =
      benchmark::Counter(static_cast<double>(lines), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LineSplit)->Arg(16)->Arg(80)->Arg(1024);

class CountingLines : public LineReceiver {
 public:
  CountingLines() { setDelimiter("\n"); }
  void lineReceived(absl::string_view line) override {
    benchmark::DoNotOptimize(line.data());
    ++lines;
  }
  int64_t lines = 0;
};

// The same 64 KiB reads through LineReceiver: the partial line at the end of
// each read is kept and completed by the next one, as on a socket.
void BM_LineReceiver(benchmark::State& state) {
  const size_t line_length = static_cast<size_t>(state.range(0));
  const std::string data = ReadOfLines(line_length);
  CountingLines p;
  StringTransport t;
  t.connect(&p);
  for (auto _ : state) t.receive(data);
  state.SetBytesProcessed(state.iterations() * data.size());
  state.counters["lines/s"] =
      benchmark::Counter(static_cast<double>(p.lines), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LineReceiver)->Arg(16)->Arg(80)->Arg(1024);

}  // namespace
}  // namespace twist

BENCHMARK_MAIN();
