// What happens to one intercepted launch: fail open (no broker, or a capturing stream), the HP
// path (launch, then record it in the ring) or the LP path (request, wait for the grant, launch,
// report); the ring and segment layout are in include/fikit/abi.h. Everything here runs on the
// application's launch path: no allocation, no locks, no I/O, no logging (one-time cold paths
// excepted and marked).
#pragma once

#include <cuda.h>
#include <fikit/util.h>

#include <atomic>
#include <cstdint>

#include "capture.h"
#include "session.h"

namespace fikit::client {

struct LaunchDesc {
  CUstream stream;  // as passed by the caller
  bool per_thread;  // a _ptsz variant: stream 0 is the per-thread default stream
  CUfunction fn;    // nullptr for graph launches
  uint64_t graph;   // CUgraphExec handle for graph launches
  Dim3 grid;
  Dim3 block;
  uint32_t flags;  // kFlagGraph / kFlagCooperative
};

// Issues the real launch; `args` is the hook's argument block.
using IssueFn = CUresult (*)(const void* args) noexcept;

// Identity of one managed launch.
struct LaunchKey {
  uint64_t key;
  uint16_t slot;
};

enum class WaitResult { kGranted, kFailOpen };

// The entry point of every launch hook.
CUresult launch_gated(const LaunchDesc& d, IssueFn issue, const void* args) noexcept;

// Launch without the broker, counted as passed through (in `s`'s segment too when given).
CUresult pass_through(Session* s, IssueFn issue, const void* args) noexcept;

// Compute the launch's key and slot and publish a new key's name.
LaunchKey identify(Session* s, const LaunchDesc& d) noexcept;

// HP: launch, then record it (and a sampled marker). Never blocks.
CUresult hp_launch(Session* s, const LaunchDesc& d, LaunchKey k, IssueFn issue,
                   const void* args) noexcept;

// LP: request, wait for the grant, launch, marker, report.
CUresult lp_launch(Session* s, const LaunchDesc& d, LaunchKey k, IssueFn issue,
                   const void* args) noexcept;

// Wait until the broker grants `position`; kFailOpen when the session dies, leaves kActive or the
// broker's heartbeat is older than `timeout_ns`.
WaitResult wait_for_grant(Session* s, uint32_t position, uint64_t timeout_ns) noexcept;

// Return true if the slots page is registered with the GPU (trying once a context is current).
bool ensure_gpu_mapped(Session* s) noexcept;

}  // namespace fikit::client
