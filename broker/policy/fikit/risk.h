// Risk admission: a known LP kernel that does not fit what is left of the HP's predicted gap may
// still be granted if what it is predicted to cost the HP is within the HP's damage allowance
// (harvest_controller.h). The cost of LP work ending at `end` to an HP tenant idle since `start`:
//   overlap_cost x E[(end - return)+ | return > now] + switch_cost x P(return < end | return > now)
// from the HP's gaps after its last key (the tenant's gaps if the key has too few): the HP time
// the overlap is expected to take, plus, on time-slicing, the switch it then pays. overlap_cost
// is what one microsecond of overlap costs the HP (FikitParams: 1 on time-slicing, where the HP
// waits for the LP's time slice; overlap_cost_mps on MPS, where they share the SMs). Every HP
// tenant whose gap the grant goes into must admit it.
#pragma once

#include <cstdint>
#include <vector>

#include "policy/fikit/fill_decision.h"
#include "policy/fikit/harvest_controller.h"
#include "policy/fikit/policy_state.h"

namespace fikit::broker::fikit_policy {

// Alone samples an HP tenant needs before its alone latency counts as known.
inline constexpr uint32_t kMinAloneSamples = 16;
// Kinds of request whose alone latency is kept per HP tenant, and the samples of one before its
// requests are compared with it.
inline constexpr size_t kAloneKinds = 64;
inline constexpr uint32_t kMinKindSamples = 4;
// Requests of a tenant that teach neither its alone latency nor the controller.
inline constexpr uint32_t kWarmupRequests = 16;

// The controller's view of HP tenant td: its budget (its own, else the broker's) and its alone
// latency.
ControllerInput controller_input(const FikitState& st, const TenantData& td);

// A budget grant asked for: the LP work it would commit into the gap.
struct LpWork {
  uint64_t key;          // the LP kernel to grant
  uint64_t end_ns;       // predicted end of the gap's LP work, this kernel's included
  uint64_t residual_ns;  // GPU time of that LP work still to run were the HP back now
};

// Return true if LP work `w` granted at now_ns into `gaps` is within the allowance of every HP
// tenant whose gap it is; *damage_ns: the largest predicted damage. With risk_residual, the
// worst case (the HP back now: overlap cost x w.residual_ns, plus the switch on time-slicing);
// else the expectation above x the cost learned for w.key from that HP's requests
// (overlap_cost.h).
bool risk_admits(const FikitState& st, const std::vector<GapRef>& gaps, uint64_t now_ns,
                 const LpWork& w, double* damage_ns);

// With a budget on MPS and risk_residual: the most LP work (GPU time) the gap of `gaps` may have
// queued, whatever its verdict (a fit too), so that the HP back at once loses at most what its
// controller allows: allowance / overlap_cost_mps of each HP owner (gain 1 while the controller
// has not judged yet; the 5% quantile of its recent requests before its alone latency is known),
// the least of them. An owner counts only while its gap's key overruns (KeyStats::overrun_rate)
// more often than its budget's quantile tolerates (1% for p99): memoryless gaps, whose
// predictions grow as they last, overrun often. kNoEnd: no such bound (no budget,
// time-slicing, whose every overlap costs a switch and is judged by the gap's prediction
// alone).
uint64_t residual_cap_ns(const FikitState& st, const std::vector<GapRef>& gaps);

// The same bound for one HP tenant, before the gate on its gaps' overruns (kNoEnd: none).
uint64_t hp_cap_ns(const FikitState& st, const TenantData& owner);

// A budget grant of lp_key ending at end_ns was made into `gaps`: charge each HP owner's next
// request with the damage predicted (with the prior), to learn what it really cost. Not with
// risk_residual: a worst case charged per grant would sum the same overlap once per grant (the
// controller's gain alone then scales the prior).
void risk_on_budget_grant(FikitState& st, const std::vector<GapRef>& gaps, uint64_t now_ns,
                          uint64_t end_ns, uint64_t lp_key);

// An HP request of td ended (request_meter.h): teach the alone latency and the controller.
void risk_on_request(FikitState& st, TenantData& td, uint64_t latency_ns, bool overlapped,
                     uint64_t kind);

// td's current request has run so long that the controller cannot see it end in time: fail-safe.
void risk_check_stale(FikitState& st, TenantData& td, uint64_t now_ns);

}  // namespace fikit::broker::fikit_policy
