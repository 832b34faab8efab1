// The gaps of the fikit policy's tenants: a tenant's gap opens when it drains and closes at its
// next submission. This file owns GapState: it opens and closes gaps, predicts them through the
// state's gap source (FikitState::gap_source: history for fikit, idle hints for the oracle),
// scores each prediction when its gap closes, and records LP work granted into a gap and fills
// that the gap's owner came back on.
#pragma once

#include <cstdint>
#include <vector>

#include "policy/fikit/policy_state.h"
#include "policy/policy.h"

namespace fikit::broker::fikit_policy {

// The fikit gap source: a low quantile of the gaps seen after `key` (gap_predictor.h).
GapEstimate gap_from_history(const FikitState& st, const TenantData& td, uint64_t key,
                             uint64_t start_ns, uint64_t elapsed_ns);
// The oracle's gap source (oracle.cpp): what the tenant's last idle hint says (unknown if the
// hint ended before the gap began).
GapEstimate gap_from_hints(const FikitState& st, const TenantData& td, uint64_t key,
                           uint64_t start_ns, uint64_t elapsed_ns);

// When td's current gap began (its drain), and the key it follows; for a tenant whose gap was not
// opened (it asked again before draining), what the scheduler says.
uint64_t gap_start(const TenantInfo& t, const TenantData& td);
uint64_t gap_key(const TenantInfo& t, const TenantData& td);

// The prediction of td's current gap now_ns, through the gap source.
GapEstimate gap_predict(const FikitState& st, const TenantInfo& t, const TenantData& td,
                        uint64_t now_ns);

// The tenant drained at t_ns: its gap opens, and is predicted once for scoring.
void gap_open(FikitState& st, TenantData& td, const TenantInfo& t, uint64_t t_ns);
// The tenant submitted at t_ns: its gap closes, is learnt and scored, and the fills still running
// in it learn that its owner came back.
void gap_close(FikitState& st, TenantData& td, uint64_t t_ns);
// The tenant says it is idle for idle_ns from t_ns (fikit_hint_idle); an open gap is predicted
// again (the hint may come after the drain that opened it).
void gap_hint(FikitState& st, TenantData& td, const TenantInfo& t, uint64_t idle_ns, uint64_t t_ns);

// LP work predicted to take cost_ns was granted into `gaps`: mark them filled and count it.
void gaps_filled(FikitState& st, const std::vector<GapRef>& gaps, uint64_t cost_ns);
// The gap's owner came back while a fill granted into it still ran: one miss per gap, against the
// key the gap followed.
void gap_fill_missed(FikitState& st, const GapRef& r);

}  // namespace fikit::broker::fikit_policy
