// Which physical GPU a launch runs on: the device of the calling thread's current context, known
// by its UUID (cuCtxGetDevice + cuDeviceGetUuid_v2), so that CUDA_VISIBLE_DEVICES in any form and
// containers that see a subset of the GPUs map to the right one. The client numbers the GPUs it
// meets in order (slots); each slot gets its own registration with the broker (runtime.h).
//
// Hot path: one cuCtxGetCurrent and a thread-local compare; a context seen for the first time is
// looked up in a fixed, lock-free table (and, the first time in the process, asked of the driver).
// Nothing allocates, locks or logs. A launch whose GPU the driver cannot name (no context, an old
// driver, a test's fake one) goes to kUnknownGpu, registered without a UUID: the broker's first
// GPU, as for ABI 2.0 clients.
#pragma once

#include <cuda.h>

#include <cstdint>

namespace fikit::client {

inline constexpr int kMaxClientGpus = 32;           // GPUs one process may use; more fail open
inline constexpr int kUnknownGpu = kMaxClientGpus;  // the slot of launches on an unnamed GPU
inline constexpr int kGpuSlots = kMaxClientGpus + 1;

// The slot of the current context's GPU, kUnknownGpu, or -1 (the process uses more than
// kMaxClientGpus GPUs: fail open).
int current_gpu_slot() noexcept;

// The UUID of slot `slot` (< kMaxClientGpus, once returned by current_gpu_slot); nullptr for
// kUnknownGpu or a slot not claimed.
const CUuuid* gpu_slot_uuid(int slot) noexcept;

// Forget every context (tests, and the child after fork keeps the table: contexts are gone).
void gpu_attrib_reset_for_test() noexcept;

}  // namespace fikit::client
