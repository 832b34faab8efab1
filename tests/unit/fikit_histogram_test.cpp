// Streaming quantile estimation (fikit's log-linear histogram): geometry, quantile bounds,
// decay, conditional quantiles, serialisation checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "policy/fikit/log_histogram.h"

namespace fikit::broker::fikit_policy {
namespace {

using H = LogHistogram;

TEST(FikitHistogram, BucketsCoverValuesWithBoundedRelativeWidth) {
  for (uint64_t v : {0ull, 1ull, 255ull, 256ull, 1000ull, 99999ull, 123456789ull, 68000000000ull}) {
    uint32_t b = H::bucket_of(v);
    ASSERT_LT(b, H::kBuckets);
    EXPECT_LE(H::bucket_lower(b), v) << v;
    if (v < (1ull << H::kMaxShift)) {
      EXPECT_GT(H::bucket_upper(b), v) << v;
    }
    if (v >= 256) {
      double width = static_cast<double>(H::bucket_upper(b) - H::bucket_lower(b));
      EXPECT_LE(width / static_cast<double>(H::bucket_lower(b)), 1.0 / 16 + 1e-12) << v;
    }
  }
  for (uint32_t b = 0; b + 1 < H::kBuckets; b++)
    EXPECT_EQ(H::bucket_upper(b), H::bucket_lower(b + 1));
  EXPECT_EQ(H::bucket_of(1ull << 50), H::kBuckets - 1);  // clamped
}

TEST(FikitHistogram, EmptyAnswersZero) {
  H h;
  uint64_t edge = 7;
  EXPECT_TRUE(h.empty());
  EXPECT_EQ(h.quantile_low(0.1), 0u);
  EXPECT_EQ(h.quantile_high(0.99), 0u);
  EXPECT_EQ(h.quantile_above(0.1, 0, &edge), 0u);
  EXPECT_EQ(edge, 0u);
}

TEST(FikitHistogram, FixedValueQuantilesBracketIt) {
  H h;
  for (int i = 0; i < 100; i++) h.add(100000);
  EXPECT_LE(h.quantile_low(0.1), 100000u);
  EXPECT_GE(h.quantile_low(0.1), 100000u * 15 / 16);
  EXPECT_GT(h.quantile_high(0.99), 100000u);
  EXPECT_LE(h.quantile_high(0.99), 100000u * 17 / 16);
}

TEST(FikitHistogram, QuantilesOfUniformSamplesAreConservative) {
  H h(1 << 15);
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<uint64_t> d(10000, 1000000);
  std::vector<uint64_t> v;
  for (int i = 0; i < 5000; i++) v.push_back(d(rng));
  for (uint64_t x : v) h.add(x);
  std::sort(v.begin(), v.end());
  for (double q : {0.05, 0.1, 0.5, 0.9, 0.99}) {
    uint64_t exact = v[static_cast<size_t>(q * v.size()) - 1];
    EXPECT_LE(h.quantile_low(q), exact) << q;
    EXPECT_GE(h.quantile_low(q), exact * 15 / 16 - 1) << q;
    EXPECT_GE(h.quantile_high(q), exact) << q;
    EXPECT_LE(h.quantile_high(q), exact * 17 / 16 + 1) << q;
  }
}

TEST(FikitHistogram, WindowDecaysOldSamples) {
  H h(64);
  for (int i = 0; i < 1000; i++) h.add(10000);
  EXPECT_LT(h.total(), 64u);
  for (int i = 0; i < 1000; i++) h.add(1000000);
  // The old value is down to a single count: the median is the new one.
  EXPECT_GE(h.quantile_low(0.5), 1000000u * 15 / 16);
  EXPECT_LE(h.quantile_low(0.01), 10000u);  // a rare old sample is never dropped entirely
}

TEST(FikitHistogram, ConditionalQuantileSeesTheLongModeOfABimodalGap) {
  H h;
  for (int i = 0; i < 50; i++) {
    h.add(50000);    // short gaps: 50 us
    h.add(5000000);  // long gaps: 5 ms
  }
  uint64_t edge = 0;
  uint64_t at0 = h.quantile_above(0.1, 0, &edge);
  EXPECT_LE(at0, 50000u);
  EXPECT_GE(at0, 45000u);
  EXPECT_GT(edge, 50000u);  // it can change once the short mode's bucket has passed
  uint64_t later = h.quantile_above(0.1, edge, &edge);
  EXPECT_GE(later, 4600000u);
  EXPECT_LE(later, 5000000u);
  EXPECT_EQ(edge, 0u);                                   // nothing beyond the long mode
  EXPECT_EQ(h.quantile_above(0.1, 6000000, &edge), 0u);  // past every sample
}

TEST(FikitHistogram, CountsRoundTripAndRejectBadInput) {
  H h;
  for (uint64_t v : {300ull, 300ull, 70000ull, 9000000ull}) h.add(v);
  H g;
  ASSERT_TRUE(g.set_counts(h.counts()));
  EXPECT_EQ(g.total(), h.total());
  EXPECT_EQ(g.quantile_low(0.5), h.quantile_low(0.5));
  EXPECT_FALSE(g.set_counts({{H::kBuckets, 1}}));
  EXPECT_TRUE(g.empty());
  EXPECT_FALSE(g.set_counts({{3, 0}}));
  EXPECT_FALSE(g.set_counts({{3, 1}, {3, 2}}));
  EXPECT_FALSE(g.set_counts({{3, 70000}}));
}

}  // namespace
}  // namespace fikit::broker::fikit_policy
