// Log-linear histogram: bucket geometry, decay and quantile queries.
#include "policy/fikit/log_histogram.h"

#include <algorithm>
#include <cmath>

namespace fikit::broker::fikit_policy {

namespace {
constexpr uint64_t kMaxValue = (uint64_t{1} << LogHistogram::kMaxShift) - 1;
constexpr uint32_t kMaxCount = 0xffff;

// Rank (1-based) of the q-quantile among `n` samples.
uint64_t rank_of(double q, uint64_t n) {
  if (!(q > 0)) return 1;
  if (q >= 1) return n;
  uint64_t r = static_cast<uint64_t>(std::ceil(q * static_cast<double>(n)));
  return std::clamp<uint64_t>(r, 1, n);
}
}  // namespace

uint32_t LogHistogram::bucket_of(uint64_t v) {
  if (v < (uint64_t{1} << kMinShift)) return static_cast<uint32_t>(v >> (kMinShift - kSubBits));
  v = std::min(v, kMaxValue);
  uint32_t e = 63 - static_cast<uint32_t>(__builtin_clzll(v));
  uint32_t sub = static_cast<uint32_t>(v >> (e - kSubBits)) & (kSub - 1);
  return kSub + (e - kMinShift) * kSub + sub;
}

uint64_t LogHistogram::bucket_lower(uint32_t b) {
  if (b < kSub) return uint64_t{b} << (kMinShift - kSubBits);
  uint32_t e = kMinShift + (b - kSub) / kSub;
  uint64_t sub = (b - kSub) % kSub;
  return (kSub + sub) << (e - kSubBits);
}

uint64_t LogHistogram::bucket_upper(uint32_t b) {
  return b + 1 < kBuckets ? bucket_lower(b + 1) : kMaxValue + 1;
}

void LogHistogram::add(uint64_t value_ns) {
  uint32_t b = bucket_of(value_ns);
  if (total_ + 1 >= window_ || count_[b] == kMaxCount) halve();
  count_[b]++;
  total_++;
  cached_q_ = -1;
}

void LogHistogram::clear() {
  count_.fill(0);
  total_ = 0;
  cached_q_ = -1;
}

// Halve every count, rounding up, so a rare sample (a long outlier kernel) is never forgotten
// entirely: it stays as a count of 1 and keeps the high quantiles conservative.
void LogHistogram::halve() {
  cached_q_ = -1;
  total_ = 0;
  for (uint16_t& c : count_) {
    c = static_cast<uint16_t>((c + 1u) / 2u);
    total_ += c;
  }
}

uint32_t LogHistogram::rank_bucket(uint64_t rank, uint32_t from) const {
  uint64_t seen = 0;
  for (uint32_t b = from; b < kBuckets; b++) {
    seen += count_[b];
    if (seen >= rank) return b;
  }
  return kBuckets - 1;
}

uint32_t LogHistogram::quantile_bucket(double q) const {
  if (q != cached_q_) {
    cached_bucket_ = rank_bucket(rank_of(q, total_), 0);
    cached_q_ = q;
  }
  return cached_bucket_;
}

uint64_t LogHistogram::quantile_low(double q) const {
  if (total_ == 0) return 0;
  return bucket_lower(quantile_bucket(q));
}

uint64_t LogHistogram::quantile_high(double q) const {
  if (total_ == 0) return 0;
  return bucket_upper(quantile_bucket(q));
}

uint64_t LogHistogram::quantile_above(double q, uint64_t elapsed, uint64_t* next_edge) const {
  *next_edge = 0;
  if (elapsed > kMaxValue) return 0;
  uint32_t from = bucket_of(elapsed);
  uint64_t mass = 0;
  for (uint32_t b = from; b < kBuckets; b++) mass += count_[b];
  if (mass == 0) return 0;
  uint32_t first = from;
  while (count_[first] == 0) first++;
  if (mass > count_[first]) *next_edge = bucket_upper(first);
  uint32_t b = rank_bucket(rank_of(q, mass), from);
  return std::max(elapsed, bucket_lower(b));
}

std::vector<std::pair<uint32_t, uint32_t>> LogHistogram::counts() const {
  std::vector<std::pair<uint32_t, uint32_t>> out;
  for (uint32_t b = 0; b < kBuckets; b++)
    if (count_[b]) out.emplace_back(b, count_[b]);
  return out;
}

bool LogHistogram::set_counts(const std::vector<std::pair<uint32_t, uint32_t>>& counts) {
  clear();
  for (const auto& [b, c] : counts) {
    if (b >= kBuckets || c == 0 || c > kMaxCount || count_[b] != 0) {
      clear();
      return false;
    }
    count_[b] = static_cast<uint16_t>(c);
    total_ += c;
  }
  cached_q_ = -1;
  // A saved window larger than ours: fold it down so the decay rule holds from here on.
  while (total_ >= window_) {
    uint32_t before = total_;
    halve();
    if (total_ == before) break;  // every bucket is down to 1
  }
  return true;
}

double LogHistogram::shortfall_above(uint64_t elapsed, uint64_t horizon, double* p_before) const {
  double mass = 0, before = 0, shortfall = 0;
  for (uint32_t b = 0; b < kBuckets; b++) {
    if (count_[b] == 0) continue;
    double mid = 0.5 * static_cast<double>(bucket_lower(b) + bucket_upper(b));
    if (mid <= static_cast<double>(elapsed)) continue;
    double c = count_[b];
    mass += c;
    if (mid < static_cast<double>(horizon)) {
      before += c;
      shortfall += c * (static_cast<double>(horizon) - mid);
    }
  }
  *p_before = mass > 0 ? before / mass : 0;
  return mass > 0 ? shortfall / mass : 0;
}

uint64_t LogHistogram::quantile_mid(double q) const {
  if (total_ == 0) return 0;
  uint32_t b = quantile_bucket(q);
  return (bucket_lower(b) + bucket_upper(b)) / 2;
}

}  // namespace fikit::broker::fikit_policy
