// Helpers on the shared state that both time models (sim_engine.cpp, sim_mps_model.cpp) use:
// stream heads and op completion. Call with the lock held.
#pragma once

#include "sim/sim_shared.h"

namespace fikit::sim {

inline bool stream_busy(const SimStream& s) { return s.in_use && s.exec != s.tail; }

inline SimOp& head(SimShared& g, uint32_t i) { return g.rings[i][g.streams[i].exec % kStreamRing]; }
inline const SimOp& head(const SimShared& g, uint32_t i) {
  return g.rings[i][g.streams[i].exec % kStreamRing];
}

inline bool head_is_kernel(const SimShared& g, uint32_t i) {
  return stream_busy(g.streams[i]) && head(g, i).kind == OpKind::kKernel;
}

// Complete stream i's head op at time t (counting kernels) and move on to the next op.
inline void complete(SimShared& g, uint32_t i, uint64_t t) {
  SimOp& op = head(g, i);
  SimStream& s = g.streams[i];
  op.end_ns = t;
  if (op.kind == OpKind::kKernel) {
    g.kernels_total++;
    if (s.proc >= 0 && static_cast<uint32_t>(s.proc) < kMaxProcs) g.procs[s.proc].kernels++;
  }
  s.exec++;
}

}  // namespace fikit::sim
