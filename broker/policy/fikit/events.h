// Event handling of the fikit policy: kernel measurement (durations from completion markers),
// gap measurement (drain to next submission) and scoring, and detection of missed predictions
// (the tenant came back while LP work granted into its gap still ran).
#pragma once

#include "policy/fikit/policy_state.h"
#include "policy/policy.h"

namespace fikit::broker::fikit_policy {

// An HP launch record (priority 0: already running) or a LP request was seen.
void ev_submit(FikitState& st, TenantData& td, const TenantInfo& t, const Submission& s);
// A launch completed; `c.exact` ones give a duration sample.
void ev_complete(FikitState& st, TenantData& td, const Completion& c);
// The tenant drained at t_ns: its gap begins.
void ev_idle(FikitState& st, TenantData& td, const TenantInfo& t, uint64_t t_ns);
// The oracle's prediction for a gap that began at start_ns: what the tenant's last idle hint
// says (unknown if the hint ended before the gap began).
GapEstimate hinted_gap(const TenantData& td, uint64_t start_ns);
// The tenant says it is idle for idle_ns from t_ns (fikit_hint_idle): the oracle's gap truth.
void ev_hint_idle(FikitState& st, TenantData& td, uint64_t idle_ns, uint64_t t_ns);
// A grant of td's oldest request was made in dispatch: move it from waiting to st.grants.
Grant& ev_granted(FikitState& st, TenantData& td, uint64_t now_ns);
// Drop td's grants (the tenant left or the scheduler says none is in flight).
void ev_forget_grants(FikitState& st, uint32_t tenant_id);

}  // namespace fikit::broker::fikit_policy
