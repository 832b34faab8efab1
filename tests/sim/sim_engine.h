// The simulated GPU's time model. Pure functions of the shared state, called with its lock held.
//
// Kernels run by time. A kernel needs `work_ns` of GPU time at full speed. Which kernels run
// together, and how, depends on the mode:
// - mps: the head kernels of every stream of every context, as thread blocks in waves that hold
//   SMs until they retire (sim_mps_model.h);
// - timeslice: only those of the active context, each occupying `demand` of the SMs; when their
//   demands sum to D > 1, each progresses at rate 1/D (fluid sharing). While another context has
//   a kernel waiting, the active one keeps the GPU until its timeslice (counted from when the
//   contention began, or with `slice_clock` from its current slice's start) expires or it runs
//   out of kernels; then the GPU switches to the next context with work (round robin), idling
//   `switch_ns`. A context that runs out of work stays loaded: the next context to arrive pays
//   the switch. Preempted kernels keep their progress.
// Within a stream ops run in order. Zero-time ops (marker writes, event records, satisfied event
// waits) complete as soon as they reach their stream's head, whatever context is active.
#pragma once

#include <cstdint>

#include "sim/sim_shared.h"

namespace fikit::sim {

// Simulate from g.now_ns up to `now`: complete kernels and zero-time ops, start and finish context
// switches, count completed kernels. Time never goes back: an earlier `now` only settles ops
// enqueued since the last call.
void advance(SimShared& g, uint64_t now);

// The time of the next event (kernel completion, switch end, timeslice expiry) if nothing new is
// enqueued, or kNever. Call right after advance().
uint64_t next_event(const SimShared& g);

}  // namespace fikit::sim
