// Fifo<T>: a FIFO queue on one vector that allocates nothing until used (std::deque allocates on
// construction, and the scheduler keeps kStreamSlots queues per tenant).
#pragma once

#include <cstddef>
#include <vector>

namespace fikit::broker {

template <typename T>
class Fifo {
 public:
  bool empty() const { return front_ == items_.size(); }
  size_t size() const { return items_.size() - front_; }
  T& front() { return items_[front_]; }
  const T& front() const { return items_[front_]; }
  T& back() { return items_.back(); }
  T& operator[](size_t i) { return items_[front_ + i]; }
  const T& operator[](size_t i) const { return items_[front_ + i]; }
  void push_back(const T& v) { items_.push_back(v); }
  void pop_front() {
    if (++front_ == items_.size()) {
      items_.clear();
      front_ = 0;
    } else if (front_ >= 64 && front_ * 2 >= items_.size()) {
      // Compact once the consumed prefix is at least half: amortised O(1) per element.
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(front_));
      front_ = 0;
    }
  }
  // Remove the element at index i (from the front); O(n), for the rare out-of-order case.
  void erase_at(size_t i) {
    if (i == 0) return pop_front();
    items_.erase(items_.begin() + static_cast<std::ptrdiff_t>(front_ + i));
  }
  // Empty the queue and give its memory back.
  void clear() {
    std::vector<T>().swap(items_);
    front_ = 0;
  }

 private:
  std::vector<T> items_;
  size_t front_ = 0;
};

}  // namespace fikit::broker
