// LP bursts (ABI 2.3): after a LP request is granted because it fits a gap, the kernels its tenant
// is predicted to launch next (each key's successor, learned from its launches: a training loop
// repeats its kernels) are let in as one unit, as many as the gap has room for, so that each of
// them launches without a round trip to the broker (SchedulerApi::open_burst). This file sizes a
// burst, closes it when its level's gap ends, and records each kernel launched in it as a grant.
#pragma once

#include <cstdint>
#include <vector>

#include "policy/fikit/policy_state.h"
#include "policy/policy.h"

namespace fikit::broker::fikit_policy {

// What the policy granted a tenant's burst: the head request, then the kernels predicted to
// follow it, in a window that ends at gap_end_ns (kNoEnd: its level runs at full speed).
struct BurstAsk {
  uint32_t idx;          // the tenant's index in this dispatch (SchedulerApi)
  uint64_t head_key;     // the kernel just granted
  uint64_t head_end_ns;  // its predicted end
  uint64_t gap_end_ns;   // the window's end (kNoEnd: full speed)
  uint64_t cap_end_ns;   // the LP work let in ends by then at the latest (kNoEnd: no cap)
  uint64_t now_ns;
  uint32_t in_flight_room;  // grants max_lp_in_flight still allows
  const std::vector<GapRef>* gaps;
};

// Open td's burst after its head request was granted; return the predicted end of the LP work
// it lets in (ask.head_end_ns if none was opened) and set *kernels to how many it may launch.
uint64_t burst_open(FikitState& st, SchedulerApi& sched, TenantData& td, const BurstAsk& ask,
                    uint32_t* kernels);
// Close the bursts whose window is over: a level above became busy, or the deadline passed.
void bursts_check(FikitState& st, SchedulerApi& sched, uint64_t now_ns);
// The latest predicted end of the LP work open bursts may still launch (0: none).
uint64_t bursts_committed_end(const FikitState& st, uint64_t now_ns);
// t launched request s inside its burst (PolicyOps::on_burst_grant): record it as a grant.
void ev_burst_grant(FikitState& st, TenantData& td, const TenantInfo& t, const Submission& s);

}  // namespace fikit::broker::fikit_policy
