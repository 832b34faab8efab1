// Process state: start-up on the first CUDA hook call, one session per GPU used, the monitor thread
// that watches the broker connections and reconnects, and fork handling.
#pragma once

#include "session.h"

namespace fikit::client {

enum class Phase : int {
  kIdle = 0,       // nothing started (also in a child after fork)
  kStarting = 1,   // one thread is starting; others fail open meanwhile
  kStarted = 2,    // config read; connected or retrying in the monitor thread
  kUnmanaged = 3,  // invalid priority: run unmanaged until the C API sets a valid one
};

extern std::atomic<int> g_phase;

// Start on the first call (read config, start the monitor). Cheap once started.
void start_slow() noexcept;
inline void ensure_started() noexcept {
  if (g_phase.load(std::memory_order_acquire) >= static_cast<int>(Phase::kStarted)) return;
  start_slow();
}

// One registration per GPU the process launches on (gpu_attrib.h slots). The session of the GPU
// of the calling thread's current context, or nullptr (not connected, or fail open). The first
// launch on a GPU registers it synchronously, as the first launch of a process always did; other
// threads fail open meanwhile, and the monitor thread keeps every GPU seen registered.
Session* session_for_current_gpu() noexcept;
// The session of GPU slot `slot` now (no registration), or nullptr.
Session* session_of_slot(int slot) noexcept;
// The live session that has `generation` (event marks name their session), or nullptr.
Session* session_by_generation(uint16_t generation) noexcept;
// True if any session is connected and active.
bool any_session_usable() noexcept;

// Re-register with the current configuration (after the C API changed it).
void request_reconnect() noexcept;

// Tests: use `s` as the session of every GPU and mark the runtime started (no broker, no
// monitor); nullptr ends that.
void runtime_use_session_for_test(Session* s) noexcept;

}  // namespace fikit::client
