// HP completion-marker sampling. The highest priority never waits for the broker, so the broker
// sees its kernels end only through its synchronizing calls (drains) and through completion
// markers the client puts after a share of its launches, a share the policy chooses here: few
// (1 in hp_marker_every) once the tenant's kernels are measured, more (1 in
// hp_marker_learn_every) while it launches keys with few measured durations, and one per launch
// for a tenant that stopped draining (it never synchronizes: only a marker after its last
// launch shows it idle, so that levels below can fill its gaps). A marker costs ~2 us of GPU time
// on the HP stream on an H100 (measured; docs/POLICY.md), hence sampling. "Stopped draining"
// is learned: past hp_nosync_submits launches, or twice as many as the tenant recently made
// between two synchronizing calls (eager ResNet-50 makes 342 per request), up to
// kNosyncLearnedMax times hp_nosync_submits.
#pragma once

#include <cstdint>

#include "policy/fikit/policy_state.h"
#include "policy/policy.h"

namespace fikit::broker::fikit_policy {

inline constexpr uint64_t kNosyncLearnedMax = 16;

// Launches without a drain after which td gets a marker on every launch.
uint64_t nosync_limit(const TenantData& td, const FikitParams& p);

// The marker share (1 in N, 0: none) that HP tenant td should use at now_ns.
uint32_t marker_every_for(const TenantData& td, const FikitParams& p, uint64_t now_ns);

// Ask the scheduler for each HP tenant's share where it changed (views: this dispatch's tenants).
void update_markers(FikitState& st, SchedulerApi& sched, uint64_t now_ns);

}  // namespace fikit::broker::fikit_policy
