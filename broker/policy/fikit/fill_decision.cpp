// Fill decision: fit a LP request into the remaining predicted gap.
#include "policy/fikit/fill_decision.h"

#include <algorithm>

namespace fikit::broker::fikit_policy {

LpCost lp_cost(const KeyStats* ks, const LogHistogram& delays, const FikitParams& p) {
  LpCost c;
  if (!ks || ks->duration.empty()) return c;
  c.known = true;
  c.delay_ns = delays.empty() ? p.default_delay_ns : delays.quantile_high(p.delay_quantile);
  c.ns = sat_add(c.delay_ns, ks->duration.quantile_high(p.duration_quantile));
  return c;
}

FillDecision decide_fill(const FillWindow& w, const LpCost& cost) {
  uint64_t start = std::max(w.now_ns, w.committed_end_ns);
  if (w.gap_end_ns == kNoEnd)
    return {FillVerdict::kGrant, cost.known ? sat_add(start, cost.ns) : kNoEnd};
  uint64_t reserve = sat_add(w.switch_cost_ns, w.margin_ns);
  // Alone in the gap (nothing else granted into it), with room for the reserve.
  bool empty = w.committed_end_ns <= w.now_ns;
  bool may_risk = empty && w.risky_ok && w.gap_end_ns > sat_add(w.now_ns, reserve);
  if (!cost.known) {
    // Alone in the gap, so that its measurement is not inflated by other LP work, and the gap
    // is closed to others until it completes: its length is unknown.
    bool long_gap = w.gap_end_ns >= sat_add(w.now_ns, sat_add(w.measure_gap_ns, reserve));
    if (empty && long_gap) return {FillVerdict::kGrantToMeasure, w.gap_end_ns};
    if (may_risk) return {FillVerdict::kGrantRisky, w.gap_end_ns};
    return {FillVerdict::kNeedLongGap, 0};
  }
  uint64_t end = lp_end(w, cost);
  if (sat_add(end, reserve) <= w.gap_end_ns) return {FillVerdict::kGrant, end};
  // Longer than any gap the levels above are predicted to leave: it would wait for ever (with
  // memoryless gaps what is left never grows), and every request behind it with it.
  if (may_risk) return {FillVerdict::kGrantRisky, end};
  return {FillVerdict::kNoRoom, 0};
}

}  // namespace fikit::broker::fikit_policy
