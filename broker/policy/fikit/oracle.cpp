// oracle: the fikit policy given the true gaps, for the scenario benchmark's upper bound.
//
// Test workloads that know how long they will stay idle say so with fikit_hint_idle(idle_ns)
// (a kHintIdle ring entry) right before each gap. The oracle fills exactly as fikit does (same
// levels, same LP duration measurement, same fit rule with switch cost and margin) but takes each
// gap's end from the hint instead of predicting it: it is fikit with this gap source (its ops
// table is built beside fikit's, in ops.cpp). A gap without a hint is not filled. Profiles are
// neither loaded nor saved, so benchmark runs do not feed each other.
//
// The scheduler passes every kHintIdle entry to PolicyOps::on_hint_idle (sched_ring.cpp; gap.cpp
// gap_hint keeps it); without hints the oracle never fills (the levels still run as fikit's: full
// speed when nothing above is active).
#include "policy/fikit/gap.h"

namespace fikit::broker::fikit_policy {

GapEstimate gap_from_hints(const FikitState& /*st*/, const TenantData& td, uint64_t /*key*/,
                           uint64_t start_ns, uint64_t /*elapsed_ns*/) {
  GapEstimate e;
  if (td.hint_end_ns <= start_ns) return e;
  e.source = GapSource::kKey;
  e.end_ns = e.raw_end_ns = td.hint_end_ns - start_ns;
  return e;
}

}  // namespace fikit::broker::fikit_policy
