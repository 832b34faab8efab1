// Process state: start-up on the first CUDA hook call, the current session, the monitor thread
// that watches the broker connection and reconnects, and fork handling.
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
extern std::atomic<Session*> g_current;

// Start on the first call (read config, connect, start the monitor). Cheap once started.
void start_slow() noexcept;
inline void ensure_started() noexcept {
  if (g_phase.load(std::memory_order_acquire) >= static_cast<int>(Phase::kStarted)) return;
  start_slow();
}

// The current session, or nullptr (not connected).
inline Session* current_session() noexcept { return g_current.load(std::memory_order_acquire); }

// Re-register with the current configuration (after the C API changed it).
void request_reconnect() noexcept;

// Tests: use `s` as the current session and mark the runtime started (no broker, no monitor).
void runtime_use_session_for_test(Session* s) noexcept;

}  // namespace fikit::client
