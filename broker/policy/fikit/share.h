// Fair shares among the LP tenants of one level. Each tenant's recent GPU time granted (its
// predicted cost, decayed with a half-life of kShareHalfLifeNs) orders a level's tenants, least
// served first, and says when the least served is owed the gap: below half an equal share of the
// level's recent GPU time. Dispatch then grants one request per tenant per turn in that order,
// and while an owed tenant's request would fit the gap were no other LP work in it, the others
// wait for that work to end (aging: a tenant with long kernels is not starved by one whose
// kernels fit more easily).
#pragma once

#include <cstdint>
#include <vector>

#include "policy/fikit/policy_state.h"

namespace fikit::broker::fikit_policy {

inline constexpr uint64_t kShareHalfLifeNs = 100'000'000;

// td was granted work predicted to take ns at now_ns.
void share_charge(TenantData& td, uint64_t ns, uint64_t now_ns);
// td's recent GPU time granted, decayed to now_ns.
double share_recent(const TenantData& td, uint64_t now_ns);
// Order a level's waiting tenants, least served first (ties: as given).
void share_order(std::vector<TenantView*>& level, uint64_t now_ns);
// Return true if level[0] (ordered) got less than half an equal share of the level's recent time.
bool share_owed(const std::vector<TenantView*>& level, uint64_t now_ns);

}  // namespace fikit::broker::fikit_policy
