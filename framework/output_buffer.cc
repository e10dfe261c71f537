#include "framework/output_buffer.h"

namespace twist {

void OutputBuffer::append(absl::string_view data) {
  if (data.empty()) return;
  size_ += data.size();
  if (chunks_.size() > head_ && chunks_.back().size() < kCoalesceLimit &&
      data.size() < kCoalesceLimit) {
    chunks_.back().append(data.data(), data.size());
    return;
  }
  chunks_.emplace_back(data.data(), data.size());
}

int OutputBuffer::peek(iovec* iov, int max) const {
  int n = 0;
  for (size_t i = head_; i < chunks_.size() && n < max; ++i, ++n) {
    size_t skip = (i == head_) ? head_offset_ : 0;
    iov[n].iov_base = const_cast<char*>(chunks_[i].data()) + skip;
    iov[n].iov_len = chunks_[i].size() - skip;
  }
  return n;
}

void OutputBuffer::consume(size_t n) {
  size_ -= n;
  while (n > 0) {
    size_t left = chunks_[head_].size() - head_offset_;
    if (n < left) {
      head_offset_ += n;
      return;
    }
    n -= left;
    chunks_[head_].clear();
    chunks_[head_].shrink_to_fit();
    ++head_;
    head_offset_ = 0;
  }
  if (size_ == 0) {
    clear();
  } else if (head_ > 32 && head_ * 2 > chunks_.size()) {
    // Keep the vector from growing without bound under a steady backlog.
    chunks_.erase(chunks_.begin(), chunks_.begin() + head_);
    head_ = 0;
  }
}

void OutputBuffer::clear() {
  std::vector<std::string>().swap(chunks_);
  head_ = 0;
  head_offset_ = 0;
  size_ = 0;
}

}  // namespace twist
