// oracle: the fikit policy given the true gaps, for the scenario benchmark's upper bound.
//
// Test workloads that know how long they will stay idle say so with fikit_hint_idle(idle_ns)
// (a kHintIdle ring entry) right before each gap. The oracle fills exactly as fikit does (same
// levels, same LP duration measurement, same fit rule with switch cost and margin) but takes each
// gap's end from the hint instead of predicting it; a gap without a hint is not filled. Profiles
// are neither loaded nor saved, so benchmark runs do not feed each other.
//
// The scheduler passes every kHintIdle entry to PolicyOps::on_hint_idle (sched_ring.cpp); without
// hints the oracle never fills (the levels still run as fikit's: full speed when nothing above
// is active).
#include "policy/fikit/events.h"
#include "policy/fikit/fikit.h"
#include "policy/fikit/ops.h"

namespace fikit::broker {

namespace fp = fikit_policy;

namespace {
void* oracle_init(const PolicyConfig& cfg) { return fp::ops_init(cfg, true); }
}  // namespace

void fikit_oracle_hint_idle(void* state, TenantInfo& t, uint64_t idle_ns, uint64_t t_ns) {
  auto* st = static_cast<fp::FikitState*>(state);
  auto* td = static_cast<fp::TenantData*>(t.policy_data);
  if (st && td) fp::ev_hint_idle(*st, *td, idle_ns, t_ns);
}

const PolicyOps kOraclePolicy = {
    .name = "oracle",
    .description = "fikit given the true gaps (fikit_hint_idle), for benchmarks",
    .init = oracle_init,
    .exit = fp::ops_exit,
    .on_tenant_add = fp::ops_tenant_add,
    .on_tenant_remove = fp::ops_tenant_remove,
    .on_submit = fp::ops_on_submit,
    .on_complete = fp::ops_on_complete,
    .on_idle = fp::ops_on_idle,
    .dispatch = fp::ops_dispatch,
    .tenant_stats = fp::ops_tenant_stats,
    .on_hint_idle = fikit_oracle_hint_idle,
    .check_opts = fikit_policy_opts_check,
};

}  // namespace fikit::broker
