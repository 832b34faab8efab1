// fikit shared ABI: the layout of one tenant's shared-memory segment.
//
// The broker creates one segment per tenant (a sealed memfd, mode 0600, owned by the tenant's uid,
// sent to it over the control socket) and both sides map it. The client (libfikit.so) produces into
// the submission ring and reads the broker words; the broker consumes the ring, grants LP requests
// and publishes its state. The GPU writes completion markers into the stream slots (the segment is
// registered with cuMemHostRegister by the client). Everything here is fixed-size, pointer-free and
// lock-free, so two builds with the same abi_major interoperate.
//
// Ring positions are free-running uint32_t; an entry's position is also its identity: an LP request
// is granted when `granted` passes its position, and a completion marker writes the position of the
// launch it follows.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace fikit {

inline constexpr uint64_t kSegmentMagic = 0x315447534b494646ULL;  // "FFIKSGT1", little-endian
inline constexpr uint16_t kAbiMajor = 2;  // bump on any incompatible layout or protocol change
inline constexpr uint16_t kAbiMinor = 4;  // bump when adding fields in reserved space
// 2.1: a segment serves one GPU (SegmentHeader::gpu), named by RegisterRequest::gpu_uuid; the
// register request may carry the HP latency budget the tenant asks for (RegisterRequestBudget).
// 2.2: a drain (ClientCounters::syncs) rings the doorbell of a broker that sleeps.
// 2.3: LP bursts (BrokerWords::burst_end, burst_until_ns; kFlagBurst): the broker lets the next
// requests of a LP tenant launch without waiting for their grants, as one unit.
// 2.4: an HP launch announces itself before the driver call (ClientCounters::hp_issuing_ns): a
// graph launch can take milliseconds to return, and its record only follows then.

inline constexpr uint32_t kRingEntries = 4096;  // power of two
inline constexpr uint32_t kRingMask = kRingEntries - 1;
inline constexpr uint32_t kStreamSlots =
    64;  // streams tracked per tenant; more share the last slot
inline constexpr uint32_t kKeyNames =
    512;                                  // kernel names published per tenant (for status/profiles)
inline constexpr uint32_t kNameLen = 32;  // tenant name, NUL-terminated
inline constexpr uint32_t kKeyNameLen = 48;  // kernel name prefix, NUL-terminated
inline constexpr size_t kCacheLine = 64;

// Priority levels: 0 is the highest. The highest level never waits (HP path); every other level
// asks the broker.
inline constexpr uint32_t kPriorityLevels = 8;
inline constexpr uint32_t kPriorityHigh = 0;
inline constexpr uint32_t kPriorityNormal = 1;
inline constexpr uint32_t kPriorityLow = 2;

static_assert((kRingEntries & kRingMask) == 0, "ring entries must be a power of two");

// What a submission entry says. Unknown kinds make the tenant faulty.
enum class EntryKind : uint16_t {
  kHpLaunch = 1,    // a high-priority launch, already issued to the driver
  kLpRequest = 2,   // a lower-priority launch waiting for a grant at this position
  kLpLaunched = 3,  // the granted request `ref` was issued; a marker follows it if kFlagMarker
  kLpAbort = 4,     // the granted request `ref` was not issued (driver error): free its grant
  kHintIdle = 5,    // the tenant says it is idle for `kernel_key` nanoseconds (fikit_hint_idle)
};
inline constexpr uint16_t kEntryKindMax = 5;

// Entry flags.
// A completion marker follows, writing position + 1 (kHpLaunch: this entry's position;
// kLpLaunched: ref, the request's).
inline constexpr uint32_t kFlagMarker = 1u << 0;
inline constexpr uint32_t kFlagGraph = 1u << 1;        // a graph launch (one unit, its own key)
inline constexpr uint32_t kFlagCooperative = 1u << 2;  // cuLaunchCooperativeKernel
// kLpRequest (2.3): launched at once inside the broker's burst (BrokerWords::burst_end), without
// waiting for a grant; the broker counts it granted when it consumes it.
inline constexpr uint32_t kFlagBurst = 1u << 3;
inline constexpr uint32_t kFlagsKnown = kFlagMarker | kFlagGraph | kFlagCooperative | kFlagBurst;

// One submission ring entry, 32 bytes. `commit` is written last, with release order (see ring.h).
struct SubmitEntry {
  std::atomic<uint32_t>
      commit;            // position + 1 once published; position + 1 - kRingEntries while free
  uint16_t kind;         // EntryKind
  uint16_t stream_slot;  // < kStreamSlots
  uint32_t ref;          // kLpLaunched/kLpAbort: position of the request it completes
  uint32_t flags;        // kFlag*
  uint64_t kernel_key;   // kernel identity (kernel_key in util.h); kHintIdle: idle nanoseconds
  uint64_t t_ns;         // CLOCK_MONOTONIC when the client wrote it
};

// Multi-producer (client threads), single-consumer (broker) ring.
struct SubmitRing {
  alignas(kCacheLine) std::atomic<uint32_t> tail;  // next position to reserve; producers CAS it
  alignas(kCacheLine) std::atomic<uint32_t> head;  // next position to consume; the broker stores it
  alignas(kCacheLine) SubmitEntry entries[kRingEntries];
};

// Per-stream completion state. `gpu_done` is written by the GPU (cuStreamWriteValue64 completion
// markers); `host_done` by the client when a synchronizing call returned. Both hold ring positions
// + 1 (0: nothing yet).
struct StreamSlot {
  std::atomic<uint64_t> gpu_done;
  std::atomic<uint32_t> host_done;
  uint32_t reserved0;
  std::atomic<uint64_t> host_done_ns;  // CLOCK_MONOTONIC when host_done was stored
  uint64_t reserved1;
};

// Tenant states, published by the broker.
enum class TenantState : uint32_t {
  kConnecting = 0,  // segment created, not yet scheduled
  kActive = 1,      // scheduled: follow the protocol
  kFaulty = 2,      // the broker found a bad entry: fail open for good
  kClosed = 3,      // the broker stopped or dropped the tenant: fail open, reconnect later
};

// Words the broker writes and the client reads.
struct BrokerWords {
  alignas(
      kCacheLine) std::atomic<uint32_t> granted;    // LP requests at positions < granted may launch
  std::atomic<uint32_t> waiters;                    // client threads asleep on `granted`
  alignas(kCacheLine) std::atomic<uint32_t> state;  // TenantState
  std::atomic<uint32_t> hp_marker_every;  // HP: put a marker after 1 in N launches (0: never)
  std::atomic<uint64_t> heartbeat_ns;     // CLOCK_MONOTONIC, refreshed by the broker while it runs
  // LP burst (2.3): a request at a position before burst_end may launch at once, with kFlagBurst,
  // while CLOCK_MONOTONIC is before burst_until_ns (0: no burst). The broker stores burst_end
  // first, then burst_until_ns with release order; the client loads them in the other order.
  std::atomic<uint64_t> burst_until_ns;
  std::atomic<uint32_t> burst_end;
  uint32_t reserved0;
  uint64_t reserved[3];
  alignas(
      kCacheLine) std::atomic<uint32_t> doorbell;  // bumped by the client to wake a sleeping broker
  std::atomic<uint32_t> broker_sleeping;           // non-zero while the broker waits on doorbells
};

// Counters the client writes (relaxed) and the broker shows.
struct ClientCounters {
  alignas(kCacheLine) std::atomic<uint64_t> launches;  // intercepted launches
  std::atomic<uint64_t> passed_through;  // launched without the broker (fail open, capture)
  std::atomic<uint64_t> dropped;         // HP records lost to a full ring
  std::atomic<uint64_t> markers;         // completion markers enqueued
  std::atomic<uint64_t> syncs;           // synchronizing calls that published a drain
  // HP (2.4): CLOCK_MONOTONIC when a launch began its driver call, before its kHpLaunch record
  // (written once the call returns); 0 after a call that failed. The broker takes the tenant as
  // busy from then until a record of that time or later comes, for kHpIssuingMaxNs at most.
  std::atomic<uint64_t> hp_issuing_ns;
  uint64_t reserved[2];
};

// Kernel names published by the client (append-only): a writer claims an index with `claimed`,
// writes the name, then stores the key with release order; readers take an entry once its key is
// non-zero.
struct KeyName {
  std::atomic<uint64_t> kernel_key;
  char name[kKeyNameLen];
  uint64_t reserved;
};
struct KeyNameTable {
  alignas(kCacheLine) std::atomic<uint32_t> claimed;
  uint32_t reserved0;
  KeyName entries[kKeyNames];
};

struct SegmentHeader {
  uint64_t magic;  // kSegmentMagic
  uint16_t abi_major;
  uint16_t abi_minor;
  uint32_t header_size;   // sizeof(SegmentHeader)
  uint64_t segment_size;  // sizeof(Segment)
  uint32_t tenant_id;
  int32_t owner_pid;
  uint32_t priority;  // 0 (highest) .. kPriorityLevels-1
  uint32_t ring_entries;
  uint32_t stream_slots;
  uint32_t gpu;  // the broker's index of the GPU this segment's launches run on (2.1; 0 before)
  char name[kNameLen];
  uint64_t reserved[4];
};

struct Segment {
  alignas(kCacheLine) SegmentHeader hdr;
  alignas(kCacheLine) BrokerWords broker;
  alignas(kCacheLine) ClientCounters client;
  alignas(4096) StreamSlot slots[kStreamSlots];  // page-aligned: registered with the GPU
  alignas(kCacheLine) KeyNameTable names;
  alignas(kCacheLine) SubmitRing ring;
};

// Layout checks: a change here is an ABI change.
static_assert(std::atomic<uint32_t>::is_always_lock_free);
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<uint32_t>) == 4 && sizeof(std::atomic<uint64_t>) == 8);
static_assert(sizeof(SubmitEntry) == 32);
static_assert(offsetof(SubmitEntry, kernel_key) == 16);
static_assert(sizeof(StreamSlot) == 32);
static_assert(sizeof(KeyName) == 64);
static_assert(sizeof(SegmentHeader) == 112);
static_assert(offsetof(SubmitRing, head) == kCacheLine);
static_assert(offsetof(SubmitRing, entries) == 2 * kCacheLine);
static_assert(offsetof(Segment, slots) % 4096 == 0);
static_assert(offsetof(Segment, broker) == 128);
static_assert(offsetof(Segment, client) == 320);
static_assert(offsetof(BrokerWords, burst_until_ns) == 80);
static_assert(offsetof(BrokerWords, doorbell) == 128);
static_assert(offsetof(ClientCounters, hp_issuing_ns) == 40);
static_assert(sizeof(ClientCounters) == 64);

// Return true if `a` is at or after `b` in free-running uint32_t position order.
constexpr bool pos_at_or_after(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) >= 0; }

// Initialise a zero-filled segment (broker side, before the client maps it).
inline void segment_init(Segment* seg, uint32_t tenant_id, int32_t owner_pid, uint32_t priority,
                         const char* name) {
  SegmentHeader& h = seg->hdr;
  h.magic = kSegmentMagic;
  h.abi_major = kAbiMajor;
  h.abi_minor = kAbiMinor;
  h.header_size = sizeof(SegmentHeader);
  h.segment_size = sizeof(Segment);
  h.tenant_id = tenant_id;
  h.owner_pid = owner_pid;
  h.priority = priority;
  h.ring_entries = kRingEntries;
  h.stream_slots = kStreamSlots;
  for (uint32_t i = 0; name && name[i] && i + 1 < kNameLen; i++) h.name[i] = name[i];
  // Every slot starts "free in the previous lap" so that position p is empty until commit == p + 1.
  for (uint32_t i = 0; i < kRingEntries; i++)
    seg->ring.entries[i].commit.store(i + 1 - kRingEntries, std::memory_order_relaxed);
  seg->broker.state.store(static_cast<uint32_t>(TenantState::kConnecting),
                          std::memory_order_release);
}

// Return nullptr if `seg` (a mapping of `size` bytes) is a segment of this ABI, else what does not
// match.
inline const char* segment_check(const Segment* seg, size_t size) {
  if (size < sizeof(SegmentHeader)) return "segment smaller than its header";
  if (seg->hdr.magic != kSegmentMagic) return "bad segment magic (not a fikit segment)";
  if (seg->hdr.abi_major != kAbiMajor) return "segment ABI major version differs from this build";
  if (seg->hdr.header_size != sizeof(SegmentHeader) || seg->hdr.segment_size != sizeof(Segment) ||
      size < sizeof(Segment))
    return "segment size differs from this build";
  if (seg->hdr.ring_entries != kRingEntries || seg->hdr.stream_slots != kStreamSlots)
    return "segment ring geometry differs from this build";
  if (seg->hdr.priority >= kPriorityLevels) return "segment priority out of range";
  return nullptr;
}

}  // namespace fikit
