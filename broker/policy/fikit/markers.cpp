// HP completion-marker sampling: choose each HP tenant's share, tell the scheduler on change.
#include "policy/fikit/markers.h"

#include <algorithm>

namespace fikit::broker::fikit_policy {

uint64_t nosync_limit(const TenantData& td, const FikitParams& p) {
  const uint64_t base = p.hp_nosync_submits;
  return std::clamp<uint64_t>(2 * td.launches_per_sync, base, base * kNosyncLearnedMax);
}

uint32_t marker_every_for(const TenantData& td, const FikitParams& p, uint64_t now_ns) {
  if (p.hp_marker_every == 0) return 0;
  if (p.hp_nosync_submits && td.submits_since_idle >= nosync_limit(td, p)) return 1;
  if (td.unmeasured_ns && now_ns < td.unmeasured_ns + p.inactive_ns && p.hp_marker_learn_every)
    return p.hp_marker_learn_every;
  return p.hp_marker_every;
}

void update_markers(FikitState& st, SchedulerApi& sched, uint64_t now_ns) {
  for (const TenantView& v : st.scratch.views) {
    if (v.t->priority != kPriorityHigh) continue;
    uint32_t every = marker_every_for(*v.td, st.params, now_ns);
    if (every == v.td->marker_every) continue;
    v.td->marker_every = every;
    sched.set_marker_every(v.idx, every);
  }
}

}  // namespace fikit::broker::fikit_policy
