// Submission ring operations (see abi.h for the layout). Every reader and writer of a ring goes
// through these functions: what an empty or a published entry looks like is decided here only.
//
// Producers (any client thread) claim a position by CAS on `tail`, fill the entry and publish it by
// storing `commit = position + 1` with release order. The single consumer (the broker's scheduler
// thread) keeps its own head, reads `commit` with acquire order, copies the entry out and validates
// it, then publishes `head` with release order so producers may reuse the slot. An entry free for
// position p holds `commit = p + 1 - kRingEntries` (published one lap before). Neither side takes
// a lock; a full ring makes the producer fail (HP records are then dropped and counted; LP requests
// fail open).
#pragma once

#include <fikit/abi.h>

namespace fikit {

// The commit word of the entry at `position` once published, and while free for it.
constexpr uint32_t ring__published_word(uint32_t position) { return position + 1; }
constexpr uint32_t ring__free_word(uint32_t position) { return position + 1 - kRingEntries; }

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
  e.commit.store(ring__published_word(position), std::memory_order_release);
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
  if (commit == ring__free_word(head)) return PeekResult::kEmpty;
  if (commit != ring__published_word(head)) return PeekResult::kCorrupt;
  out->position = head;
  out->kind = e.kind;
  out->stream_slot = e.stream_slot;
  out->ref = e.ref;
  out->flags = e.flags;
  out->kernel_key = e.kernel_key;
  out->t_ns = e.t_ns;
  return PeekResult::kReady;
}

// Return true if the entry at the consumer's `head` holds something (published or garbage): a
// ring__peek there would not say kEmpty. Cheaper than a peek: nothing is copied.
inline bool ring__ready(const SubmitRing* ring, uint32_t head) noexcept {
  // Acquire pairs with the producer's release store in ring__commit.
  uint32_t commit = ring->entries[head & kRingMask].commit.load(std::memory_order_acquire);
  return commit != ring__free_word(head);
}

// The entries a producer that reserved `position` sees between the consumer's head and itself:
// the consumer's backlog. Relaxed: a hint (when to ring the doorbell), not a synchronization.
inline uint32_t ring__pending(const SubmitRing* ring, uint32_t position) noexcept {
  return position - ring->head.load(std::memory_order_relaxed);
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
