#ifndef TWIST_FUZZ_TARGETS_H_
#define TWIST_FUZZ_TARGETS_H_

// The fuzz targets. Each FuzzOne() runs one input and aborts on a violated
// invariant; it returns 0 otherwise (libFuzzer's convention).
// tools/fuzz.sh wraps each in a libFuzzer binary (fuzz/<name>_fuzzer.cc);
// //fuzz:fuzz_test feeds them the seed corpus and pseudo-random inputs.

#include <cstddef>
#include <cstdint>

namespace twist {
namespace fuzz {

namespace line { int FuzzOne(const uint8_t* data, size_t size); }
namespace int32 { int FuzzOne(const uint8_t* data, size_t size); }
namespace netstring { int FuzzOne(const uint8_t* data, size_t size); }
namespace chat { int FuzzOne(const uint8_t* data, size_t size); }
namespace http { int FuzzOne(const uint8_t* data, size_t size); }
namespace resp { int FuzzOne(const uint8_t* data, size_t size); }

}  // namespace fuzz
}  // namespace twist

#endif  // TWIST_FUZZ_TARGETS_H_
