// Online HP request latency. A request of an HP tenant runs from its first launch after a drain
// (the record's client time) to the drain that follows (the time the broker saw it complete:
// the drain's host time or the marker's), as the policy sees them through on_submit and on_idle.
// The meter keeps the latest kWindow latencies (for status and the controller's quantiles) and
// whether LP work was in flight at any time during the current request: a request without is
// as the tenant runs alone (its latency teaches the alone latency).
#pragma once

#include <array>
#include <cstdint>

namespace fikit::broker::fikit_policy {

// The latest N samples (ns) and their quantiles, without allocating.
template <uint32_t N>
class SampleWindow {
 public:
  void add(uint64_t v) {
    ring_[next_++ % N] = v;
    if (size_ < N) size_++;
  }
  uint32_t size() const { return size_; }
  void clear() { size_ = next_ = 0; }
  // The q-quantile (nearest rank) of the samples held; 0 if none. Sorts a copy on the stack.
  uint64_t quantile(double q) const;

 private:
  std::array<uint64_t, N> ring_{};
  uint32_t size_ = 0;
  uint32_t next_ = 0;
};

class RequestMeter {
 public:
  static constexpr uint32_t kWindow = 256;
  // Every request ever, by latency (Prometheus histogram buckets; upper bounds in us, the last
  // bucket beyond the last bound).
  static constexpr std::array<uint64_t, 12> kBoundsUs = {
      100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000};
  const std::array<uint64_t, kBoundsUs.size() + 1>& buckets() const { return buckets_; }
  uint64_t sum_ns() const { return sum_ns_; }

  // The tenant submitted kernel `key` at t_ns (a record's client time); lp_busy: LP work is in
  // flight now.
  void on_submit(uint64_t t_ns, bool lp_busy, uint64_t key = 0);
  // LP work was granted while the tenant may be in a request.
  void on_lp_granted() { overlapped_ |= open_; }
  // The tenant drained at t_ns. Return true with the request's latency in *latency_ns and
  // whether LP work overlapped it in *overlapped, if a request was open.
  bool on_drain(uint64_t t_ns, uint64_t* latency_ns, bool* overlapped);
  // The kind of the request that ended last: its first kernel key and its number of launches (up
  // to 64), hashed. Requests of one kind do the same work: each is compared with the alone
  // latency of its kind, so that a tenant whose requests are of several sizes (one kernel
  // between two syncs, or ten) has a slowdown that does not flip between their modes.
  uint64_t last_kind() const { return kind_; }

  bool open() const { return open_; }
  uint64_t open_since_ns() const { return start_ns_; }
  uint64_t count() const { return count_; }
  uint64_t last_end_ns() const { return last_end_ns_; }
  const SampleWindow<kWindow>& recent() const { return recent_; }
  // The 5% quantile of the recent latencies (0 before kLowMinSamples): a request is predicted
  // to last at least this long (the scheduler sleeps until near then). Updated at each request.
  static constexpr uint32_t kLowMinSamples = 16;
  uint64_t low_latency_ns() const { return low_ns_; }
  // The fastest request so far (0: none yet).
  uint64_t fastest_ns() const { return fastest_ns_; }

 private:
  bool open_ = false;
  bool overlapped_ = false;
  uint64_t first_key_ = 0;
  uint32_t launches_ = 0;
  uint64_t kind_ = 0;
  uint64_t start_ns_ = 0;
  uint64_t count_ = 0;
  uint64_t last_end_ns_ = 0;
  uint64_t low_ns_ = 0;
  uint64_t fastest_ns_ = 0;
  std::array<uint64_t, kBoundsUs.size() + 1> buckets_{};
  uint64_t sum_ns_ = 0;
  SampleWindow<kWindow> recent_;
};

}  // namespace fikit::broker::fikit_policy
