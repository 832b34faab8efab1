// The simulated GPU's MPS time model: what decides interference between clients of one MPS
// server on a real GPU. Pure functions of the shared state, called by sim_engine.cpp with the
// lock held (in mps mode only).
//
// - A kernel is `blocks` thread blocks, each the size of one SM (a real kernel's blocks that
//   share an SM count as one). They run in waves: at most `sms` at once, and a block holds its SM
//   until it retires, value / waves ns of full-speed work later. Alone, a kernel takes its
//   nominal time; a partial last wave leaves SMs to other kernels.
// - As SMs free up, waiting blocks get them by client priority first (normal before below
//   normal, CUDA_MPS_CLIENT_PRIORITY); within a level the free SMs are split evenly among the
//   waiting kernels (the earliest to reach its stream head gets the odd ones). A running block
//   is never preempted: a high-priority kernel waits for the blocks ahead of it to retire.
// - An SM holds blocks of up to `mps_slots` distinct kernels (FIKIT_SIM_MPS_SLOTS, default 1): a
//   real block rarely uses all of an SM's registers, shared memory and threads, and another
//   kernel's blocks fill what is left over. The blocks on one SM share its cycles evenly (the
//   model spreads blocks evenly over the SMs: rate min(1, SMs / resident blocks)).
// - A process's blocks hold at most `mps_sm_cap` SMs at once (CUDA_MPS_ACTIVE_THREAD_PERCENTAGE).
// - Bandwidth interference: a block's rate is also divided by 1 + mps_bw * s, where s is the
//   share of the SMs that other kernels' blocks hold (memory bandwidth and L2 are shared).
#pragma once

#include <cstdint>

#include "sim/sim_shared.h"

namespace fikit::sim {

// Give free SMs to waiting blocks at time t (after zero-time ops were settled).
void mps_dispatch(SimShared& g, uint64_t t);

// The time of the next block retirement after t, or kNever.
uint64_t mps_next_event(const SimShared& g, uint64_t t);

// Run the resident blocks from t0 to t1 (no event in between); retire those that finish and
// complete kernels whose blocks have all retired.
void mps_run(SimShared& g, uint64_t t0, uint64_t t1);

// The waves a kernel of `blocks` SM-sized blocks needs on `sms` SMs.
inline uint32_t mps_waves(uint32_t blocks, uint32_t sms) {
  return sms ? (blocks + sms - 1) / sms : 1;
}

// The SMs a process may hold at once under CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=pct (0: all):
// the percentage of the SMs rounded up, as MPS rounds the limit to whole SMs.
inline uint32_t mps_sm_cap(uint32_t sms, uint64_t pct) {
  if (pct == 0 || pct >= 100) return 0;
  return static_cast<uint32_t>((sms * pct + 99) / 100);
}

}  // namespace fikit::sim
