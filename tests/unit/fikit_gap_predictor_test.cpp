// Gap prediction: fixed, jittered and bimodal gaps; too little known; misses and recovery.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "policy/fikit/gap_predictor.h"

namespace fikit::broker::fikit_policy {
namespace {

struct t_Key {
  KernelTable table{16, 2048};
  KeyStats& ks = table.touch(42);
  FikitParams p;
};

// A key whose every fill miss backs off (no tolerated miss rate): for the tests of what a backoff
// does, rather than of when it happens.
struct t_StrictKey : t_Key {
  t_StrictKey() { p.miss_tolerance = 0; }
};

TEST(FikitGapPredictor, UnknownUntilEnoughGaps) {
  t_Key k;
  EXPECT_FALSE(predict_gap(&k.ks, nullptr, 0, k.p).known());
  EXPECT_FALSE(predict_gap(nullptr, nullptr, 0, k.p).known());
  for (uint32_t i = 0; i + 1 < k.p.min_gap_samples; i++) gap_observed(k.ks, 100000);
  EXPECT_FALSE(predict_gap(&k.ks, nullptr, 0, k.p).known());
  gap_observed(k.ks, 100000);
  GapEstimate e = predict_gap(&k.ks, nullptr, 0, k.p);
  EXPECT_EQ(e.source, GapSource::kKey);
  EXPECT_LE(e.end_ns, 100000u);
  EXPECT_GE(e.end_ns, 100000u * 15 / 16);
}

TEST(FikitGapPredictor, FixedGapShrinksAsTimePasses) {
  t_Key k;
  for (int i = 0; i < 20; i++) gap_observed(k.ks, 200000);
  GapEstimate e0 = predict_gap(&k.ks, nullptr, 0, k.p);
  GapEstimate e1 = predict_gap(&k.ks, nullptr, 150000, k.p);
  EXPECT_EQ(e0.end_ns, e1.end_ns);  // the end does not move: less is left
  GapEstimate late = predict_gap(&k.ks, nullptr, 250000, k.p);
  EXPECT_TRUE(late.known());
  EXPECT_EQ(late.end_ns, 0u);  // later than every gap seen: no room
}

TEST(FikitGapPredictor, JitteredGapPredictsALowQuantile) {
  t_Key k;
  std::mt19937_64 rng(3);
  std::normal_distribution<double> d(300000, 30000);
  int below = 0;
  std::vector<uint64_t> gaps;
  for (int i = 0; i < 1000; i++) gaps.push_back(static_cast<uint64_t>(std::max(0.0, d(rng))));
  for (uint64_t g : gaps) gap_observed(k.ks, g);
  GapEstimate e = predict_gap(&k.ks, nullptr, 0, k.p);
  for (uint64_t g : gaps) below += g < e.end_ns;
  EXPECT_LE(below, 100);         // at most the 10% the quantile allows
  EXPECT_GE(e.end_ns, 230000u);  // mean - 2.3 sigma: not uselessly low
}

TEST(FikitGapPredictor, BimodalGapPredictsShortModeThenLongOne) {
  t_Key k;
  for (int i = 0; i < 40; i++) {
    gap_observed(k.ks, 30000);
    gap_observed(k.ks, 2000000);
  }
  GapEstimate e0 = predict_gap(&k.ks, nullptr, 0, k.p);
  EXPECT_LE(e0.end_ns, 30000u);
  ASSERT_GT(e0.recheck_ns, 30000u);
  GapEstimate e1 = predict_gap(&k.ks, nullptr, e0.recheck_ns, k.p);
  EXPECT_GE(e1.end_ns, 1800000u);
  EXPECT_LE(e1.end_ns, 2000000u);
}

TEST(FikitGapPredictor, TenantGapsStandInForAnUnknownKey) {
  t_Key k;
  LogHistogram all;
  for (uint32_t i = 0; i < k.p.min_tenant_gap_samples; i++) all.add(500000);
  GapEstimate e = predict_gap(&k.ks, &all, 0, k.p);
  EXPECT_EQ(e.source, GapSource::kTenant);
  EXPECT_GT(e.end_ns, 400000u);
}

TEST(FikitGapPredictor, MissesMakeTheKeyConservativeAndHitsWinItBack) {
  t_StrictKey k;
  for (int i = 0; i < 20; i++) gap_observed(k.ks, 100000);
  uint64_t before = predict_gap(&k.ks, nullptr, 0, k.p).end_ns;
  fill_missed(k.ks, k.p);
  EXPECT_EQ(k.ks.fill_misses, 1u);
  uint64_t after = predict_gap(&k.ks, nullptr, 0, k.p).end_ns;
  EXPECT_LE(after, before / 2 + 1);
  for (int i = 0; i < 10; i++) fill_missed(k.ks, k.p);
  EXPECT_EQ(predict_gap(&k.ks, nullptr, 0, k.p).end_ns, 0u);  // no longer filled at all
  // Raw predictions that hold, recover_hits in a row per doubling, bring it back.
  GapEstimate at_start = predict_gap(&k.ks, nullptr, 0, k.p);
  for (uint32_t i = 0; i < k.p.recover_hits; i++) gap_scored(k.ks, at_start, 100000, k.p);
  EXPECT_GT(predict_gap(&k.ks, nullptr, 0, k.p).end_ns, 0u);
  for (int r = 0; r < 8; r++)
    for (uint32_t i = 0; i < k.p.recover_hits; i++) gap_scored(k.ks, at_start, 100000, k.p);
  EXPECT_EQ(k.ks.factor, 1.0);
  EXPECT_EQ(predict_gap(&k.ks, nullptr, 0, k.p).end_ns, before);
}

// Memoryless gaps (Poisson arrivals): what is left of a gap does not grow with its age. A fill
// miss shrinks what the prediction leaves beyond the elapsed time, not the elapsed part, so a
// conservative key still leaves room however long the gap has lasted.
TEST(FikitGapPredictor, FillMissShrinksWhatIsLeftNotTheTimeElapsed) {
  t_StrictKey k;
  for (int i = 1; i <= 400; i++)  // exponential quantiles, mean 3 ms
    gap_observed(k.ks, static_cast<uint64_t>(-3e6 * std::log(1.0 - (i - 0.5) / 400.0)));
  uint64_t left = predict_gap(&k.ks, nullptr, 2000000, k.p).end_ns - 2000000;
  EXPECT_GT(left, 150000u);  // ~10% of 3 ms ahead
  fill_missed(k.ks, k.p);
  GapEstimate e = predict_gap(&k.ks, nullptr, 2000000, k.p);
  ASSERT_GT(e.end_ns, 2000000u);
  EXPECT_LT(e.end_ns - 2000000, left);      // more conservative ...
  EXPECT_GT(e.end_ns - 2000000, left / 8);  // ... but not shut
  EXPECT_LE(e.end_ns, e.raw_end_ns);
}

// A bimodal gap whose short mode sometimes runs long: at first, once most of the short mode has
// passed, the gap is taken for a long one; after a fill miss the key is judged by a lower quantile
// and the short mode's tail keeps it short.
TEST(FikitGapPredictor, FillMissLowersTheQuantileOfABimodalKey) {
  t_StrictKey k;
  for (int i = 0; i < 90; i++) gap_observed(k.ks, 100000);
  for (int i = 0; i < 3; i++) gap_observed(k.ks, 115000);
  for (int i = 0; i < 40; i++) gap_observed(k.ks, 1500000);
  EXPECT_GE(predict_gap(&k.ks, nullptr, 105000, k.p).end_ns, 1400000u);
  fill_missed(k.ks, k.p);
  EXPECT_LT(predict_gap(&k.ks, nullptr, 105000, k.p).end_ns, 120000u);
}

// Fill misses at about the rate the gap quantile takes by design (1 filled gap in 10) never back
// off; misses in a row (the key's gaps changed) do, after a few.
TEST(FikitGapPredictor, FillMissesAtTheQuantilesRateAreTolerated) {
  t_Key k;
  for (int i = 0; i < 20; i++) gap_observed(k.ks, 100000);
  for (int i = 0; i < 200; i++) {
    filled_gap_closed(k.ks, k.p);
    if (i % 10 == 9) fill_missed(k.ks, k.p);
  }
  EXPECT_EQ(k.ks.fill_misses, 20u);
  EXPECT_EQ(k.ks.factor, 1.0);
  int closed = 0;
  while (k.ks.factor == 1.0 && closed < 20) {
    filled_gap_closed(k.ks, k.p);
    fill_missed(k.ks, k.p);
    closed++;
  }
  EXPECT_EQ(k.ks.factor, 0.5);
  EXPECT_GE(closed, 2);
  EXPECT_LE(closed, 6);
}

TEST(FikitGapPredictor, ScoringCountsHitsAndMisses) {
  t_StrictKey k;
  for (int i = 0; i < 20; i++) gap_observed(k.ks, 100000);
  GapEstimate e = predict_gap(&k.ks, nullptr, 0, k.p);
  gap_scored(k.ks, e, 120000, k.p);
  gap_scored(k.ks, e, 10000, k.p);
  EXPECT_EQ(k.ks.pred_hits, 1u);
  EXPECT_EQ(k.ks.pred_misses, 1u);
  // A gap shorter than the low quantile is expected now and then: it does not break the run of
  // hits that wins back conservatism; a fill miss does.
  EXPECT_EQ(k.ks.streak, 1u);
  fill_missed(k.ks, k.p);
  EXPECT_EQ(k.ks.streak, 0u);
  gap_scored(k.ks, GapEstimate{}, 10000, k.p);  // no prediction: not scored
  EXPECT_EQ(k.ks.pred_hits + k.ks.pred_misses, 2u);
}

// overrun_rate: one overrun puts a key over a p99 budget's 1%; ~30 gaps without one take it
// back under; overruns at 10% keep it over.
TEST(FikitGapPredictor, OverrunRateFollowsTheGaps) {
  t_Key k;
  KeyStats& ks = k.ks;
  EXPECT_EQ(ks.overrun_rate, 0);
  gap_overrun_scored(ks, true);
  EXPECT_GT(ks.overrun_rate, 0.01);
  int gaps = 0;
  while (ks.overrun_rate > 0.01) {
    gap_overrun_scored(ks, false);
    gaps++;
  }
  EXPECT_GT(gaps, 20);
  EXPECT_LT(gaps, 40);
  for (int i = 0; i < 500; i++) gap_overrun_scored(ks, i % 10 == 0);
  EXPECT_GT(ks.overrun_rate, 0.05);
}

}  // namespace
}  // namespace fikit::broker::fikit_policy
