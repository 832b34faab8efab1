// The broker's file-descriptor budget. Every tenant holds two descriptors in the broker (its
// connection and its pidfd) and every pending connection one, so the broker raises its soft
// RLIMIT_NOFILE to the hard limit at start; the per-uid quotas (quota.h) keep one user from
// using it all. When accept(2) still fails for want of descriptors or memory, AcceptBackoff says
// how long to stop accepting, instead of the loop re-arming a failing accept at once (which spun
// at 278,000 failures a second and as many log lines).
#pragma once

#include <sys/resource.h>

#include <cstdint>

namespace fikit::broker {

// Raise the soft RLIMIT_NOFILE to the hard limit. Return the soft limit now in force, or -errno.
long raise_fd_limit();

// Return true if an accept error means "out of descriptors or memory": back off, do not retry.
bool accept_error_is_exhaustion(int err);

// Exponential back-off for accepting: 10 ms after the first failure, doubling to 1 s while
// failures follow one another, back to the start after a successful accept.
class AcceptBackoff {
 public:
  // An accept failed: return how long to pause.
  uint64_t on_failure() {
    delay_ns_ = delay_ns_ == 0 ? kFirstNs : (delay_ns_ * 2 > kMaxNs ? kMaxNs : delay_ns_ * 2);
    return delay_ns_;
  }
  void on_success() { delay_ns_ = 0; }

 private:
  static constexpr uint64_t kFirstNs = 10'000'000;
  static constexpr uint64_t kMaxNs = 1'000'000'000;
  uint64_t delay_ns_ = 0;
};

}  // namespace fikit::broker
