// Submission ring operations (see abi.h for the layout).
//
// Producers (any client thread) claim a position by CAS on `tail`, fill the entry and publish it by
// storing `commit = position + 1` with release order. The single consumer (the broker's scheduler
// thread) keeps its own head, reads `commit` with acquire order, copies the entry out and validates
// it, then publishes `head` with release order so producers may reuse the slot. Neither side takes
// a lock; a full ring makes the producer fail (HP records are then dropped and counted; LP requests
// fail open).
#pragma once

#include <fikit/abi.h>

namespace fikit {

// A plain copy of an entry, taken by the consumer before it trusts anything in it.
struct EntryCopy {
  uint32_t position;
  uint16_t kind;
  uint16_t stream_slot;
  uint32_t ref;
  uint32_t flags;
  uint64_t kernel_key;
  uint64_t t_ns;
};

// What the producer fills in; commit and position are the ring's business.
struct EntryFields {
  EntryKind kind;
  uint16_t stream_slot;
  uint32_t ref;
  uint32_t flags;
  uint64_t kernel_key;
  uint64_t t_ns;
};

// Claim the next position. Return false if the ring is full.
inline bool ring__reserve(SubmitRing* ring, uint32_t* position) noexcept {
  uint32_t pos = ring->tail.load(std::memory_order_relaxed);
  for (;;) {
    // Acquire pairs with the consumer's release store of head: its reads of the slot we reuse are
    // done.
    uint32_t head = ring->head.load(std::memory_order_acquire);
    if (pos - head >= kRingEntries) return false;
    if (ring->tail.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) break;
  }
  *position = pos;
  return true;
}

// Fill the entry at a reserved position and publish it.
inline void ring__commit(SubmitRing* ring, uint32_t position, const EntryFields& f) noexcept {
  SubmitEntry& e = ring->entries[position & kRingMask];
  e.kind = static_cast<uint16_t>(f.kind);
  e.stream_slot = f.stream_slot;
  e.ref = f.ref;
  e.flags = f.flags;
  e.kernel_key = f.kernel_key;
  e.t_ns = f.t_ns;
  // Release pairs with the consumer's acquire load of commit in ring__peek: the fields above are
  // visible first.
  e.commit.store(position + 1, std::memory_order_release);
}

// Reserve and commit in one step. Return the position, or false if the ring is full.
inline bool ring__push(SubmitRing* ring, const EntryFields& f, uint32_t* position) noexcept {
  if (!ring__reserve(ring, position)) return false;
  ring__commit(ring, *position, f);
  return true;
}

enum class PeekResult { kEmpty, kReady, kCorrupt };

// Look at the entry at the consumer's `head`. kReady: `out` holds a copy; kEmpty: nothing published
// there yet; kCorrupt: the commit word is neither this lap nor the previous one (a producer wrote
// garbage).
inline PeekResult ring__peek(const SubmitRing* ring, uint32_t head, EntryCopy* out) noexcept {
  const SubmitEntry& e = ring->entries[head & kRingMask];
  // Acquire pairs with the producer's release store in ring__commit.
  uint32_t commit = e.commit.load(std::memory_order_acquire);
  if (commit == head + 1 - kRingEntries) return PeekResult::kEmpty;
  if (commit != head + 1) return PeekResult::kCorrupt;
  out->position = head;
  out->kind = e.kind;
  out->stream_slot = e.stream_slot;
  out->ref = e.ref;
  out->flags = e.flags;
  out->kernel_key = e.kernel_key;
  out->t_ns = e.t_ns;
  return PeekResult::kReady;
}

// Give the slots before `new_head` back to the producers.
inline void ring__consume(SubmitRing* ring, uint32_t new_head) noexcept {
  // Release pairs with the producers' acquire load of head in ring__reserve: our copies are taken.
  ring->head.store(new_head, std::memory_order_release);
}

// Return a reason if a copied entry is malformed, else nullptr. Sequence checks of `ref` are the
// broker's.
inline const char* entry__check(const EntryCopy& e) noexcept {
  if (e.kind == 0 || e.kind > kEntryKindMax) return "unknown entry kind";
  if (e.stream_slot >= kStreamSlots) return "stream slot out of range";
  if (e.flags & ~kFlagsKnown) return "unknown entry flags";
  return nullptr;
}

}  // namespace fikit
