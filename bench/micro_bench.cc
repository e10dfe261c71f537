// Micro-benchmarks of twist's hot paths, with Google Benchmark:
//
//   ./tools/bazel run -c opt //bench:micro_bench
//
// OutputBuffer: what a transport does with bytes the kernel refused.
// TimerQueue: what callLater/cancel/firing cost with many timers pending.
// Line splitting: the inner loop of a line protocol. BM_LineReceiver feeds
// LineReceiver (through a StringTransport) the reads a socket would give;
// BM_LineSplit is the floor to compare it with, a bare find('\n') loop.
// BM_*Frame*: one frame of 1 KiB to 1 MiB per receiver, fed one byte per read
// or in one read; per_byte (ns) must not grow with the frame size.
// BM_ChatBroadcast: one chat line from one user to N-1 others in one
// ChatFactory on StringTransports (parse, format, N-1 writes): what the
// single-reactor chat costs per line, to compare across chat changes.

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "framework/clock.h"
#include "framework/delayed_call.h"
#include "framework/output_buffer.h"
#include "framework/string_transport.h"
#include "protocols/basic.h"
#include "protocols/chat.h"

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

// ---- Frames split across reads ----------------------------------------------

// One frame of every framing receiver, `size` bytes in all (framing
// included), fed one byte per read or in one read. The cost per byte must
// not grow with the frame size: a receiver that copied its held frame on
// every read would cost about size/2 bytes of copying per byte here.
class FrameLines : public LineReceiver {
 public:
  void lineReceived(absl::string_view line) override { frames += line.size(); }
  size_t frames = 0;
};
class FrameInt32 : public Int32StringReceiver {
 public:
  void stringReceived(absl::string_view s) override { frames += s.size(); }
  size_t frames = 0;
};
class FrameNetstring : public NetstringReceiver {
 public:
  void stringReceived(absl::string_view s) override { frames += s.size(); }
  size_t frames = 0;
};

std::string LineFrame(size_t size) { return std::string(size - 2, 'a') + "\r\n"; }
std::string Int32Frame(size_t size) {
  const uint32_t n = static_cast<uint32_t>(size - 4);
  std::string out = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                     static_cast<char>(n >> 8), static_cast<char>(n)};
  return out + std::string(n, 'a');
}
std::string NetstringFrame(size_t size) {
  // "LEN:DATA,": find the data length whose frame is exactly `size` bytes.
  size_t n = size - 2;
  while (absl::StrCat(n).size() + n + 2 > size) --n;
  return absl::StrCat(n, ":", std::string(n, 'a'), ",");
}

template <typename Receiver>
void FrameBench(benchmark::State& state, const std::string& frame, bool byte_per_read) {
  Receiver p;
  p.setMaxLength(2 << 20);
  StringTransport t;
  t.connect(&p);
  for (auto _ : state) {
    if (byte_per_read) {
      for (size_t i = 0; i < frame.size(); ++i) t.receive(absl::string_view(&frame[i], 1));
    } else {
      t.receive(frame);
    }
  }
  if (p.frames == 0 || t.disconnecting()) state.SkipWithError("frame not delivered");
  state.SetBytesProcessed(state.iterations() * frame.size());
  // Seconds per byte, shown as e.g. "2.5n" (ns per byte).
  state.counters["per_byte"] = benchmark::Counter(
      static_cast<double>(frame.size()),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

void BM_LineFrameBytewise(benchmark::State& s) {
  FrameBench<FrameLines>(s, LineFrame(s.range(0)), true);
}
void BM_LineFrameOneRead(benchmark::State& s) {
  FrameBench<FrameLines>(s, LineFrame(s.range(0)), false);
}
void BM_Int32FrameBytewise(benchmark::State& s) {
  FrameBench<FrameInt32>(s, Int32Frame(s.range(0)), true);
}
void BM_Int32FrameOneRead(benchmark::State& s) {
  FrameBench<FrameInt32>(s, Int32Frame(s.range(0)), false);
}
void BM_NetstringFrameBytewise(benchmark::State& s) {
  FrameBench<FrameNetstring>(s, NetstringFrame(s.range(0)), true);
}
void BM_NetstringFrameOneRead(benchmark::State& s) {
  FrameBench<FrameNetstring>(s, NetstringFrame(s.range(0)), false);
}
// 1 KiB, 16 KiB, 256 KiB, 1 MiB.
#define TWIST_FRAME_SIZES ->Arg(1 << 10)->Arg(16 << 10)->Arg(256 << 10)->Arg(1 << 20)
BENCHMARK(BM_LineFrameBytewise) TWIST_FRAME_SIZES;
BENCHMARK(BM_LineFrameOneRead) TWIST_FRAME_SIZES;
BENCHMARK(BM_Int32FrameBytewise) TWIST_FRAME_SIZES;
BENCHMARK(BM_Int32FrameOneRead) TWIST_FRAME_SIZES;
BENCHMARK(BM_NetstringFrameBytewise) TWIST_FRAME_SIZES;
BENCHMARK(BM_NetstringFrameOneRead) TWIST_FRAME_SIZES;
#undef TWIST_FRAME_SIZES

// ---- Chat -------------------------------------------------------------------

void BM_ChatBroadcast(benchmark::State& state) {
  const int users = static_cast<int>(state.range(0));
  ChatFactory room;
  std::vector<std::unique_ptr<Protocol>> protocols;
  std::vector<std::unique_ptr<StringTransport>> transports;
  for (int i = 0; i < users; ++i) {
    protocols.push_back(room.buildProtocol(Address()));
    transports.push_back(std::make_unique<StringTransport>());
    transports.back()->connect(protocols.back().get());
    transports.back()->receive(absl::StrCat("user", i, "\n"));
  }
  int64_t lines = 0;
  for (auto _ : state) {
    transports[0]->receive("hello everyone, how is it going?\n");
    if (++lines % 64 == 0) {
      for (auto& t : transports) t->clear();
    }
  }
  state.counters["lines/s"] =
      benchmark::Counter(static_cast<double>(lines), benchmark::Counter::kIsRate);
  for (auto& t : transports) t->disconnect();
}
BENCHMARK(BM_ChatBroadcast)->Arg(2)->Arg(10)->Arg(100);
// Fixed counts for callgrind (instructions are repeatable where seconds are
// not): the difference between the two runs, divided by 10000, is one
// line's instructions without the set-up.
void BM_ChatBroadcast10k(benchmark::State& s) { BM_ChatBroadcast(s); }
void BM_ChatBroadcast20k(benchmark::State& s) { BM_ChatBroadcast(s); }
BENCHMARK(BM_ChatBroadcast10k)->Arg(10)->Arg(100)->Iterations(10000);
BENCHMARK(BM_ChatBroadcast20k)->Arg(10)->Arg(100)->Iterations(20000);

}  // namespace
}  // namespace twist

BENCHMARK_MAIN();
