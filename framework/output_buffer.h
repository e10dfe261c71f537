#ifndef TWIST_FRAMEWORK_OUTPUT_BUFFER_H_
#define TWIST_FRAMEWORK_OUTPUT_BUFFER_H_

#include <sys/uio.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace twist {

/// Bytes accepted by Transport::write but not yet taken by the kernel, in
/// order. A list of chunks, not one contiguous buffer, so appending never
/// moves what is queued and a large backlog drains without quadratic copying.
/// An empty buffer owns no memory: an idle connection costs nothing here.
class OutputBuffer {
 public:
  OutputBuffer() = default;
  OutputBuffer(OutputBuffer&&) = default;
  OutputBuffer& operator=(OutputBuffer&&) = default;
  ~OutputBuffer();

  bool empty() const { return q_ == nullptr; }
  size_t size() const { return q_ == nullptr ? 0 : q_->size; }

  void append(absl::string_view data);
  /// Fills up to `max` iovecs with the queued bytes, oldest first; returns
  /// how many it filled.
  int peek(iovec* iov, int max) const;
  /// Drops the first n bytes (n <= size()).
  void consume(size_t n);
  /// Drops everything and frees the memory.
  void clear();

 private:
  // Small writes are copied into the last chunk while it is below this, so a
  // burst of tiny writes becomes a few large iovecs.
  static constexpr size_t kCoalesceLimit = 16 * 1024;

  // Allocated only while something is queued: an idle connection's buffer
  // is one null pointer (most connections never queue at all).
  struct Queue {
    std::vector<std::string> chunks;
    size_t head = 0;         // first chunk with unsent bytes
    size_t head_offset = 0;  // bytes of chunks[head] already sent
    size_t size = 0;
  };
  std::unique_ptr<Queue> q_;
};

}  // namespace twist

#endif  // TWIST_FRAMEWORK_OUTPUT_BUFFER_H_
