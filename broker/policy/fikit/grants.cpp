// The fikit policy's LP grants in flight: record, find by (tenant, position), end, revoke.
#include "policy/fikit/grants.h"

#include <algorithm>

#include "policy/fikit/burst.h"
#include "policy/fikit/gap.h"

namespace fikit::broker::fikit_policy {

Grant& grant_add(FikitState& st, const TenantData& td, const Submission& r, uint64_t now_ns) {
  Grant g{};
  g.tenant_id = td.id;
  g.position = r.position;
  g.key = r.kernel_key;
  g.stream_slot = r.stream_slot < kStreamSlots ? r.stream_slot : kStreamSlots - 1;
  g.grant_ns = now_ns;
  g.end_ns = UINT64_MAX;
  st.grants.push_back(std::move(g));
  return st.grants.back();
}

Grant* grant_find(FikitState& st, uint32_t tenant_id, uint32_t position) {
  auto it = std::find_if(st.grants.begin(), st.grants.end(), [&](const Grant& g) {
    return g.tenant_id == tenant_id && g.position == position;
  });
  return it == st.grants.end() ? nullptr : &*it;
}

void grant_complete(FikitState& st, TenantData& td, const Grant& g, const Completion& c,
                    uint64_t sample_ns) {
  // Only a fill's delay predicts a fill's: at full speed the client launches back to back from
  // a busy thread (measured: ms-long delays on a loaded host that fills never see).
  if (g.fill && !g.burst && c.issue_ns >= g.grant_ns) td.delays.add(c.issue_ns - g.grant_ns);
  if (g.fill) td.counters.fill_busy_ns += sample_ns;
  if (g.fill) td.counters.harvest_ns += sample_ns ? sample_ns : g.cost_ns;
  // The completion is seen up to the broker's polling lag late: within miss_slack of the return,
  // the LP work may well have ended first. Only a gap that ended before its predicted end is the
  // key's fault: a risky grant was known to risk it, and a fill that outlasted a gap that lasted
  // as predicted ran longer than its kernel was predicted to (an overrun, counted apart: charged
  // to the key, overruns starve LP work behind memoryless HP gaps, measured on the H100).
  for (const GapRef& r : g.gaps) {
    if (g.risky || g.budget || !r.returned_ns ||
        c.done_ns <= r.returned_ns + st.params.miss_slack_ns)
      continue;
    if (r.returned_ns < r.end_ns)
      gap_fill_missed(st, r);
    else
      td.counters.fill_overruns++;
  }
  grant_revoke(st, g.tenant_id, g.position);
}

void grant_revoke(FikitState& st, uint32_t tenant_id, uint32_t position) {
  std::erase_if(st.grants,
                [&](const Grant& g) { return g.tenant_id == tenant_id && g.position == position; });
}

void grants_forget(FikitState& st, uint32_t tenant_id) {
  std::erase_if(st.grants, [&](const Grant& g) { return g.tenant_id == tenant_id; });
}

void grants_owner_returned(FikitState& st, uint32_t tenant_id, uint64_t epoch, uint64_t t_ns) {
  for (Grant& g : st.grants)
    for (GapRef& r : g.gaps)
      if (r.tenant_id == tenant_id && r.epoch == epoch && !r.returned_ns) r.returned_ns = t_ns;
}

bool grants_overlap_hp(FikitState& st, uint64_t t_ns) {
  bool back = false;
  for (auto& [id, td] : st.tenants) {
    if (td->priority != kPriorityHigh) continue;
    back |= td->requests.open() && td->requests.open_since_ns() <= t_ns;
    td->requests.on_lp_granted();
  }
  return back;
}

uint64_t grants_committed_end(const FikitState& st, uint64_t now_ns) {
  uint64_t end = bursts_committed_end(st, now_ns);
  for (const Grant& g : st.grants)
    end = std::max(end, g.end_ns > now_ns ? g.end_ns : now_ns + st.cfg.margin_ns);
  return end;
}

}  // namespace fikit::broker::fikit_policy
