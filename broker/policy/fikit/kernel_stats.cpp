// Kernel statistics table with a least-recently-used cap.
#include "policy/fikit/kernel_stats.h"

#include <utility>

namespace fikit::broker::fikit_policy {

LogHistogram& KeyStats::gaps_mut() {
  if (!gaps) gaps = std::make_unique<LogHistogram>(duration.window());
  return *gaps;
}

KeyStats& KernelTable::touch(uint64_t key) {
  auto it = index_.find(key);
  if (it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return lru_.front();
  }
  if (index_.size() >= max_keys_) {
    index_.erase(lru_.back().key);
    lru_.pop_back();
    evictions_++;
  }
  lru_.emplace_front(key, window_);
  index_.emplace(key, lru_.begin());
  return lru_.front();
}

KeyStats* KernelTable::find(uint64_t key) {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &*it->second;
}

const KeyStats* KernelTable::find(uint64_t key) const {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &*it->second;
}

void KernelTable::clear() {
  index_.clear();
  lru_.clear();
}

void KernelTable::swap(KernelTable& other) {
  std::swap(max_keys_, other.max_keys_);
  std::swap(window_, other.window_);
  std::swap(evictions_, other.evictions_);
  lru_.swap(other.lru_);
  index_.swap(other.index_);
}

}  // namespace fikit::broker::fikit_policy
