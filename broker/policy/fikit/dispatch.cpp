// Fikit dispatch: classify tenants, then grant level by level.
#include "policy/fikit/dispatch.h"

#include <algorithm>
#include <vector>

#include "policy/fikit/burst.h"
#include "policy/fikit/fill_decision.h"
#include "policy/fikit/gap.h"
#include "policy/fikit/grants.h"
#include "policy/fikit/markers.h"
#include "policy/fikit/risk.h"
#include "policy/fikit/share.h"

namespace fikit::broker::fikit_policy {

namespace {

using View = TenantView;

struct Ctx {
  FikitState& state;
  SchedulerApi& sched;
  uint64_t now;
  std::vector<View>& views;
  uint32_t in_flight;
  uint64_t wake = kNoEnd;
  const View* least_served = nullptr;  // of the level being dispatched (share.h)
};

// The gap a fill would go into: its predicted end, and whose gaps these are.
struct Window {
  uint64_t end;
  std::vector<GapRef>& gaps;
  uint64_t cap_ns = kNoEnd;  // the most LP work the gap may have queued (risk.h residual_cap_ns)
};

// The oldest waiting request of v (nullptr: none), as the scheduler holds it.
const Submission* head_of(const Ctx& c, const View& v) { return c.sched.request(v.idx, 0); }

// FillVerdict values are TraceVerdict values (trace.h).
TraceVerdict trace_verdict(FillVerdict v) { return static_cast<TraceVerdict>(v); }
static_assert(static_cast<uint8_t>(FillVerdict::kNeedLongGap) ==
              static_cast<uint8_t>(TraceVerdict::kNeedLongGap));

// Charge the time since the last dispatch to the reason td's oldest request was held for then;
// until this dispatch finds better, a request still waiting is held by the levels above.
void charge_held(TenantData& td, const TenantInfo& t, uint64_t now) {
  if (td.held != HeldReason::kNone && now > td.held_since_ns)
    td.counters.held_ns[static_cast<size_t>(td.held)] += now - td.held_since_ns;
  td.held = t.waiting == 0 ? HeldReason::kNone : HeldReason::kAboveBusy;
  td.held_since_ns = now;
}

void classify(Ctx& c) {
  c.views.clear();
  uint32_t n = c.sched.tenant_count();
  for (uint32_t i = 0; i < n; i++) {
    TenantInfo& t = c.sched.tenant(i);
    auto* td = static_cast<TenantData*>(t.policy_data);
    if (!td) continue;
    charge_held(*td, t, c.now);
    if (t.priority == kPriorityHigh) risk_check_stale(c.state, *td, c.now);
    // A granted LP request not yet launched is not outstanding yet, but it is about to run.
    // An HP launch still in its driver call (ABI 2.4) is already running on the GPU.
    bool busy = t.outstanding > 0 || t.lp_in_flight > 0 || t.issuing_ns != 0;
    View v{.idx = i,
           .t = &t,
           .td = td,
           .active = false,
           .busy = busy,
           .blocked = t.priority != kPriorityHigh && !busy && t.waiting > 0,
           .inactive_at = 0,
           .turn_over = false};
    v.active = tenant_active(c.state, t, *td, c.now, &v.inactive_at);
    c.views.push_back(v);
  }
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
    const Submission* head = v.t->priority < level ? nullptr : head_of(c, v);
    if (!head) continue;
    LpCost cost = lp_cost(v.td->keys.find(head->kernel_key), v.td->delays, c.state.params);
    least = std::min(least, cost.known ? cost.ns : c.state.params.measure_gap_ns);
  }
  return least == kNoEnd ? least : least + c.state.cfg.margin_ns + c.state.cfg.switch_cost_ns;
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
    uint64_t start = gap_start(*v.t, *v.td);
    uint64_t key = gap_key(*v.t, *v.td);
    uint64_t elapsed = c.now > start ? c.now - start : 0;
    GapEstimate est = gap_predict(c.state, *v.t, *v.td, c.now);
    w->end = std::min(w->end, est.end_ns > elapsed && worth_a_switch(c.state, est.end_ns)
                                  ? start + est.end_ns
                                  : c.now);
    if (v.td->gap.open && est.end_ns > elapsed)
      v.td->gap.fill_end_ns = std::max(v.td->gap.fill_end_ns, start + est.end_ns);
    bool can_grow = need != kNoEnd && start + est.longest_ns >= c.now + need;
    if (est.recheck_ns && can_grow) c.wake = std::min(c.wake, start + est.recheck_ns);
    if (v.inactive_at) c.wake = std::min(c.wake, v.inactive_at);
    w->gaps.push_back({v.td->id, v.td->gap.open ? v.td->gap.epoch : 0, key, 0, start + est.end_ns});
  }
  return true;
}

// v's request `r` was granted: record the grant and count it.
void note_grant(Ctx& c, View& v, const Submission& r, const Window& w, const FillDecision& d,
                const LpCost& cost) {
  TenantCounters& n = v.td->counters;
  uint64_t waited = c.now - std::min(c.now, r.t_ns);
  n.wait_sum_ns += waited;
  n.wait_max_ns = std::max(n.wait_max_ns, waited);
  c.state.trace.add(TraceKind::kGrant, c.now, v.td->id, r.kernel_key, d.end_ns, w.end,
                    trace_verdict(d.verdict));
  Grant& g = grant_add(c.state, *v.td, r, c.now);
  share_charge(*v.td, cost.known ? cost.ns : 0, c.now);
  g.end_ns = d.end_ns;
  g.fill = w.end != kNoEnd;
  g.risky = d.verdict == FillVerdict::kGrantRisky;
  g.budget = d.verdict == FillVerdict::kGrantBudget;
  g.cost_ns = cost.known ? lp_run(cost) : 0;
  grants_overlap_hp(c.state, c.now);
  v.busy = true;
  v.blocked = false;
  c.in_flight++;
  if (!g.fill) {
    n.grants_full++;
    return;
  }
  g.gaps = w.gaps;
  n.grants_fill++;
  if (!cost.known) n.grants_measure++;
  if (g.budget) {
    n.grants_budget++;
    risk_on_budget_grant(c.state, w.gaps, c.now, d.end_ns, r.kernel_key);
  }
  if (d.verdict == FillVerdict::kGrantRisky) {
    n.grants_risky++;
    c.state.last_risky_ns = c.now;
  }
  c.state.last_fill_tenant = v.td->id;
  gaps_filled(c.state, w.gaps, cost.known ? cost.ns : 0);
}

// What is left of the gap after the LP work already granted into it (0: none, or no gap end).
uint64_t room_left(const FillWindow& fw) {
  uint64_t from = std::max(fw.now_ns, fw.committed_end_ns);
  return fw.gap_end_ns > from && fw.gap_end_ns != kNoEnd ? fw.gap_end_ns - from : 0;
}

// Count why a request that did not fit was not granted as a risky one (see no_room_why).
// `waited`: the request has waited starve_wait (fw.risky_ok is that and the rate limit).
void count_no_room(TenantData& td, const FillWindow& fw, const LpCost& cost, bool waited) {
  td.counters.no_room_cost_ns += cost.ns;
  td.counters.no_room_left_ns += room_left(fw);
  NoRoomWhy why = NoRoomWhy::kGapOver;
  if (!waited)
    why = NoRoomWhy::kYoung;
  else if (!fw.risky_ok)
    why = NoRoomWhy::kRate;
  else if (fw.committed_end_ns > fw.now_ns)
    why = NoRoomWhy::kNotAlone;
  td.counters.no_room_why[static_cast<size_t>(why)]++;
}

// Trace why v's oldest request `head` was not granted, once per request and reason.
void trace_deny(Ctx& c, TenantData& td, const Submission& head, TraceVerdict why,
                uint64_t cost_ns = 0, uint64_t room_ns = 0) {
  if (!c.state.trace.on()) return;
  if (td.traced_deny_t_ns == head.t_ns && td.traced_deny_verdict == why) return;
  td.traced_deny_t_ns = head.t_ns;
  td.traced_deny_verdict = why;
  c.state.trace.add(TraceKind::kDeny, c.now, td.id, head.kernel_key, cost_ns, room_ns, why);
}

// The window for a request of v: the gap, the LP work committed into it, the risk allowed.
FillWindow fill_window(const Ctx& c, const Window& w, uint64_t committed, bool risky_ok) {
  const PolicyConfig& cfg = c.state.cfg;
  return FillWindow{.now_ns = c.now,
                    .gap_end_ns = w.end,
                    .committed_end_ns = committed,
                    .switch_cost_ns = cfg.switch_cost_ns,
                    .margin_ns = cfg.margin_ns,
                    .measure_gap_ns = c.state.params.measure_gap_ns,
                    .risky_ok = risky_ok};
}

// Return true if v's oldest request would fit the window were no other LP work in it.
bool fits_alone(const Ctx& c, const View& v, const Window& w) {
  const Submission* head = head_of(c, v);
  if (!head) return false;
  LpCost cost = lp_cost(v.td->keys.find(head->kernel_key), v.td->delays, c.state.params);
  FillVerdict verdict = decide_fill(fill_window(c, w, c.now, false), cost).verdict;
  return verdict == FillVerdict::kGrant || verdict == FillVerdict::kGrantToMeasure;
}

// A known kernel that does not fit: kGrantBudget if the HP tenants whose gap it would go into
// can afford what it may cost them (risk.h), else kNoRoom.
FillDecision within_budget(const Ctx& c, const Window& w, const FillWindow& fw, const LpCost& cost,
                           uint64_t lp_key) {
  uint64_t end = lp_end(fw, cost);
  LpWork work{.key = lp_key, .end_ns = end, .residual_ns = queued_after(fw, cost)};
  double damage = 0;
  if (w.end != kNoEnd && risk_admits(c.state, w.gaps, c.now, work, &damage))
    return {FillVerdict::kGrantBudget, end};
  return {FillVerdict::kNoRoom, 0};
}

// After v's request r was granted because it fits (d): let the kernels predicted to follow it
// in as one burst (burst.h), the LP work committed into the gap growing by theirs.
void open_burst_after(Ctx& c, View& v, const Window& w, const Submission& r, const FillDecision& d,
                      uint64_t* committed) {
  uint32_t room =
      c.state.cfg.max_lp_in_flight > c.in_flight ? c.state.cfg.max_lp_in_flight - c.in_flight : 0;
  BurstAsk ask{.idx = v.idx,
               .head_key = r.kernel_key,
               .head_end_ns = d.end_ns,
               .gap_end_ns = w.end,
               .cap_end_ns = sat_add(c.now, w.cap_ns),
               .now_ns = c.now,
               .in_flight_room = room,
               .gaps = &w.gaps};
  uint32_t kernels = 0;
  uint64_t end = burst_open(c.state, c.sched, *v.td, ask, &kernels);
  if (kernels == 0) return;
  c.in_flight += kernels;
  if (w.end != kNoEnd) *committed = std::max(*committed, end);
  v.turn_over = true;  // it waits for nothing now: the others' turn
}

enum class Turn { kGranted, kHeld, kEmpty };

// Grant v's oldest request if it fits: kGranted, kHeld (it waits), or kEmpty (none waits).
Turn grant_one(Ctx& c, View& v, const Window& w, uint64_t* committed) {
  const PolicyConfig& cfg = c.state.cfg;
  const FikitParams& p = c.state.params;
  if (const Submission* head = head_of(c, v)) {
    if (c.in_flight >= cfg.max_lp_in_flight) {
      v.td->held = HeldReason::kInFlight;
      trace_deny(c, *v.td, *head, TraceVerdict::kHeldInFlight);
      return Turn::kHeld;
    }
    LpCost cost = lp_cost(v.td->keys.find(head->kernel_key), v.td->delays, p);
    // Time-slicing also switches between two LP contexts.
    if (cost.known && *committed > c.now && c.state.last_fill_tenant != v.td->id)
      cost.ns += cfg.switch_cost_ns;
    bool waited = c.now >= head->t_ns + p.starve_wait_ns;
    bool rate_ok = c.state.last_risky_ns == 0 || c.now >= c.state.last_risky_ns + p.risky_every_ns;
    FillWindow fw = fill_window(c, w, *committed, waited && rate_ok);
    FillDecision d = decide_fill(fw, cost);
    // A fit too queues no more LP work than the HP could afford to find on its return: the gap's
    // prediction is a low quantile, and each miss costs all of the work queued (measured:
    // Poisson gaps predicted milliseconds long, 1.5 ms of LP work on the GPU at the return).
    const bool capped = d.verdict == FillVerdict::kGrant && queued_after(fw, cost) > w.cap_ns;
    if (capped) d = {FillVerdict::kNoRoom, 0};
    // Risk is taken for the least served tenant of the level only: the budget's room goes to
    // whoever is owed it, not to the longest kernels.
    if (d.verdict == FillVerdict::kNoRoom && c.state.budget_on && &v == c.least_served)
      d = within_budget(c, w, fw, cost, head->kernel_key);
    if (!fill_grants(d.verdict)) {
      v.td->held = d.verdict == FillVerdict::kNoRoom ? HeldReason::kNoRoom : HeldReason::kUnknown;
      if (capped)
        v.td->counters.no_room_why[static_cast<size_t>(NoRoomWhy::kCap)]++;
      else if (d.verdict == FillVerdict::kNoRoom)
        count_no_room(*v.td, fw, cost, waited);
      trace_deny(c, *v.td, *head, trace_verdict(d.verdict), cost.ns, room_left(fw));
      return Turn::kHeld;
    }
    Submission r = *head;  // grant() moves the scheduler's queue on
    if (c.sched.grant(v.idx)) {
      note_grant(c, v, r, w, d, cost);
      if (w.end != kNoEnd) *committed = d.end_ns;
      // A fit (at full speed: any grant) opens a burst; risk and measurement grants go alone.
      if (d.verdict == FillVerdict::kGrant && (cost.known || w.end == kNoEnd))
        open_burst_after(c, v, w, r, d, committed);
      v.td->held = HeldReason::kNone;
      return Turn::kGranted;
    }
  }
  v.td->held = HeldReason::kNone;
  return Turn::kEmpty;
}

// Grant what level `level` may run. Return false if no level below it may run either.
bool dispatch_level(Ctx& c, uint32_t level, uint32_t top, bool* still_waiting) {
  std::vector<View*>& mine = c.state.scratch.level;
  mine.clear();
  for (View& v : c.views)
    if (v.t->priority == level && v.t->waiting > 0) mine.push_back(&v);
  if (mine.empty()) return true;
  Window w{kNoEnd, c.state.scratch.gaps};
  w.gaps.clear();
  if (level != top && !window_for(c, level, &w)) {
    for (View* v : mine)
      if (const Submission* head = head_of(c, *v))
        trace_deny(c, *v->td, *head, TraceVerdict::kHeldAboveBusy);
    *still_waiting = true;
    return false;
  }
  w.cap_ns = residual_cap_ns(c.state, w.gaps);
  uint64_t committed = grants_committed_end(c.state, c.now);
  share_order(mine, c.now);
  c.least_served = mine[0];
  bool owed = share_owed(mine, c.now);
  // One request per tenant per turn, least served first, while any is granted (share.h).
  for (bool granted = true; granted;) {
    granted = false;
    for (View* v : mine) {
      if (v->turn_over) continue;
      Turn t = grant_one(c, *v, w, &committed);
      if (t == Turn::kGranted) {
        granted = true;
        continue;
      }
      v->turn_over = true;
      if (t != Turn::kHeld) continue;
      *still_waiting = true;
      // The least served is owed the gap: the others (and the levels below) wait for the LP work
      // in it to end, if that leaves room for its request.
      if (v == mine[0] && owed && fits_alone(c, *v, w)) return false;
    }
  }
  return true;
}

constexpr uint64_t kQuietMaxNs = 10'000'000;
// How often an active HP tenant is looked at, at least, while a budget is set (its drains).

// Until when nothing this dispatch waits for is expected (SchedulerApi::quiet_until; 0: it cannot
// tell): the earliest of the predicted end of each busy HP tenant's request (a low quantile of
// its recent request latencies from the request's start), the predicted end of each LP grant in
// flight, and the policy's own wake-up.
uint64_t quiet_time(const Ctx& c) {
  uint64_t quiet = std::min(c.wake, c.now + kQuietMaxNs);
  for (const View& v : c.views) {
    if (v.t->priority != kPriorityHigh || v.t->outstanding == 0) continue;
    const RequestMeter& m = v.td->requests;
    if (!m.open() || m.low_latency_ns() == 0) return 0;
    quiet = std::min(quiet, m.open_since_ns() + m.low_latency_ns());
  }
  for (const Grant& g : c.state.grants) {
    if (g.end_ns == UINT64_MAX) return 0;
    quiet = std::min(quiet, g.end_ns);
  }
  // An open burst's kernels ring nothing: look at them by its predicted end.
  if (uint64_t burst_end = bursts_committed_end(c.state, c.now); burst_end != 0)
    quiet = std::min(quiet, burst_end);
  return quiet > c.now ? quiet : 0;
}

}  // namespace

bool tenant_active(const FikitState& st, const TenantInfo& t, const TenantData& td, uint64_t now_ns,
                   uint64_t* inactive_at) {
  *inactive_at = 0;
  if (t.outstanding > 0 || t.waiting > 0 || t.lp_in_flight > 0 || t.issuing_ns != 0) return true;
  uint64_t last = std::max(t.last_submit_ns, gap_start(t, td));
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
  Ctx c{.state = st,
        .sched = sched,
        .now = now_ns,
        .views = st.scratch.views,
        .in_flight = sched.lp_in_flight()};
  classify(c);
  bursts_check(st, sched, now_ns);
  update_markers(st, sched, now_ns);
  uint32_t top = kPriorityLevels;
  for (const View& v : c.views)
    if (v.active) top = std::min(top, v.t->priority);
  bool still_waiting = false;
  for (uint32_t level = top; level < kPriorityLevels; level++)
    if (!dispatch_level(c, level, top, &still_waiting)) break;
  sched.quiet_until(st.params.quiet_sleep ? quiet_time(c) : 0);
  uint64_t wake = 0;
  if (still_waiting && c.wake != kNoEnd) {
    st.wakeups_asked++;
    wake = std::max(c.wake, now_ns + st.params.min_recheck_ns);
  }
  // Drains of 2.1 clients do not ring the doorbell and each overwrites the last: a broker asleep
  // for its idle 90 ms would see one request where there were a hundred (measured: 180 ms
  // "requests" of 130 kernels with the HP alone). measure_poll looks at an active HP for them.
  const uint64_t poll = st.params.measure_poll_ns;
  if (poll > 0 && st.budget_on && std::any_of(c.views.begin(), c.views.end(), [](const View& v) {
        return v.active && v.t->priority == kPriorityHigh;
      }))
    wake = wake ? std::min(wake, now_ns + poll) : now_ns + poll;
  sched.wake_at(wake);
}

}  // namespace fikit::broker::fikit_policy
