// Per-slot positions: what the client issued and what it knows to be drained.
//
// After each managed launch the client raises issued[slot] to the launch's position + 1. A
// synchronizing call snapshots issued[slot] *before* it runs; once it returns success, everything
// issued before it has completed, so host_done is raised to the snapshot (monotonic, CAS) and
// host_done_ns set. The overflow slot is shared by unrelated streams: a sync of one of them says
// nothing about the others, so it drains only through cuCtxSynchronize. A drain rings the
// broker's doorbell if the broker has published that it sleeps (BrokerWords::broker_sleeping).
#pragma once

#include <fikit/abi.h>

#include <cstdint>

#include "session.h"

namespace fikit::client {

// Raise issued[slot] to position + 1.
void note_issued(Session* s, uint16_t slot, uint32_t position) noexcept;

// issued[slot] now (0 if nothing was issued or `s` is null).
inline uint32_t issued_snapshot(const Session* s, int slot) noexcept {
  if (!s || slot < 0 || slot >= static_cast<int>(kStreamSlots)) return 0;
  return s->issued[slot].load(std::memory_order_acquire);
}

// Publish "slot drained up to `snapshot`" (a value from issued_snapshot). `whole_context`: the
// call synchronized every stream (the overflow slot may drain too).
void drain_slot(Session* s, int slot, uint32_t snapshot, bool whole_context = false) noexcept;

}  // namespace fikit::client
