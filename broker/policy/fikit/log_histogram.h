// A streaming quantile estimator with bounded memory: a fixed-bucket log-linear histogram of
// nanosecond values (16 linear sub-buckets per power of two, so a bucket spans at most 6.25% of
// its value), with 16-bit counts halved when the window fills, so old samples fade out.
//
// Why a histogram and not P² markers: gaps are often multimodal (a short gap between kernels, a
// long one between requests); a histogram keeps the whole shape, answers any quantile, and can
// answer "given that the gap already lasted e, how long is it at least" (quantile_above), which
// turns a bimodal gap into a long one once its short mode has passed. It is also exactly
// serialisable for profiles. Cost: 928 bytes per histogram, O(1) insert, O(buckets) query.
#pragma once

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

namespace fikit::broker::fikit_policy {

class LogHistogram {
 public:
  static constexpr uint32_t kSubBits = 4;    // 16 sub-buckets per octave
  static constexpr uint32_t kMinShift = 8;   // values < 256 ns: linear buckets
  static constexpr uint32_t kMaxShift = 36;  // values >= 2^36 ns (68 s) clamp
  static constexpr uint32_t kSub = 1u << kSubBits;
  static constexpr uint32_t kBuckets = kSub + (kMaxShift - kMinShift) * kSub;  // 464
  static constexpr uint32_t kDefaultWindow = 2048;  // halve all counts when the total reaches it

  explicit LogHistogram(uint32_t window = kDefaultWindow)
      : window_(window < 16       ? 16
                : window > 0xffff ? 0xffff
                                  : window) {}

  // Record one value (nanoseconds).
  void add(uint64_t value_ns);
  // Number of samples currently weighted (decays with the window); 0 if empty.
  uint32_t total() const { return total_; }
  bool empty() const { return total_ == 0; }
  void clear();

  // Return the lower edge of the bucket holding the q-quantile (0 < q <= 1): a value that at
  // least a (1-q) share of the samples reach. Conservative for "a gap at least this long".
  uint64_t quantile_low(double q) const;
  // Return the upper edge of the bucket holding the q-quantile: at most a (1-q) share of the
  // samples exceed it. Conservative for "a kernel at most this long".
  uint64_t quantile_high(double q) const;
  // Among the samples that may exceed `elapsed` (buckets whose upper edge is above it), return
  // max(elapsed, lower edge of the bucket holding their q-quantile): the conditional quantile.
  // *next_edge is the smallest elapsed value at which the answer can change (the upper edge of
  // the first non-empty bucket from here, if samples lie beyond it), else 0. Return 0 if no
  // sample may exceed `elapsed`.
  uint64_t quantile_above(double q, uint64_t elapsed, uint64_t* next_edge) const;

  // Among the samples beyond `elapsed` (bucket midpoints above it), the expected shortfall of a
  // value against `horizon`, E[(horizon - v)+], and in *p_before the share of them below
  // `horizon`. Both 0 if no sample lies beyond `elapsed`. What LP work ending at `horizon` costs
  // a tenant idle since `elapsed` ago whose gaps these are (budget.cpp's risk admission).
  double shortfall_above(uint64_t elapsed, uint64_t horizon, double* p_before) const;
  // The midpoint of the bucket holding the q-quantile (0 if empty): within ~3% of it.
  uint64_t quantile_mid(double q) const;

  // Bucket geometry, for tests and serialisation.
  static uint32_t bucket_of(uint64_t value_ns);
  static uint64_t bucket_lower(uint32_t b);
  static uint64_t bucket_upper(uint32_t b);  // exclusive

  // Non-empty buckets as (index, count) pairs, and the reverse. set_counts() rejects an index
  // out of range or a zero count, returning false and leaving the histogram empty.
  std::vector<std::pair<uint32_t, uint32_t>> counts() const;
  bool set_counts(const std::vector<std::pair<uint32_t, uint32_t>>& counts);
  uint32_t window() const { return window_; }

 private:
  void halve();
  uint32_t rank_bucket(uint64_t rank, uint32_t from) const;
  uint32_t quantile_bucket(double q) const;

  std::array<uint16_t, kBuckets> count_{};
  uint32_t total_ = 0;
  uint32_t window_;
  // The last quantile_low/high answer: dispatch asks the same ones over and over between adds.
  mutable double cached_q_ = -1;
  mutable uint32_t cached_bucket_ = 0;
};

}  // namespace fikit::broker::fikit_policy
