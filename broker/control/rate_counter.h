// Counts repeated events of one kind (a failed accept, a displaced connection) and says when to
// log them: at most one line a second, carrying how many happened since the last line. A client
// that causes such events in a loop cannot flood the log.
#pragma once

#include <cstdint>

namespace fikit::broker {

class RateCounter {
 public:
  // Count one event at `now_ns`. Return the number to report (events since the last line, this
  // one included) if a line is due now, else 0.
  uint64_t count(uint64_t now_ns) {
    total_++;
    unlogged_++;
    if (last_ns_ != 0 && now_ns - last_ns_ < kPeriodNs) return 0;
    last_ns_ = now_ns;
    uint64_t n = unlogged_;
    unlogged_ = 0;
    return n;
  }
  uint64_t total() const { return total_; }

 private:
  static constexpr uint64_t kPeriodNs = 1'000'000'000;
  uint64_t total_ = 0;
  uint64_t unlogged_ = 0;
  uint64_t last_ns_ = 0;
};

}  // namespace fikit::broker
