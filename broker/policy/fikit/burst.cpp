// LP bursts: size, open, close, and the grants of the kernels launched inside one.
#include "policy/fikit/burst.h"

#include <algorithm>

#include "policy/fikit/fill_decision.h"
#include "policy/fikit/gap.h"
#include "policy/fikit/grants.h"
#include "policy/fikit/share.h"

namespace fikit::broker::fikit_policy {

namespace {

// Ring positions a burst of n kernels needs: each launch is a request and then its kLpLaunched.
constexpr uint32_t kPositionsPerKernel = 2;

// The GPU time of key's kernel once it is queued behind the LP work before it (no grant delay:
// the client launches it at once), or 0 if it was never measured.
uint64_t queued_run(const TenantData& td, const KeyStats* ks, const FikitParams& p) {
  LpCost c = lp_cost(ks, td.delays, p);
  return c.known ? lp_run(c) : 0;
}

}  // namespace

uint64_t burst_open(FikitState& st, SchedulerApi& sched, TenantData& td, const BurstAsk& ask,
                    uint32_t* kernels) {
  *kernels = 0;
  const FikitParams& p = st.params;
  uint32_t most = std::min(p.burst_max, ask.in_flight_room);
  if (most == 0) return ask.head_end_ns;
  const bool fill = ask.gap_end_ns != kNoEnd;
  uint64_t end = ask.head_end_ns;
  uint64_t longest = 0;
  uint32_t n = 0;
  if (fill) {
    // Follow the kernel chain while each next kernel is known and still ends inside the gap,
    // with the reserve a single fill keeps (fill_decision.h), and within the cap on LP work
    // queued (risk.h residual_cap_ns).
    const uint64_t reserve = sat_add(st.cfg.switch_cost_ns, st.cfg.margin_ns);
    const KeyStats* ks = td.keys.find(ask.head_key);
    for (uint64_t key = ks ? ks->next_key : 0; key != 0 && n < most; n++) {
      ks = td.keys.find(key);
      uint64_t run = queued_run(td, ks, p);
      if (run == 0 || sat_add(sat_add(end, run), reserve) > ask.gap_end_ns ||
          sat_add(end, run) > ask.cap_end_ns)
        break;
      end += run;
      longest = std::max(longest, run);
      key = ks->next_key;
    }
  } else {
    // Nothing above to protect: as many as the bound allows, for burst_full at most.
    n = most;
  }
  if (n == 0) return ask.head_end_ns;
  // The last moment a kernel may still launch: the longest of them then still ends in the gap.
  uint64_t until =
      fill ? ask.gap_end_ns - std::min(ask.gap_end_ns, sat_add(longest, st.cfg.margin_ns))
           : sat_add(ask.now_ns, p.burst_full_ns);
  if (until <= ask.now_ns) return ask.head_end_ns;
  if (!sched.open_burst(ask.idx, n * kPositionsPerKernel, until)) return ask.head_end_ns;
  BurstState& b = td.burst;
  b.open = true;
  b.fill = fill;
  b.until_ns = until;
  b.end_ns = fill ? end : until;
  if (fill)
    b.gaps = *ask.gaps;
  else
    b.gaps.clear();
  td.counters.bursts++;
  td.counters.burst_kernels += n;
  *kernels = n;
  return b.end_ns;
}

void bursts_check(FikitState& /*st*/, SchedulerApi& sched, uint64_t now_ns) {
  uint32_t n = sched.tenant_count();
  for (uint32_t i = 0; i < n; i++) {
    TenantInfo& t = sched.tenant(i);
    auto* td = static_cast<TenantData*>(t.policy_data);
    if (!td || !td->burst.open) continue;
    // The client stops at the deadline by itself; a level above that is back ends it at once.
    if (now_ns >= td->burst.until_ns) {
      td->burst.open = false;
    } else if (sched.busy_above(t.priority)) {
      sched.close_burst(i);
      td->burst.open = false;
    }
  }
}

uint64_t bursts_committed_end(const FikitState& st, uint64_t now_ns) {
  uint64_t end = 0;
  for (const auto& [id, td] : st.tenants)
    if (td->burst.open && td->burst.until_ns > now_ns) end = std::max(end, td->burst.end_ns);
  return end;
}

void ev_burst_grant(FikitState& st, TenantData& td, const TenantInfo& /*t*/, const Submission& s) {
  const BurstState& b = td.burst;
  uint64_t cost = queued_run(td, td.keys.find(s.kernel_key), st.params);
  Grant& g = grant_add(st, td, s, s.t_ns);
  g.end_ns = b.end_ns;
  g.fill = b.fill;
  g.burst = true;
  g.cost_ns = cost;
  td.counters.grants_burst++;
  (b.fill ? td.counters.grants_fill : td.counters.grants_full)++;
  share_charge(td, cost, s.t_ns);
  st.trace.add(TraceKind::kGrant, s.t_ns, td.id, s.kernel_key, b.end_ns, b.fill ? b.end_ns : kNoEnd,
               TraceVerdict::kGrantBurst);
  // An HP request that began before this launch was back before the burst was closed (the
  // launch went in blind: counted, the cost of bursts).
  if (grants_overlap_hp(st, s.t_ns)) td.counters.burst_late++;
  if (!b.fill) return;
  g.gaps = b.gaps;
  gaps_filled(st, b.gaps, cost);
}

}  // namespace fikit::broker::fikit_policy
