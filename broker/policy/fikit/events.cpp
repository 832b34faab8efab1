// The fikit policy's event entry points: measurement of kernel durations, then the gap and the
// grant each event concerns.
#include "policy/fikit/events.h"

#include <algorithm>

#include "policy/fikit/gap.h"
#include "policy/fikit/grants.h"
#include "policy/fikit/risk.h"

namespace fikit::broker::fikit_policy {

namespace {

void remember_slot(TenantData& td, uint32_t position, uint16_t slot) {
  td.issue_pos[position & kRingMask] = position;
  td.issue_slot[position & kRingMask] = slot < kStreamSlots ? slot : kStreamSlots - 1;
}

// The latest c can have completed (Completion::latest_ns).
uint64_t completion_latest(const Completion& c) { return c.latest_ns ? c.latest_ns : c.done_ns; }

uint16_t slot_of(const TenantData& td, uint32_t position) {
  if (td.issue_pos[position & kRingMask] != position) return kNoSlot;
  return td.issue_slot[position & kRingMask];
}

// Record the duration of a launch seen complete through its own marker, from its issue. If the
// launch before it on its stream was seen complete only after this one was issued, this one
// queued behind it and started at an unknown time between its issue and that completion (itself
// seen late by the broker's polling lag; on a busy host timing from either end makes 50 us
// kernels look 30 us or milliseconds long): no sample. On time-slicing a launch also waits for
// its context: if another tenant's launch completed between its issue and its end, it may have
// waited for that context's timeslice (40 us LP kernels beside another LP tenant measured 2 ms,
// 50x, on the simulated GPU): no sample; if the last launch seen complete before its issue was
// another tenant's, the GPU switched to its context first: the switch cost is not the kernel's.
// A sample is thus the kernel plus the error of the broker's estimate of its end (done_ns, the
// midpoint of when it can have ended); whether a launch queued or another context ran is judged
// by the latest time each can have ended (latest_ns), so that no queueing is taken for a kernel.
// Return it (0: none).
uint64_t measure(const FikitState& st, TenantData& td, const Completion& c, uint16_t slot) {
  uint64_t start = c.issue_ns;
  TenantData::StreamDone* ld = slot < kStreamSlots ? &td.last_done[slot] : nullptr;
  bool queued = ld && ld->valid && ld->position != c.position &&
                pos_at_or_after(c.position, ld->position) && ld->done_ns > c.issue_ns;
  bool other_before = st.last_done_tenant != td.id && st.last_done_tenant != UINT32_MAX;
  if (st.cfg.switch_cost_ns > 0 && other_before) {
    if (st.last_done_ns > c.issue_ns) queued = true;  // another context ran meanwhile
    start += st.cfg.switch_cost_ns;
  }
  uint64_t sample = 0;
  if (c.exact && !queued && c.done_ns > start) {
    sample = c.done_ns - start;
    KeyStats& ks = td.keys.touch(c.kernel_key);
    ks.duration.add(sample);
    ks.duration_samples++;
    td.counters.durations++;
  }
  if (ld && (!ld->valid || pos_at_or_after(c.position, ld->position)))
    *ld = {c.position, completion_latest(c), true, c.exact};
  return sample;
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

void ev_submit(FikitState& st, TenantData& td, const TenantInfo& t, const Submission& s) {
  td.counters.kernels++;
  st.trace.add(TraceKind::kSubmit, s.t_ns, td.id, s.kernel_key, s.position);
  gap_close(st, td, s.t_ns);
  td.hint_end_ns = 0;  // a hint is about the gap after the launches before it
  // LP: learn the kernel chain bursts are sized from (burst.h).
  if (t.priority != kPriorityHigh && td.last_key != 0)
    if (KeyStats* prev = td.keys.find(td.last_key)) prev->next_key = s.kernel_key;
  KeyStats& ks = td.keys.touch(s.kernel_key);
  ks.seen++;
  td.last_key = s.kernel_key;
  td.submits_since_idle++;
  if (t.priority != kPriorityHigh) return;
  td.requests.on_submit(s.t_ns, !st.grants.empty(), s.kernel_key);
  note_host_syncs(td, t);
  remember_slot(td, s.position, s.stream_slot);
  if (ks.duration_samples < st.params.hp_marker_learn_samples) td.unmeasured_ns = s.t_ns;
}

void ev_complete(FikitState& st, TenantData& td, const TenantInfo& /*t*/, const Completion& c) {
  Grant* g = td.priority == kPriorityHigh ? nullptr : grant_find(st, td.id, c.position);
  uint64_t sample = measure(st, td, c, g ? g->stream_slot : slot_of(td, c.position));
  if (completion_latest(c) >= st.last_done_ns) {
    st.last_done_tenant = td.id;
    st.last_done_ns = completion_latest(c);
  }
  st.trace.add(TraceKind::kComplete, c.done_ns, td.id, c.kernel_key, c.issue_ns, c.done_ns);
  if (g) grant_complete(st, td, *g, c, sample);
}

void ev_idle(FikitState& st, TenantData& td, const TenantInfo& t, uint64_t t_ns) {
  uint64_t latency = 0;
  bool overlapped = false;
  if (t.priority == kPriorityHigh && td.requests.on_drain(t_ns, &latency, &overlapped))
    risk_on_request(st, td, latency, overlapped, td.requests.last_kind());
  gap_open(st, td, t, t_ns);
}

void ev_revoke(FikitState& st, TenantData& td, const TenantInfo& /*t*/, uint32_t position) {
  grant_revoke(st, td.id, position);
}

}  // namespace fikit::broker::fikit_policy
