// A registration with the broker: the control connection and the mapped tenant segment, plus the
// client's per-session bookkeeping. Sessions are never freed or unmapped: threads may still hold a
// pointer after the monitor replaced a dead one, so a reconnect leaks one small mapping.
#pragma once

#include <cuda.h>
#include <fikit/abi.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "config.h"
#include "kernel_ident.h"
#include "log.h"

namespace fikit::client {

// Whether the segment's slots page is registered with the GPU (completion markers need it).
enum class GpuMap : uint32_t { kNone = 0, kBusy = 1, kMapped = 2, kFailed = 3 };

struct Session {
  Segment* seg;
  int gpu_slot;  // gpu_attrib.h: the GPU this registration is for
  size_t map_size;
  int fd;  // control socket; -1 for sessions without a broker connection (tests)
  uint32_t tenant_id;
  uint32_t priority;
  uint16_t generation;                // distinguishes sessions in the event table
  std::atomic<bool> dead;             // the connection is gone: fail open
  std::atomic<uint32_t> gpu_map;      // GpuMap
  std::atomic<uint64_t> slots_dev;    // device address of seg->slots once kMapped
  std::atomic<int> gpu_error;         // the CUresult that made gpu_map kFailed
  std::atomic<uint64_t> hp_launches;  // HP launches, for marker sampling
  // HP: a drain was published since its last launch, so the next launch starts a request and
  // rings a sleeping broker (ABI 2.3: the broker then sees the HP's return, and closes LP bursts).
  std::atomic<bool> drained;
  std::atomic<uint64_t> stale_heartbeat;  // heartbeat_ns seen when an LP wait timed out (0: none)
  std::atomic<uint32_t> issued[kStreamSlots];  // last issued position + 1 per slot (0: none)
  PublishedKeys published;
};

// Create a session over a mapped segment (anonymous mmap; never freed).
Session* session_create(Segment* seg, size_t map_size, int fd, uint16_t generation) noexcept;

// Connect to the broker, register with `cfg` for GPU slot `gpu_slot` (its UUID, gpu_attrib.h) and
// map the segment. On failure log why at `fail_level` and return nullptr.
Session* session_connect(const Config& cfg, int gpu_slot, uint16_t generation,
                         LogLevel fail_level) noexcept;

// Return true if launches should follow the protocol: connected and the broker says kActive.
inline bool session_usable(const Session* s) noexcept {
  return s && !s->dead.load(std::memory_order_acquire) &&
         s->seg->broker.state.load(std::memory_order_acquire) ==
             static_cast<uint32_t>(TenantState::kActive);
}

// Mark a session dead and wake its LP waiters (they fail open).
void session_mark_dead(Session* s) noexcept;

}  // namespace fikit::client
