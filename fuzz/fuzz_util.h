#ifndef TWIST_FUZZ_FUZZ_UTIL_H_
#define TWIST_FUZZ_FUZZ_UTIL_H_

// What the fuzz targets share: reading decisions from the fuzzer's input,
// and failing loudly. Each target's FuzzOne() is called both by libFuzzer
// (tools/fuzz.sh) and by //fuzz:fuzz_test, so a violated invariant aborts
// instead of returning: libFuzzer saves the input, and the test dies.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"

namespace twist {
namespace fuzz {

/// Consumes the fuzzer's input from the front; past its end every read
/// gives zeros and empty strings, so any input is a valid program.
class Input {
 public:
  Input(const uint8_t* data, size_t size)
      : data_(reinterpret_cast<const char*>(data), size) {}

  bool empty() const { return data_.empty(); }
  uint8_t byte() {
    if (data_.empty()) return 0;
    const uint8_t b = static_cast<uint8_t>(data_[0]);
    data_.remove_prefix(1);
    return b;
  }
  uint16_t u16() { return static_cast<uint16_t>(byte() << 8 | byte()); }
  /// Up to n bytes (fewer at the end of the input).
  absl::string_view bytes(size_t n) {
    absl::string_view out = data_.substr(0, n);
    data_.remove_prefix(out.size());
    return out;
  }

 private:
  absl::string_view data_;
};

[[noreturn]] inline void Fail(const char* target, const std::string& what) {
  std::fprintf(stderr, "twist fuzz %s: invariant violated: %s\n", target, what.c_str());
  std::abort();
}

/// Escaped and cut short, for failure messages.
inline std::string Show(absl::string_view s) {
  std::string out = absl::CHexEscape(s.substr(0, 200));
  if (s.size() > 200) out += "...";
  return out;
}

}  // namespace fuzz
}  // namespace twist

#define TWIST_FUZZ_CHECK(target, cond, what) \
  do {                                       \
    if (!(cond)) ::twist::fuzz::Fail(target, std::string(#cond) + ": " + (what)); \
  } while (0)

#endif  // TWIST_FUZZ_FUZZ_UTIL_H_
