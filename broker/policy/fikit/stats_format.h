// Per-tenant statistics of the fikit policy for `fikit-broker status` and the demo: kernels
// seen, keys known, predicted vs actual gaps (hits and misses), LP work granted into gaps.
#pragma once

#include <cstdint>
#include <string>

#include "policy/fikit/policy_state.h"

namespace fikit::broker::fikit_policy {

// "950ns", "12.3us", "4.50ms", "1.20s".
std::string format_ns(uint64_t ns);

// Two indented lines (under 80 columns each) about tenant `id`, or "" if the policy does not
// know it.
std::string tenant_stats_text(const FikitState& st, uint32_t id);
// One JSON object (compact text) about tenant `id`, or "{}" if unknown.
std::string tenant_stats_json(const FikitState& st, uint32_t id);

}  // namespace fikit::broker::fikit_policy
