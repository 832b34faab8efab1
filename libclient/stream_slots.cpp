#include "stream_slots.h"

#include <fikit/util.h>

namespace fikit::client {
namespace {

constexpr uint32_t kHashedSlots = kOverflowSlot - kFirstHashedSlot;  // slots 2..62

uint32_t home_index(uintptr_t key) noexcept {
  return static_cast<uint32_t>(mix64(key) % kHashedSlots);
}

}  // namespace

uint16_t StreamSlots::slot_for(CUstream stream, bool per_thread) noexcept {
  int fixed = default_stream_slot(stream, per_thread);
  if (fixed >= 0) return static_cast<uint16_t>(fixed);
  uintptr_t key = reinterpret_cast<uintptr_t>(stream);
  uint32_t home = home_index(key);
  for (uint32_t i = 0; i < kHashedSlots; i++) {
    uint32_t slot = kFirstHashedSlot + (home + i) % kHashedSlots;
    uintptr_t cur = keys_[slot].load(std::memory_order_acquire);
    if (cur == key) return static_cast<uint16_t>(slot);
    if (cur != 0) continue;
    // Claim the free slot; a racing thread may claim it first, for this stream or another.
    if (keys_[slot].compare_exchange_strong(cur, key, std::memory_order_acq_rel) || cur == key)
      return static_cast<uint16_t>(slot);
  }
  return kOverflowSlot;
}

int StreamSlots::find(CUstream stream, bool per_thread) const noexcept {
  int fixed = default_stream_slot(stream, per_thread);
  if (fixed >= 0) return fixed;
  uintptr_t key = reinterpret_cast<uintptr_t>(stream);
  uint32_t home = home_index(key);
  for (uint32_t i = 0; i < kHashedSlots; i++) {
    uint32_t slot = kFirstHashedSlot + (home + i) % kHashedSlots;
    uintptr_t cur = keys_[slot].load(std::memory_order_acquire);
    if (cur == key) return static_cast<int>(slot);
    if (cur == 0) return -1;  // slots are claimed in probe order and never freed
  }
  return kOverflowSlot;  // all taken and not among them: it may have been launched on overflow
}

void StreamSlots::reset() noexcept {
  for (auto& k : keys_) k.store(0, std::memory_order_relaxed);
}

namespace {
constinit StreamSlots g_stream_slots;  // no guard, no allocation
}  // namespace

StreamSlots& stream_slots() noexcept { return g_stream_slots; }

}  // namespace fikit::client
