// Fikit dispatch: classify tenants, then grant level by level.
#include "policy/fikit/dispatch.h"

#include <algorithm>
#include <vector>

#include "policy/fikit/events.h"
#include "policy/fikit/fill_decision.h"
#include "policy/fikit/markers.h"

namespace fikit::broker::fikit_policy {

namespace {

using View = TenantView;

struct Ctx {
  FikitState& st;
  SchedulerApi& s;
  uint64_t now;
  std::vector<View>& views;
  uint32_t in_flight;
  uint64_t wake = kNoEnd;
};

// The gap a fill would go into: its predicted end, and whose gaps these are.
struct Window {
  uint64_t end;
  std::vector<GapRef>& gaps;
};

uint64_t idle_start(const TenantInfo& t, const TenantData& td) {
  return td.gap.open ? td.gap.start_ns : t.idle_since_ns;
}

uint64_t gap_key(const TenantInfo& t, const TenantData& td) {
  if (td.gap.open) return td.gap.key;
  return td.last_key ? td.last_key : t.last_key;
}

// Bring our copy of td's waiting requests and grants in line with the scheduler's counts, so a
// request or completion we never heard of cannot wedge the policy.
void reconcile(FikitState& st, const TenantInfo& t, TenantData& td) {
  if (t.waiting == 0) {
    td.waiting.clear();
  } else {
    auto head = std::find_if(td.waiting.begin(), td.waiting.end(), [&](const Pending& p) {
      return p.t_ns == t.head_t_ns && p.key == t.head_key;
    });
    td.waiting.erase(td.waiting.begin(), head);
    if (td.waiting.empty()) td.waiting.push_back({0, false, t.head_key, t.head_t_ns, kNoSlot});
  }
  size_t mine = std::count_if(st.grants.begin(), st.grants.end(),
                              [&](const Grant& g) { return g.tenant_id == td.id; });
  for (auto it = st.grants.begin(); mine > t.lp_in_flight && it != st.grants.end();) {
    if (it->tenant_id == td.id) {
      it = st.grants.erase(it);
      mine--;
    } else {
      ++it;
    }
  }
}

// Charge the time since the last dispatch to the reason td's oldest request was held for then;
// until this dispatch finds better, a request still waiting is held by the levels above.
void charge_held(TenantData& td, uint64_t now) {
  if (td.held != HeldReason::kNone && now > td.held_since_ns)
    td.n.held_ns[static_cast<size_t>(td.held)] += now - td.held_since_ns;
  td.held = td.waiting.empty() ? HeldReason::kNone : HeldReason::kAboveBusy;
  td.held_since_ns = now;
}

void classify(Ctx& c) {
  c.views.clear();
  uint32_t n = c.s.tenant_count();
  for (uint32_t i = 0; i < n; i++) {
    TenantInfo& t = c.s.tenant(i);
    auto* td = static_cast<TenantData*>(t.policy_data);
    if (!td) continue;
    reconcile(c.st, t, *td);
    charge_held(*td, c.now);
    // A granted LP request not yet launched is not outstanding yet, but it is about to run.
    View v{i, &t, td, false, t.outstanding > 0 || t.lp_in_flight > 0, false, 0};
    v.blocked = t.priority != kPriorityHigh && !v.busy && t.waiting > 0;
    v.active = tenant_active(c.st, t, *td, c.now, &v.inactive_at);
    c.views.push_back(v);
  }
}

// Predicted end of the LP work already granted; a grant past its predicted end is still running
// and assumed to end within the margin.
uint64_t committed_end(const Ctx& c) {
  uint64_t end = 0;
  for (const Grant& g : c.st.grants)
    end = std::max(end, g.end_ns > c.now ? g.end_ns : c.now + c.st.cfg.margin_ns);
  return end;
}

// Return true if a gap predicted `gap_ns` long is worth its switch-back cost: with time-slicing
// the level above pays the switch when it comes back however early the fill ended, so only gaps
// of at least switch_gap_factor switch costs are filled (the level above then loses at most
// 1/factor of its idle time to switches).
bool worth_a_switch(const FikitState& st, uint64_t gap_ns) {
  double need = static_cast<double>(st.cfg.switch_cost_ns) * st.params.switch_gap_factor;
  return static_cast<double>(gap_ns) >= need;
}

// The least a waiting request of level `level` or below needs from a gap: its predicted cost
// (an unknown kernel: the room to measure it) plus margin and switch cost.
uint64_t least_need(const Ctx& c, uint32_t level) {
  uint64_t least = kNoEnd;
  for (const View& v : c.views) {
    if (v.t->priority < level || v.td->waiting.empty()) continue;
    LpCost cost = lp_cost(v.td->keys.find(v.td->waiting.front().key), v.td->delays, c.st.params);
    least = std::min(least, cost.known ? cost.ns : c.st.params.measure_gap_ns);
  }
  return least == kNoEnd ? least : least + c.st.cfg.margin_ns + c.st.cfg.switch_cost_ns;
}

// The window level L may fill: the earliest predicted end of the gaps of the active tenants
// above it. Return false if one of them is busy (no gap at all, for L and every level below).
// A later look (wake_at) is asked for only where the prediction can still grow enough for a
// waiting request: waking every few microseconds through gaps that can never hold one took CPU
// from the tenants on a small host (measured: HP p50 +4% against the oracle).
bool window_for(Ctx& c, uint32_t level, Window* w) {
  uint64_t need = least_need(c, level);
  for (View& v : c.views) {
    if (!v.active || v.blocked || v.t->priority >= level) continue;
    if (v.busy) return false;
    uint64_t start = idle_start(*v.t, *v.td);
    uint64_t key = gap_key(*v.t, *v.td);
    uint64_t elapsed = c.now > start ? c.now - start : 0;
    GapEstimate est =
        c.st.oracle ? hinted_gap(*v.td, start)
                    : predict_gap(v.td->keys.find(key), &v.td->all_gaps, elapsed, c.st.params);
    w->end = std::min(w->end, est.end_ns > elapsed && worth_a_switch(c.st, est.end_ns)
                                  ? start + est.end_ns
                                  : c.now);
    bool can_grow = need != kNoEnd && start + est.longest_ns >= c.now + need;
    if (est.recheck_ns && can_grow) c.wake = std::min(c.wake, start + est.recheck_ns);
    if (v.inactive_at) c.wake = std::min(c.wake, v.inactive_at);
    w->gaps.push_back({v.td->id, v.td->gap.open ? v.td->gap.epoch : 0, key, 0, start + est.end_ns});
  }
  return true;
}

void note_grant(Ctx& c, View& v, const Window& w, const FillDecision& d, const LpCost& cost) {
  uint64_t waited = c.now - std::min(c.now, v.td->waiting.front().t_ns);
  v.td->n.wait_sum_ns += waited;
  v.td->n.wait_max_ns = std::max(v.td->n.wait_max_ns, waited);
  c.st.trace.add(TraceKind::kGrant, c.now, v.td->id, v.td->waiting.front().key, d.end_ns, w.end,
                 static_cast<uint8_t>(d.verdict));
  Grant& g = ev_granted(c.st, *v.td, c.now);
  g.end_ns = d.end_ns;
  g.fill = w.end != kNoEnd;
  g.risky = d.verdict == FillVerdict::kGrantRisky;
  v.busy = true;
  v.blocked = false;
  c.in_flight++;
  if (!g.fill) {
    v.td->n.grants_full++;
    return;
  }
  g.gaps = w.gaps;
  v.td->n.grants_fill++;
  if (!cost.known) v.td->n.grants_measure++;
  if (d.verdict == FillVerdict::kGrantRisky) {
    v.td->n.grants_risky++;
    c.st.last_risky_ns = c.now;
  }
  c.st.last_fill_tenant = v.td->id;
  for (const GapRef& r : w.gaps) {
    auto it = c.st.tenants.find(r.tenant_id);
    if (it == c.st.tenants.end()) continue;
    TenantData& owner = *it->second;
    if (owner.gap.open && owner.gap.epoch == r.epoch) owner.gap.filled = true;
    owner.n.lp_into_gaps++;
    owner.n.lp_into_gaps_ns += cost.known ? cost.ns : 0;
  }
}

// What is left of the gap after the LP work already granted into it (0: none, or no gap end).
uint64_t room_left(const FillWindow& fw) {
  uint64_t from = std::max(fw.now_ns, fw.committed_end_ns);
  return fw.gap_end_ns > from && fw.gap_end_ns != kNoEnd ? fw.gap_end_ns - from : 0;
}

// Count why a request that did not fit was not granted as a risky one (see no_room_why).
// `waited`: the request has waited starve_wait (fw.risky_ok is that and the rate limit).
void count_no_room(TenantData& td, const FillWindow& fw, const LpCost& cost, bool waited) {
  td.n.no_room_cost_ns += cost.ns;
  td.n.no_room_left_ns += room_left(fw);
  size_t why = 3;
  if (!waited)
    why = 0;
  else if (!fw.risky_ok)
    why = 1;
  else if (fw.committed_end_ns > fw.now_ns)
    why = 2;
  td.n.no_room_why[why]++;
}

// Trace why v's oldest request was not granted, once per request and reason.
void trace_deny(Ctx& c, TenantData& td, uint8_t why, uint64_t cost_ns, uint64_t room_ns) {
  if (!c.st.trace.on()) return;
  const Pending& head = td.waiting.front();
  if (td.traced_deny_t_ns == head.t_ns && td.traced_deny_verdict == why) return;
  td.traced_deny_t_ns = head.t_ns;
  td.traced_deny_verdict = why;
  c.st.trace.add(TraceKind::kDeny, c.now, td.id, head.key, cost_ns, room_ns, why);
}

// Grant v's requests, oldest first, while they fit. Return true if v still waits.
bool grant_tenant(Ctx& c, View& v, const Window& w, uint64_t* committed) {
  const PolicyConfig& cfg = c.st.cfg;
  while (!v.td->waiting.empty()) {
    if (c.in_flight >= cfg.max_lp_in_flight) {
      v.td->held = HeldReason::kInFlight;
      trace_deny(c, *v.td, kHeldInFlight, 0, 0);
      return true;
    }
    LpCost cost = lp_cost(v.td->keys.find(v.td->waiting.front().key), v.td->delays, c.st.params);
    // Time-slicing also switches between two LP contexts.
    if (cost.known && *committed > c.now && c.st.last_fill_tenant != v.td->id)
      cost.ns += cfg.switch_cost_ns;
    const FikitParams& p = c.st.params;
    const Pending& head = v.td->waiting.front();
    bool waited = c.now >= head.t_ns + p.starve_wait_ns;
    bool rate_ok = c.st.last_risky_ns == 0 || c.now >= c.st.last_risky_ns + p.risky_every_ns;
    FillWindow fw{c.now,
                  w.end,
                  *committed,
                  cfg.switch_cost_ns,
                  cfg.margin_ns,
                  p.measure_gap_ns,
                  waited && rate_ok};
    FillDecision d = decide_fill(fw, cost);
    if (!fill_grants(d.verdict)) {
      v.td->held = d.verdict == FillVerdict::kNoRoom ? HeldReason::kNoRoom : HeldReason::kUnknown;
      if (d.verdict == FillVerdict::kNoRoom) count_no_room(*v.td, fw, cost, waited);
      trace_deny(c, *v.td, static_cast<uint8_t>(d.verdict), cost.ns, room_left(fw));
      return true;
    }
    if (!c.s.grant(v.idx)) {
      v.td->waiting.clear();
      v.td->held = HeldReason::kNone;
      return false;
    }
    note_grant(c, v, w, d, cost);
    if (w.end != kNoEnd) *committed = d.end_ns;
  }
  v.td->held = HeldReason::kNone;
  return false;
}

// Grant what level `level` may run. Return false if no level below it may run either.
bool dispatch_level(Ctx& c, uint32_t level, uint32_t top, bool* still_waiting) {
  std::vector<View*>& mine = c.st.scratch.level;
  mine.clear();
  for (View& v : c.views)
    if (v.t->priority == level && !v.td->waiting.empty()) mine.push_back(&v);
  if (mine.empty()) return true;
  Window w{kNoEnd, c.st.scratch.gaps};
  w.gaps.clear();
  if (level != top && !window_for(c, level, &w)) {
    for (View* v : mine) trace_deny(c, *v->td, kHeldAboveBusy, 0, 0);
    *still_waiting = true;
    return false;
  }
  uint64_t committed = committed_end(c);
  uint32_t first = c.st.rr[level]++ % mine.size();
  for (size_t k = 0; k < mine.size(); k++) {
    View& v = *mine[(first + k) % mine.size()];
    if (grant_tenant(c, v, w, &committed)) *still_waiting = true;
  }
  return true;
}

}  // namespace

bool tenant_active(const FikitState& st, const TenantInfo& t, const TenantData& td, uint64_t now_ns,
                   uint64_t* inactive_at) {
  *inactive_at = 0;
  if (t.outstanding > 0 || t.waiting > 0 || t.lp_in_flight > 0) return true;
  uint64_t last = std::max(t.last_submit_ns, idle_start(t, td));
  if (last == 0) return false;  // never submitted anything
  const KeyStats* ks = td.keys.find(gap_key(t, td));
  uint64_t usual = ks && ks->gaps ? ks->gaps->quantile_high(0.99) : 0;
  uint64_t after = std::max(st.params.inactive_ns, 2 * usual);
  if (now_ns >= last + after) return false;
  *inactive_at = last + after;
  return true;
}

void fikit_dispatch(FikitState& st, SchedulerApi& sched, uint64_t now_ns) {
  st.dispatches++;
  Ctx c{st, sched, now_ns, st.scratch.views, sched.lp_in_flight()};
  classify(c);
  update_markers(st, sched, now_ns);
  uint32_t top = kPriorityLevels;
  for (const View& v : c.views)
    if (v.active) top = std::min(top, v.t->priority);
  bool still_waiting = false;
  for (uint32_t level = top; level < kPriorityLevels; level++)
    if (!dispatch_level(c, level, top, &still_waiting)) break;
  if (still_waiting && c.wake != kNoEnd) {
    st.wakeups_asked++;
    sched.wake_at(std::max(c.wake, now_ns + st.params.min_recheck_ns));
  } else {
    sched.wake_at(0);
  }
}

}  // namespace fikit::broker::fikit_policy
