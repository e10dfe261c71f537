#include "framework/output_buffer.h"

namespace twist {

OutputBuffer::~OutputBuffer() = default;

void OutputBuffer::append(absl::string_view data) {
  if (data.empty()) return;
  if (q_ == nullptr) q_ = std::make_unique<Queue>();
  Queue& q = *q_;
  q.size += data.size();
  if (q.chunks.size() > q.head && q.chunks.back().size() < kCoalesceLimit &&
      data.size() < kCoalesceLimit) {
    q.chunks.back().append(data.data(), data.size());
    return;
  }
  q.chunks.emplace_back(data.data(), data.size());
}

int OutputBuffer::peek(iovec* iov, int max) const {
  if (q_ == nullptr) return 0;
  const Queue& q = *q_;
  int n = 0;
  for (size_t i = q.head; i < q.chunks.size() && n < max; ++i, ++n) {
    size_t skip = (i == q.head) ? q.head_offset : 0;
    iov[n].iov_base = const_cast<char*>(q.chunks[i].data()) + skip;
    iov[n].iov_len = q.chunks[i].size() - skip;
  }
  return n;
}

void OutputBuffer::consume(size_t n) {
  if (q_ == nullptr) return;
  Queue& q = *q_;
  q.size -= n;
  while (n > 0) {
    size_t left = q.chunks[q.head].size() - q.head_offset;
    if (n < left) {
      q.head_offset += n;
      return;
    }
    n -= left;
    q.chunks[q.head].clear();
    q.chunks[q.head].shrink_to_fit();
    ++q.head;
    q.head_offset = 0;
  }
  if (q.size == 0) {
    clear();
  } else if (q.head > 32 && q.head * 2 > q.chunks.size()) {
    // Keep the vector from growing without bound under a steady backlog.
    q.chunks.erase(q.chunks.begin(), q.chunks.begin() + q.head);
    q.head = 0;
  }
}

void OutputBuffer::clear() { q_.reset(); }

}  // namespace twist
