// The fikit policy's entry points for the scheduler's events: kernel measurement (durations from
// completion markers), counting, and handing each event to the gap (gap.h) and the grant
// (grants.h) it concerns. Every function takes (state, tenant data, tenant, event...), the shape
// ops.cpp adapts to the ops table.
#pragma once

#include "policy/fikit/policy_state.h"
#include "policy/policy.h"

namespace fikit::broker::fikit_policy {

// An HP launch record (priority 0: already running) or a LP request was seen.
void ev_submit(FikitState& st, TenantData& td, const TenantInfo& t, const Submission& s);
// A launch completed; `c.exact` ones give a duration sample. A LP launch ends its grant.
void ev_complete(FikitState& st, TenantData& td, const TenantInfo& t, const Completion& c);
// td drained at t_ns: an HP request ends (request_meter.h, risk.h), then its gap opens (gap.h).
void ev_idle(FikitState& st, TenantData& td, const TenantInfo& t, uint64_t t_ns);
// The scheduler ended the grant of td's request at `position` without a completion.
void ev_revoke(FikitState& st, TenantData& td, const TenantInfo& t, uint32_t position);

}  // namespace fikit::broker::fikit_policy
