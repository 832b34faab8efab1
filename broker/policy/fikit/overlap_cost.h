// What an overlap with LP work actually costs an HP tenant, learned per LP kernel key from its
// requests (issue 15). Risk admission (risk.h) predicts the damage of a budget grant with the
// substrate's prior (overlap_cost_mps / overlap_cost_ts x expected overlap, plus the switch on
// time-slicing); this keeps, per LP key, the HP time that grants of the key were predicted to
// cost and the time the HP's requests that followed them really lost (latency over the kind's
// alone p50, less the same excess of requests that no LP work overlapped: the baseline), and
// scales the prior by their ratio:
//   multiplier(key) = (W + lost) / (W + predicted)
// with W = kPriorWeightNs of predicted damage at ratio 1, so that a key starts at the prior and
// moves as evidence comes. Every policy state serves one scheduling domain (one GPU, one
// substrate), so the estimate is per key and substrate. Fixed-size: no allocation per request.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace fikit::broker::fikit_policy {

class OverlapCosts {
 public:
  static constexpr size_t kKeys = 64;     // LP keys learned per HP tenant; beyond: one shared
  static constexpr size_t kPending = 16;  // budget grants attributed to one request at most
  static constexpr double kPriorWeightNs = 500'000;
  static constexpr double kMinMultiplier = 1.0 / 8, kMaxMultiplier = 8;

  // The prior's multiplier for LP key `key`: 1 until it is learned.
  double multiplier(uint64_t key) const;
  // A budget grant of `key` was predicted to cost this HP `predicted_ns` (with the prior): it
  // is charged to the HP's next request.
  void on_grant(uint64_t key, double predicted_ns);
  // An HP request ended `excess_ns` over its kind's alone p50 (negative if faster); overlapped:
  // LP work was in flight during it. Attribute it to the grants pending, then forget them.
  void on_request(double excess_ns, bool overlapped, double alone_p50_ns);
  // A request that teaches nothing (warm-up, unknown kind): forget the pending grants.
  void drop_pending() { pending_n_ = 0; }

  double baseline_ns() const { return baseline_ns_; }
  uint32_t learned_keys() const { return static_cast<uint32_t>(n_); }

 private:
  struct Entry {
    uint64_t key = 0;
    double lost_ns = 0;
    double predicted_ns = 0;
  };
  Entry* find(uint64_t key);
  const Entry* find(uint64_t key) const;
  Entry& slot(uint64_t key);

  std::array<Entry, kKeys> entries_{};
  size_t n_ = 0;
  Entry shared_{};  // the keys beyond kKeys, together
  std::array<Entry, kPending> pending_{};
  size_t pending_n_ = 0;
  double baseline_ns_ = 0;
  bool baseline_known_ = false;
};

}  // namespace fikit::broker::fikit_policy
