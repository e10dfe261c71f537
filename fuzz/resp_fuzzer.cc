// libFuzzer entry point; the target itself is twist::fuzz::resp::FuzzOne.
// Built by tools/fuzz.sh only (clang, -fsanitize=fuzzer).
#include "fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return twist::fuzz::resp::FuzzOne(data, size);
}
