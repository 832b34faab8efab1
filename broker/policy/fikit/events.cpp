// Event handling: measurement of durations and gaps, and missed-prediction detection.
#include "policy/fikit/events.h"

#include <algorithm>

namespace fikit::broker::fikit_policy {

namespace {

void remember_slot(TenantData& td, uint32_t position, uint16_t slot) {
  td.issue_pos[position & kRingMask] = position;
  td.issue_slot[position & kRingMask] = slot < kStreamSlots ? slot : kStreamSlots - 1;
}

uint16_t slot_of(const TenantData& td, uint32_t position) {
  if (td.issue_pos[position & kRingMask] != position) return kNoSlot;
  return td.issue_slot[position & kRingMask];
}

// The gap's owner came back (returned_ns) while a fill granted into that gap ran until done_ns.
void count_fill_miss(FikitState& st, const GapRef& r) {
  auto it = st.tenants.find(r.tenant_id);
  if (it == st.tenants.end()) return;
  TenantData& owner = *it->second;
  if (owner.collided_epoch == r.epoch) return;  // one miss per gap
  owner.collided_epoch = r.epoch;
  KeyStats* ks = owner.keys.find(r.key);
  if (!ks) ks = &owner.keys.touch(r.key);
  fill_missed(*ks, st.params);
  owner.n.fill_misses++;
}

// The tenant submitted at t_ns: close its gap, learn from it, and mark the fills still running
// in it (whether they collided is decided when they complete, from their completion time).
void close_gap(FikitState& st, TenantData& td, uint64_t t_ns) {
  GapState& g = td.gap;
  if (!g.open) return;
  g.open = false;
  g.returned_ns = t_ns;
  uint64_t actual = t_ns > g.start_ns ? t_ns - g.start_ns : 0;
  KeyStats& ks = td.keys.touch(g.key);
  gap_observed(ks, actual);
  td.all_gaps.add(actual);
  td.n.gaps++;
  if (g.at_start.known()) {
    gap_scored(ks, g.at_start, actual, st.params);
    (actual >= g.at_start.end_ns ? td.n.gap_hits : td.n.gap_misses)++;
    td.n.pred_sum_ns += g.at_start.end_ns;
    td.n.actual_sum_ns += actual;
  } else {
    td.n.gap_unpredicted++;
  }
  if (g.filled) {
    td.n.gaps_filled++;
    filled_gap_closed(ks, st.params);
  }
  for (Grant& gr : st.grants)
    for (GapRef& r : gr.gaps)
      if (r.tenant_id == td.id && r.epoch == g.epoch && !r.returned_ns) r.returned_ns = t_ns;
}

// Record the duration of a launch seen complete through its own marker, from its issue. If the
// launch before it on its stream was seen complete only after this one was issued, this one
// queued behind it, and started at an unknown time between its issue and that completion (seen
// late by as much as the broker's polling lags: on a busy host, starting it there made 50 us
// kernels look 30 us long, issue-to-done made them look milliseconds long): no sample. A sample
// is thus the kernel plus the lag of seeing its marker, never less than the kernel. Return it
// (0: none).
uint64_t measure(TenantData& td, const Completion& c, uint16_t slot) {
  uint64_t start = c.issue_ns;
  TenantData::StreamDone* ld = slot < kStreamSlots ? &td.last_done[slot] : nullptr;
  bool queued = ld && ld->valid && ld->position != c.position &&
                pos_at_or_after(c.position, ld->position) && ld->done_ns > c.issue_ns;
  uint64_t sample = 0;
  if (c.exact && !queued && c.done_ns > start) {
    sample = c.done_ns - start;
    KeyStats& ks = td.keys.touch(c.kernel_key);
    ks.duration.add(sample);
    ks.duration_samples++;
    td.n.durations++;
  }
  if (ld && (!ld->valid || pos_at_or_after(c.position, ld->position)))
    *ld = {c.position, c.done_ns, true, c.exact};
  return sample;
}

// The grant a LP completion belongs to: the one of its request's position (the scheduler names
// a LP launch by its request), else the tenant's oldest grant of the same key, else its oldest.
std::vector<Grant>::iterator grant_of(FikitState& st, const TenantData& td, const Completion& c) {
  auto mine = [&](const Grant& gr) { return gr.tenant_id == td.id; };
  auto it = std::find_if(st.grants.begin(), st.grants.end(), [&](const Grant& gr) {
    return mine(gr) && gr.position_known && gr.position == c.position;
  });
  if (it == st.grants.end())
    it = std::find_if(st.grants.begin(), st.grants.end(),
                      [&](const Grant& gr) { return mine(gr) && gr.key == c.kernel_key; });
  if (it == st.grants.end()) it = std::find_if(st.grants.begin(), st.grants.end(), mine);
  return it;
}

// How many launches an HP tenant makes between its synchronizing calls: one that synchronizes
// is seen idle at its syncs, so markers on every launch (markers.cpp) wait until well past that.
void note_host_syncs(TenantData& td, const TenantInfo& t) {
  if (t.host_syncs != td.host_syncs_seen) {
    td.host_syncs_seen = t.host_syncs;
    td.launches_per_sync =
        std::max(td.submits_since_sync, td.launches_per_sync - td.launches_per_sync / 16);
    td.submits_since_sync = 0;
  }
  td.submits_since_sync++;
}

}  // namespace

GapEstimate hinted_gap(const TenantData& td, uint64_t start_ns) {
  GapEstimate e;
  if (td.hint_end_ns <= start_ns) return e;
  e.source = GapSource::kKey;
  e.end_ns = e.raw_end_ns = td.hint_end_ns - start_ns;
  return e;
}

void ev_submit(FikitState& st, TenantData& td, const TenantInfo& t, const Submission& s) {
  td.n.kernels++;
  st.trace.add(TraceKind::kSubmit, s.t_ns, td.id, s.kernel_key, s.position);
  close_gap(st, td, s.t_ns);
  td.hint_end_ns = 0;  // a hint is about the gap after the launches before it
  KeyStats& ks = td.keys.touch(s.kernel_key);
  ks.seen++;
  td.last_key = s.kernel_key;
  td.submits_since_idle++;
  if (t.priority == kPriorityHigh) {
    note_host_syncs(td, t);
    remember_slot(td, s.position, s.stream_slot);
    if (ks.duration_samples < st.params.hp_marker_learn_samples) td.unmeasured_ns = s.t_ns;
  } else {
    td.waiting.push_back({s.position, true, s.kernel_key, s.t_ns, s.stream_slot});
  }
}

void ev_complete(FikitState& st, TenantData& td, const Completion& c) {
  auto g = td.priority == kPriorityHigh ? st.grants.end() : grant_of(st, td, c);
  uint16_t slot = g != st.grants.end() ? g->stream_slot : slot_of(td, c.position);
  uint64_t sample = measure(td, c, slot);
  st.trace.add(TraceKind::kComplete, c.done_ns, td.id, c.kernel_key, c.issue_ns, c.done_ns);
  if (g == st.grants.end()) return;
  // Only a fill's delay predicts a fill's: at full speed the client launches back to back from
  // a busy thread (measured: ms-long delays on a loaded host that fills never see).
  if (g->fill && c.issue_ns >= g->grant_ns) td.delays.add(c.issue_ns - g->grant_ns);
  if (g->fill) td.n.fill_busy_ns += sample;
  // The completion is seen up to the broker's polling lag late: within miss_slack of the return,
  // the LP work may well have ended first. Only a gap that ended before its predicted end is the
  // key's fault: a risky grant was known to risk it, and a fill that outlasted a gap that lasted
  // as predicted ran longer than its kernel was predicted to (counting those against the key
  // starved LP work behind memoryless HP gaps on the H100).
  for (const GapRef& r : g->gaps) {
    if (g->risky || !r.returned_ns || c.done_ns <= r.returned_ns + st.params.miss_slack_ns)
      continue;
    if (r.returned_ns < r.end_ns)
      count_fill_miss(st, r);
    else
      td.n.fill_overruns++;
  }
  st.grants.erase(g);
}

void ev_idle(FikitState& st, TenantData& td, const TenantInfo& t, uint64_t t_ns) {
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
  g.at_start = predict_gap(td.keys.find(g.key), &td.all_gaps, 0, st.params);
  if (st.oracle) g.at_start = hinted_gap(td, t_ns);
  st.trace.add(TraceKind::kIdle, t_ns, td.id, g.key, g.at_start.known() ? g.at_start.end_ns : 0);
}

void ev_hint_idle(FikitState& st, TenantData& td, uint64_t idle_ns, uint64_t t_ns) {
  td.hint_end_ns = t_ns + idle_ns;
  // The hint may be seen after the drain that opened the gap.
  if (st.oracle && td.gap.open && td.hint_end_ns > td.gap.start_ns)
    td.gap.at_start = hinted_gap(td, td.gap.start_ns);
}

Grant& ev_granted(FikitState& st, TenantData& td, uint64_t now_ns) {
  Grant gr{};
  gr.tenant_id = td.id;
  gr.grant_ns = now_ns;
  gr.end_ns = UINT64_MAX;
  gr.stream_slot = kNoSlot;
  if (!td.waiting.empty()) {
    const Pending& p = td.waiting.front();
    gr.position = p.position;
    gr.position_known = p.position_known;
    gr.key = p.key;
    gr.stream_slot = p.stream_slot < kStreamSlots ? p.stream_slot : kStreamSlots - 1;
    td.waiting.pop_front();
  }
  st.grants.push_back(std::move(gr));
  return st.grants.back();
}

void ev_forget_grants(FikitState& st, uint32_t tenant_id) {
  std::erase_if(st.grants, [&](const Grant& g) { return g.tenant_id == tenant_id; });
}

}  // namespace fikit::broker::fikit_policy
