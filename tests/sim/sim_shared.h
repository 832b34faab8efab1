// The simulated GPU's state, shared by every process that uses the sim: one POSIX shm object
// (FIKIT_SIM_GPU) holding this struct, guarded by one process-shared robust mutex.
//
// Work is a set of in-order op rings, one per stream. An op at the head of its stream (`exec`) is
// the one the GPU works on; ops in [head, exec) are done and wait for their owning process to reap
// them (write a marker to its memory, append a trace line); [exec, tail) is queued work. Only the
// owner moves `head` and `tail`; whoever holds the lock advances the simulation and moves `exec`.
// Everything is fixed-size and pointer-free (host addresses in ops are only dereferenced by their
// owner), so any process can map it at any address.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstdint>

namespace fikit::sim {

inline constexpr uint64_t kSimMagic = 0x314d53544b494646ull;  // "FFIKTSM1", little-endian
inline constexpr uint32_t kSimVersion = 2;                    // bump on any layout change

inline constexpr uint32_t kMaxProcs = 64;
inline constexpr uint32_t kMaxSimDevices = 16;  // FIKIT_SIM_DEVICES: each GPU its own shm object
inline constexpr uint32_t kMaxContexts = 64;
inline constexpr uint32_t kMaxStreams = 256;
inline constexpr uint32_t kMaxEvents = 4096;
inline constexpr uint32_t kStreamRing = 1024;  // queued ops per stream; launches block when full
inline constexpr uint32_t kMaxCohorts = 512;   // mps: groups of resident blocks (each >= 1 slot)
inline constexpr uint64_t kNever = UINT64_MAX;

enum class Mode : uint32_t { kTimeslice = 0, kMps = 1 };

enum class OpKind : uint32_t {
  kKernel = 1,       // runs by time: `work_ns` of full-speed GPU time at `demand` of the SMs
  kWrite64 = 2,      // the owner stores `value` to host address `arg` once it reaches the head
  kEventRecord = 3,  // marks event `arg` (slot | serial << 32) done up to record `value`
  kEventWait = 4,    // blocks its stream until event `arg` has completed record `value`
};

struct SimOp {
  OpKind kind = OpKind::kKernel;
  uint32_t name = 0;        // kernel: the owner's kernel-name index (for its trace)
  uint64_t arg = 0;         // kernel: tag; write: host address; event ops: event id
  uint64_t value = 0;       // kernel: work in full-speed ns; write: value; event ops: record no.
  double remaining_ns = 0;  // kernel: full-speed work still to do
  double demand = 0;        // kernel: fraction of the GPU's SMs it occupies, in (0, 1]
  uint64_t start_ns = 0;    // kernel: when it first ran (0: not yet)
  uint64_t end_ns = 0;      // when it completed
  // mps (sim_mps_model.h): the kernel as `blocks` SM-sized thread blocks in waves of at most
  // `sms`, each holding its SM for value / waves ns at full speed (0: one wave of demand * sms).
  uint32_t blocks = 0;
  uint32_t dispatched = 0;  // blocks given an SM so far
  uint32_t resident = 0;    // blocks holding an SM now
  uint32_t ready_seq = 0;   // order in which kernels reached a stream head (0: not yet)
};

struct SimStream {
  uint32_t in_use = 0;
  uint32_t destroyed = 0;  // cuStreamDestroy'd: freed by its owner once drained
  int32_t proc = 0;        // owning process slot
  int32_t ctx = 0;         // context slot
  uint32_t local_id = 0;   // the owner's stream id (trace files)
  uint32_t head = 0;       // next op for the owner to reap (free-running)
  uint32_t exec = 0;       // next op to complete (free-running)
  uint32_t tail = 0;       // next free ring entry (free-running)
};

struct SimContext {
  uint32_t in_use = 0;
  int32_t proc = 0;
};

struct SimEvent {
  uint32_t in_use = 0;
  uint32_t serial = 0;  // changes on every reuse of the slot: stale ops see a different serial
  int32_t proc = 0;
  uint32_t pad = 0;
  uint64_t recorded = 0;  // records enqueued
  uint64_t done = 0;      // highest record completed
  uint64_t time_ns = 0;   // when record `done` completed
};

struct SimProc {
  int32_t pid = 0;
  uint32_t in_use = 0;
  uint64_t kernels = 0;  // kernels completed by this process
  // mps: CUDA_MPS_CLIENT_PRIORITY (0 normal, 1 below normal: its blocks are dispatched after
  // those of normal clients) and CUDA_MPS_ACTIVE_THREAD_PERCENTAGE as the SMs its blocks may
  // hold at once (0: all), read when the process attaches.
  uint32_t mps_priority = 0;
  uint32_t mps_sm_cap = 0;
};

// mps: blocks of one kernel that got their SMs at the same time, so have the same work left.
struct SimCohort {
  uint32_t stream = 0;  // the kernel: head op of this stream, at ring position `exec`
  uint32_t exec = 0;
  uint32_t blocks = 0;
  uint32_t pad = 0;
  double remaining_ns = 0;  // full-speed work left in each block
};

struct SimShared {
  std::atomic<uint64_t> magic;  // stored last (release) by the creator
  uint32_t version;
  uint32_t size;  // sizeof(SimShared) in KiB, a cheap layout check
  Mode mode;
  uint32_t sms;
  uint64_t timeslice_ns;
  uint64_t switch_ns;
  pthread_mutex_t lock;  // robust, process-shared

  // Waiters futex-wait on `generation` with a timeout to the next predicted event. It is bumped
  // when work is dropped (dead process, destroyed context, exit), which can make other work finish
  // earlier than predicted; an enqueue cannot, so it does not bump. `waiters` lets a bump skip
  // the futex wake when nobody sleeps.
  std::atomic<uint32_t> generation;
  std::atomic<uint32_t> waiters;

  // Everything below is guarded by `lock`.
  uint64_t now_ns;            // the simulation has run up to this CLOCK_MONOTONIC time
  uint64_t next_reclaim_ns;   // next scan for dead processes
  int32_t active_ctx;         // timeslice: context owning the GPU (-1: none loaded)
  int32_t switch_to;          // timeslice: context being switched to (-1: no switch)
  uint64_t switch_end_ns;     // timeslice: the switch completes at this time
  uint64_t slice_start_ns;    // timeslice: when the active context's slice began
  uint64_t kernels_total;     // kernels completed
  uint64_t context_switches;  // timeslice switches started
  uint32_t stream_hwm;        // streams[0, stream_hwm) may be in use
  uint32_t slice_clock;       // timeslice: 0 slices count from contention, 1 from the slice start
  double mps_bw;              // mps: slowdown per unit share of SMs held by other processes
  uint32_t mps_seq;           // mps: last ready_seq handed out
  uint32_t cohorts_used;      // mps: cohorts[0, cohorts_used) are in use
  uint32_t mps_slots;         // mps: blocks of distinct kernels one SM holds at once (0 = 1)
  uint32_t pad;

  SimProc procs[kMaxProcs];
  SimContext ctxs[kMaxContexts];
  SimEvent events[kMaxEvents];
  SimStream streams[kMaxStreams];
  SimCohort cohorts[kMaxCohorts];
  SimOp rings[kMaxStreams][kStreamRing];
};

static_assert(std::atomic<uint32_t>::is_always_lock_free);
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert((kStreamRing & (kStreamRing - 1)) == 0, "ring size must be a power of two");

}  // namespace fikit::sim
