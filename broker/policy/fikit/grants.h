// The fikit policy's LP grants in flight (FikitState::grants). Each is named as the scheduler
// names it, by tenant and by its request's ring position, so a completion or a revocation finds
// its grant exactly. This file owns them: it records a grant, ends it (learning the tenant's
// grant-to-launch delay and whether it ran past the gaps it was granted into), and answers where
// the LP work already granted is predicted to end.
#pragma once

#include <cstdint>

#include "policy/fikit/policy_state.h"
#include "policy/policy.h"

namespace fikit::broker::fikit_policy {

// Record the grant of td's request `r` at now_ns (the caller fills in the prediction).
Grant& grant_add(FikitState& st, const TenantData& td, const Submission& r, uint64_t now_ns);
// The grant of tenant_id's request at `position`, or nullptr.
Grant* grant_find(FikitState& st, uint32_t tenant_id, uint32_t position);
// The LP launch of grant g completed (its sample: the measured duration, 0 if none): learn from
// it and forget the grant.
void grant_complete(FikitState& st, TenantData& td, const Grant& g, const Completion& c,
                    uint64_t sample_ns);
// The scheduler ended the grant of tenant_id's request at `position` without a completion.
void grant_revoke(FikitState& st, uint32_t tenant_id, uint32_t position);
// Forget every grant of a tenant that left.
void grants_forget(FikitState& st, uint32_t tenant_id);
// The owner of gap `epoch` of tenant_id came back at t_ns: the fills in that gap learn it.
void grants_owner_returned(FikitState& st, uint32_t tenant_id, uint64_t epoch, uint64_t t_ns);
// LP work was granted at t_ns: every HP request open now is no longer as if alone. Return true if
// one of them had begun by t_ns (the HP was back).
bool grants_overlap_hp(FikitState& st, uint64_t t_ns);
// The predicted end of the LP work already granted; a grant past its predicted end is still
// running and assumed to end within the margin.
uint64_t grants_committed_end(const FikitState& st, uint64_t now_ns);

}  // namespace fikit::broker::fikit_policy
