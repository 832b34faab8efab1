// The gaps of the fikit policy's tenants: open, close, predict, score, fill.
#include "policy/fikit/gap.h"

#include "policy/fikit/grants.h"
#include "policy/fikit/risk.h"

namespace fikit::broker::fikit_policy {

GapEstimate gap_from_history(const FikitState& st, const TenantData& td, uint64_t key,
                             uint64_t /*start_ns*/, uint64_t elapsed_ns) {
  return predict_gap(td.keys.find(key), &td.all_gaps, elapsed_ns, st.params);
}

uint64_t gap_start(const TenantInfo& t, const TenantData& td) {
  return td.gap.open ? td.gap.start_ns : t.idle_since_ns;
}

uint64_t gap_key(const TenantInfo& t, const TenantData& td) {
  if (td.gap.open) return td.gap.key;
  return td.last_key ? td.last_key : t.last_key;
}

GapEstimate gap_predict(const FikitState& st, const TenantInfo& t, const TenantData& td,
                        uint64_t now_ns) {
  uint64_t start = gap_start(t, td);
  uint64_t elapsed = now_ns > start ? now_ns - start : 0;
  return st.gap_source(st, td, gap_key(t, td), start, elapsed);
}

void gap_open(FikitState& st, TenantData& td, const TenantInfo& t, uint64_t t_ns) {
  td.submits_since_idle = 0;
  // A tenant that already asked again (a LP request waiting or granted, not yet launched) has no
  // idle gap to measure.
  if (td.gap.open || t.waiting > 0 || t.lp_in_flight > 0) return;
  GapState& g = td.gap;
  g.open = true;
  g.start_ns = t_ns;
  g.key = td.last_key ? td.last_key : t.last_key;
  g.epoch++;
  g.filled = false;
  g.returned_ns = 0;
  g.fill_end_ns = 0;
  g.at_start = st.gap_source(st, td, g.key, t_ns, 0);
  st.trace.add(TraceKind::kIdle, t_ns, td.id, g.key, g.at_start.known() ? g.at_start.end_ns : 0);
}

void gap_close(FikitState& st, TenantData& td, uint64_t t_ns) {
  GapState& g = td.gap;
  if (!g.open) return;
  g.open = false;
  g.returned_ns = t_ns;
  uint64_t actual = t_ns > g.start_ns ? t_ns - g.start_ns : 0;
  KeyStats& ks = td.keys.touch(g.key);
  TenantCounters& n = td.counters;
  gap_observed(ks, actual);
  td.all_gaps.add(actual);
  n.gaps++;
  if (td.priority == kPriorityHigh) st.hp_idle_ns += actual;
  if (g.at_start.known()) {
    gap_scored(ks, g.at_start, actual, st.params);
    (actual >= g.at_start.end_ns ? n.gap_hits : n.gap_misses)++;
    n.pred_sum_ns += g.at_start.end_ns;
    n.actual_sum_ns += actual;
  } else {
    n.gap_unpredicted++;
  }
  if (g.filled) {
    n.gaps_filled++;
    filled_gap_closed(ks, st.params);
  }
  // Would fills to the predictions have left the HP more LP work than it can afford?
  if (g.fill_end_ns > 0 && td.priority == kPriorityHigh) {
    uint64_t cap = hp_cap_ns(st, td);
    uint64_t left =
        g.fill_end_ns > t_ns + st.cfg.margin_ns ? g.fill_end_ns - t_ns - st.cfg.margin_ns : 0;
    if (cap != kNoEnd) gap_overrun_scored(ks, left > cap);
  }
  grants_owner_returned(st, td.id, g.epoch, t_ns);
}

void gap_hint(FikitState& st, TenantData& td, const TenantInfo& /*t*/, uint64_t idle_ns,
              uint64_t t_ns) {
  td.hint_end_ns = t_ns + idle_ns;
  if (td.gap.open && td.hint_end_ns > td.gap.start_ns)
    td.gap.at_start = st.gap_source(st, td, td.gap.key, td.gap.start_ns, 0);
}

void gaps_filled(FikitState& st, const std::vector<GapRef>& gaps, uint64_t cost_ns) {
  for (const GapRef& r : gaps) {
    auto it = st.tenants.find(r.tenant_id);
    if (it == st.tenants.end()) continue;
    TenantData& owner = *it->second;
    if (owner.gap.open && owner.gap.epoch == r.epoch) owner.gap.filled = true;
    owner.counters.lp_into_gaps++;
    owner.counters.lp_into_gaps_ns += cost_ns;
  }
}

void gap_fill_missed(FikitState& st, const GapRef& r) {
  auto it = st.tenants.find(r.tenant_id);
  if (it == st.tenants.end()) return;
  TenantData& owner = *it->second;
  if (owner.collided_epoch == r.epoch) return;  // one miss per gap
  owner.collided_epoch = r.epoch;
  KeyStats* ks = owner.keys.find(r.key);
  if (!ks) ks = &owner.keys.touch(r.key);
  fill_missed(*ks, st.params);
  owner.counters.fill_misses++;
}

}  // namespace fikit::broker::fikit_policy
