// CUstream -> stream slot (index into Segment::slots), lock-free.
//
// Slot 0 is the legacy default stream (NULL or CU_STREAM_LEGACY in a legacy call), slot 1 the
// per-thread default stream (CU_STREAM_PER_THREAD, or NULL in a _ptsz/_ptds call; shared by all
// threads). Other streams take slots 2..kStreamSlots-2 by open addressing on the handle; once those
// are taken, every further stream shares the last slot (kOverflowSlot). Slots are never freed: a
// process that creates streams without bound ends up sharing the overflow slot.
#pragma once

#include <cuda.h>
#include <fikit/abi.h>

#include <atomic>
#include <cstdint>

namespace fikit::client {

inline constexpr uint16_t kLegacySlot = 0;
inline constexpr uint16_t kPerThreadSlot = 1;
inline constexpr uint16_t kFirstHashedSlot = 2;
inline constexpr uint16_t kOverflowSlot = kStreamSlots - 1;

class StreamSlots {
 public:
  // Return the slot of `stream`, claiming one on first sight. `per_thread`: the call was a
  // _ptsz/_ptds variant (its NULL stream is the per-thread default stream).
  uint16_t slot_for(CUstream stream, bool per_thread) noexcept;

  // Return the slot of `stream` if it has one, else -1 (nothing was ever launched on it).
  int find(CUstream stream, bool per_thread) const noexcept;

  // Forget every stream (tests).
  void reset() noexcept;

 private:
  // keys_[slot] holds the stream that owns a hashed slot, 0 while free.
  std::atomic<uintptr_t> keys_[kStreamSlots] = {};
};

// The process's table.
StreamSlots& stream_slots() noexcept;

// The default-stream slots, or -1 for an ordinary stream handle.
inline int default_stream_slot(CUstream stream, bool per_thread) noexcept {
  uintptr_t s = reinterpret_cast<uintptr_t>(stream);
  if (s == 0) return per_thread ? kPerThreadSlot : kLegacySlot;
  if (s == reinterpret_cast<uintptr_t>(CU_STREAM_LEGACY)) return kLegacySlot;
  if (s == reinterpret_cast<uintptr_t>(CU_STREAM_PER_THREAD)) return kPerThreadSlot;
  return -1;
}

}  // namespace fikit::client
