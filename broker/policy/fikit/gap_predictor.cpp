// Gap prediction from per-key gap histograms, with per-key conservatism.
#include "policy/fikit/gap_predictor.h"

#include <algorithm>

namespace fikit::broker::fikit_policy {

GapEstimate predict_gap(const KeyStats* ks, const LogHistogram* tenant_gaps, uint64_t elapsed_ns,
                        const FikitParams& p) {
  GapEstimate est;
  const LogHistogram* h = nullptr;
  double factor = 1.0;
  if (ks && ks->gaps && ks->gaps->total() >= std::max(p.min_gap_samples, 1u)) {
    h = ks->gaps.get();
    factor = ks->factor;
    est.source = GapSource::kKey;
  } else if (tenant_gaps && tenant_gaps->total() >= std::max(p.min_tenant_gap_samples, 1u)) {
    h = tenant_gaps;
    est.source = GapSource::kTenant;
  } else {
    return est;
  }
  // After fill misses the key is also judged by a lower quantile: a bimodal gap whose short mode
  // ran long enough to pass for the long one is then taken for long only later.
  double quantile = std::max(p.gap_quantile * std::max(factor, p.min_factor), 0.001);
  uint64_t q = h->quantile_above(quantile, elapsed_ns, &est.recheck_ns);
  est.raw_end_ns = q;
  est.longest_ns = h->quantile_high(1.0);
  // The factor scales what is left of the gap beyond the elapsed idle time, not the whole gap: at
  // factor f a whole-gap scale leaves nothing once the gap has lasted f/(1-f) of its quantile,
  // which starves LP work behind memoryless HP gaps (Poisson arrivals, measured on the H100).
  // Scaled this way a prediction still never passes the raw quantile.
  if (factor >= p.min_factor && q > 0) {
    uint64_t from = std::min(elapsed_ns, q);
    est.end_ns = from + static_cast<uint64_t>(static_cast<double>(q - from) * factor);
  }
  return est;
}

void gap_observed(KeyStats& ks, uint64_t actual_ns) {
  ks.gaps_mut().add(actual_ns);
  ks.gap_samples++;
}

void gap_scored(KeyStats& ks, const GapEstimate& at_start, uint64_t actual_ns,
                const FikitParams& p) {
  if (!at_start.known()) return;
  ks.pred_sum_ns += at_start.end_ns;
  ks.actual_sum_ns += actual_ns;
  if (actual_ns >= at_start.end_ns)
    ks.pred_hits++;
  else
    ks.pred_misses++;
  // A gap shorter than the low quantile happens by design (~gap_quantile of them): it does not
  // break the run of hits; only a fill miss does (fill_missed). Else a key with one fill miss
  // would stay at half its gaps for good (16 hits in a row at 90% each: 1 chance in 5).
  if (actual_ns < at_start.raw_end_ns) return;
  if (++ks.streak >= std::max(p.recover_hits, 1u) && ks.factor < 1.0) {
    ks.factor = std::min(1.0, ks.factor * 2);
    ks.streak = 0;
  }
}

void gap_overrun_scored(KeyStats& ks, bool overrun) {
  ks.overrun_rate += ((overrun ? 1.0 : 0.0) - ks.overrun_rate) / kOverrunWindow;
}

namespace {
// Weight of one filled gap in a key's fill_miss_rate: a moving average over miss_window of them.
double miss_weight(const FikitParams& p) { return 1.0 / std::max(p.miss_window, 1u); }
}  // namespace

void filled_gap_closed(KeyStats& ks, const FikitParams& p) {
  ks.fill_miss_rate *= 1.0 - miss_weight(p);
}

void fill_missed(KeyStats& ks, const FikitParams& p) {
  ks.fill_misses++;
  // Its gap was already counted a hit by filled_gap_closed: make it a miss.
  ks.fill_miss_rate += miss_weight(p);
  // A low quantile is undershot by gap_quantile of the gaps by design: misses at that rate are
  // the risk the quantile takes, not a sign that the key's gaps changed. A back-off on each one
  // would hold the factor at its floor (with 10% misses a key sees ~9 hits between misses, fewer
  // than the 16 that win a halving back) and starve the LP, periodic HP gaps included.
  if (ks.fill_miss_rate <= p.miss_tolerance * p.gap_quantile) return;
  ks.streak = 0;
  ks.factor *= p.miss_backoff;
  // Below min_factor the key is not filled; keep it just below so that recovery takes
  // recover_hits hits per doubling, not a run of them per lost halving.
  ks.factor = std::max(ks.factor, p.min_factor / 2);
}

}  // namespace fikit::broker::fikit_policy
