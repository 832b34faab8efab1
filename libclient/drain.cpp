#include "drain.h"

#include <fikit/util.h>

#include "counters.h"
#include "stream_slots.h"

namespace fikit::client {
namespace {

// Raise `word` to `value` in position order. Return true if it changed.
bool raise_position(std::atomic<uint32_t>& word, uint32_t value) noexcept {
  uint32_t cur = word.load(std::memory_order_relaxed);
  while (cur == 0 || (cur != value && pos_at_or_after(value, cur))) {
    if (word.compare_exchange_weak(cur, value, std::memory_order_acq_rel)) return true;
  }
  return false;
}

}  // namespace

void note_issued(Session* s, uint16_t slot, uint32_t position) noexcept {
  raise_position(s->issued[slot], position + 1);
}

void drain_slot(Session* s, int slot, uint32_t snapshot, bool whole_context) noexcept {
  if (!s || snapshot == 0 || slot < 0 || slot >= static_cast<int>(kStreamSlots)) return;
  if (slot == kOverflowSlot && !whole_context) return;
  if (s->dead.load(std::memory_order_relaxed)) return;
  StreamSlot& ss = s->seg->slots[slot];
  if (!raise_position(ss.host_done, snapshot)) return;
  // The broker reads host_done then host_done_ns; a newer time for an older position is harmless.
  ss.host_done_ns.store(now_ns(), std::memory_order_release);
  s->seg->client.syncs.fetch_add(1, std::memory_order_release);
  s->drained.store(true, std::memory_order_relaxed);
  count(g_counters.drains);
  // A drain ends an HP request: the broker must see it before the next one starts, or it merges
  // the two (each drain overwrites the last). A synchronizing call, not the launch path, so it
  // may pay a fence and, when the broker has said it sleeps, one futex wake (ABI 2.2). Full fence:
  // host_done and syncs must be visible before we read broker_sleeping, pairing with the
  // broker's "store sleeping; fence; re-check rings and syncs" (no lost wake-up).
  BrokerWords& b = s->seg->broker;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (b.broker_sleeping.load(std::memory_order_relaxed)) {
    b.doorbell.fetch_add(1, std::memory_order_release);
    futex_wake(&b.doorbell, 1);
  }
}

}  // namespace fikit::client
