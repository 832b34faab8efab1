// Policy `priority`: a level runs only while every higher level is drained.
//
// A request of a tenant at level L is granted only while no tenant of a higher level (smaller
// number) has launches outstanding (SchedulerApi::busy_above): HP work is never delayed by queued
// LP work, and LP runs at full speed when no HP tenant is busy. It does not look at kernel
// durations, so an LP kernel granted just before HP work arrives still overlaps it: the HP
// slowdown is bounded by one LP kernel per LP tenant, not by the gap that was left. No bound on LP
// in flight is needed (PolicyConfig.max_lp_in_flight is ignored): everything granted was granted
// while the levels above were idle. Known limit: an HP tenant that launches and never
// synchronizes (and has no markers) stays "outstanding" and holds LP back; the `fikit` policy
// handles such tenants with measured durations.
#include "policy/policy.h"

namespace fikit::broker {
namespace {

void priority_dispatch(void*, SchedulerApi& sched, uint64_t) {
  for (uint32_t i = 0; i < sched.tenant_count(); i++) {
    TenantInfo& t = sched.tenant(i);
    if (t.waiting == 0 || sched.busy_above(t.priority)) continue;
    while (sched.grant(i)) {
    }
  }
}

}  // namespace

extern const PolicyOps kPriorityPolicy = {
    .name = "priority",
    .description = "a level runs only while all higher levels are drained",
    .dispatch = priority_dispatch,
};

}  // namespace fikit::broker
