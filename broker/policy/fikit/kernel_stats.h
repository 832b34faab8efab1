// Per-tenant kernel statistics: for each kernel key its duration distribution, the idle-gap
// distribution after it, and how well its gaps were predicted. At most `max_keys` keys are kept;
// the least recently used key is dropped first.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <unordered_map>

#include "policy/fikit/log_histogram.h"

namespace fikit::broker::fikit_policy {

inline constexpr double kOverrunWindow = 64;

struct KeyStats {
  explicit KeyStats(uint64_t k, uint32_t window) : key(k), duration(window) {}

  // Return the gap histogram, creating it (most keys of most tenants never see a gap).
  LogHistogram& gaps_mut();

  uint64_t key;
  uint64_t seen = 0;                   // launches with this key
  uint64_t next_key = 0;               // LP: the key its tenant launched after it last time
  uint64_t duration_samples = 0;       // durations measured (lifetime; the histogram decays)
  uint64_t gap_samples = 0;            // gaps measured after this key (lifetime)
  LogHistogram duration;               // kernel run time, ns
  std::unique_ptr<LogHistogram> gaps;  // idle time after this key until the next submission, ns

  // Prediction quality (see gap_predictor.h).
  uint64_t pred_hits = 0;    // actual gap >= predicted gap
  uint64_t pred_misses = 0;  // actual gap < predicted gap
  uint64_t fill_misses = 0;  // the tenant came back while LP work granted into its gap still ran
  uint64_t pred_sum_ns = 0;  // sums over predicted gaps, for mean predicted vs actual
  uint64_t actual_sum_ns = 0;
  uint32_t streak = 0;  // raw-prediction hits in a row since the last miss
  double factor = 1.0;  // conservatism: predictions are scaled by it (misses lower it)
  // Share of the key's recent filled gaps that were fill misses (a moving average over
  // miss_window filled gaps): gap_quantile of them miss by design.
  double fill_miss_rate = 0;
  // Share of the key's recent gaps (a moving average over kOverrunWindow of those a LP request
  // waited in, filled or not) at whose end fills to the latest prediction would have left more
  // LP work than the HP's budget allows it to find (risk.h hp_cap_ns). Memoryless gaps, whose
  // predictions grow as they last, keep it high; gaps with a floor (periodic, jittered) bring
  // it to 0. It starts at 0: the first overrun (1/kOverrunWindow) puts it over a p99 budget's
  // 1%, and the gaps go on counting while the cap holds, so that it stays there while they
  // overrun. (Started high, a key whose every fill the cap refuses stays capped for ~150 gaps
  // however regular they are: a 100 us HP request at a 10% budget affords 20 us of LP work.)
  double overrun_rate = 0;
};

class KernelTable {
 public:
  KernelTable(uint32_t max_keys, uint32_t window)
      : max_keys_(max_keys ? max_keys : 1), window_(window) {}
  KernelTable(const KernelTable&) = delete;
  KernelTable& operator=(const KernelTable&) = delete;
  KernelTable(KernelTable&&) = default;
  KernelTable& operator=(KernelTable&&) = default;

  // Return the stats of `key`, creating them, and mark the key most recently used. May drop the
  // least recently used key (references to it become invalid).
  KeyStats& touch(uint64_t key);
  // Return the stats of `key` or nullptr, without changing recency.
  KeyStats* find(uint64_t key);
  const KeyStats* find(uint64_t key) const;

  uint32_t size() const { return static_cast<uint32_t>(index_.size()); }
  uint32_t max_keys() const { return max_keys_; }
  uint32_t window() const { return window_; }
  uint64_t evictions() const { return evictions_; }
  void clear();
  // Exchange contents with `other` (a table loaded from a profile, say).
  void swap(KernelTable& other);

  // Keys from most to least recently used.
  const std::list<KeyStats>& by_recency() const { return lru_; }

 private:
  uint32_t max_keys_;
  uint32_t window_;
  uint64_t evictions_ = 0;
  std::list<KeyStats> lru_;  // front: most recently used
  std::unordered_map<uint64_t, std::list<KeyStats>::iterator> index_;
};

}  // namespace fikit::broker::fikit_policy
