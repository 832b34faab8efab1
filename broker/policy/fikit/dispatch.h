// The fikit dispatch: priority levels and gap filling. The highest active level runs freely
// (its requests are granted at once, within the LP in-flight bound); each lower level fills the
// predicted gaps of all active levels above it, best level first; one tenant's requests are
// granted in order, several per gap while they fit, the tenants of a level taking turns, least
// served first (share.h).
#pragma once

#include <cstdint>

#include "policy/fikit/policy_state.h"
#include "policy/policy.h"

namespace fikit::broker::fikit_policy {

void fikit_dispatch(FikitState& st, SchedulerApi& sched, uint64_t now_ns);

// Return true if tenant `t` counts as active at now_ns: something outstanding or waiting, or
// idle for less than its inactivity threshold (the longer of FikitParams::inactive_ns and twice
// its longest usual gap after its last key). *inactive_at gets when it stops counting (0: n/a).
bool tenant_active(const FikitState& st, const TenantInfo& t, const TenantData& td, uint64_t now_ns,
                   uint64_t* inactive_at);

}  // namespace fikit::broker::fikit_policy
