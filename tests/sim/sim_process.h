// The sim's per-process side: the attachment made by cuInit, the engine thread, reaping of this
// process's completed ops (marker writes, trace lines), waiting for the simulated GPU and pushing
// work to it. API entry points (api_*.cpp) are written on top of these helpers.
#pragma once

#include <cuda.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sim/sim_devices.h"
#include "sim/sim_engine.h"
#include "sim/sim_handles.h"
#include "sim/sim_state.h"

namespace fikit::sim {

struct Process;

// One GPU of the node as this process uses it: its shm object, this process's slot there, its
// primary context, its trace buffer and its engine thread. GPUs share nothing.
struct Device {
  Process* p = nullptr;
  DeviceIdentity id;
  uint32_t ordinal = 0;  // its CUdevice number (position in CUDA_VISIBLE_DEVICES)
  SimShared* g = nullptr;
  int32_t slot = -1;  // process slot in this GPU's shared state

  CUctx_st* primary = nullptr;  // guarded by Process::mu
  int primary_refs = 0;

  std::string trace_buf;  // completed kernels not yet written; guarded by the shm lock
  std::mutex trace_mu;    // taken before the shm lock
  int trace_fd = -1;

  // The engine sleeps (futex on `kick`) until `engine_due`, the next time it has something to
  // do. Pushers move engine_due earlier (under the shm lock) and then bump and wake `kick`.
  std::thread engine;
  std::atomic<uint32_t> kick{0};
  std::atomic<uint64_t> engine_due{kNever};
  std::atomic<uint32_t> waiting{0};  // threads in wait_until: they reap, the engine need not
};

struct Process {
  Config cfg;
  int pid = 0;
  std::vector<std::unique_ptr<Device>> devices;  // the visible GPUs, by ordinal

  HandleTable handles;  // every handle handed out and not destroyed

  std::mutex mu;  // modules' function tables, the primary contexts, dead contexts
  // Destroyed contexts: other threads may still have them current (they are invalid handles).
  std::vector<std::unique_ptr<CUctx_st>> dead_contexts;
  std::atomic<uint32_t> next_stream_id{0};

  std::mutex names_mu;                    // innermost lock (taken under the shm lock when reaping)
  std::vector<std::string> kernel_names;  // SimOp::name → kernel name; never shrinks

  std::atomic<bool> stop{false};
};

// This process's attachment, or nullptr before cuInit (and after exit or in a forked child).
Process* process();
// cuInit: read the environment, attach the visible simulated GPUs, start their engine threads.
CUresult process_init();
// The GPU of CUdevice `ordinal`, or nullptr.
Device* device_of(Process* p, CUdevice ordinal);

// Return true if `h` is a live handle of its type, handed out by this process.
template <class T>
bool valid(const T* h) {
  Process* p = process();
  return p && p->handles.has(h, T::kKind);
}

// Record a new handle and give it out.
template <class T>
T* hand_out(Process* p, std::unique_ptr<T> h) {
  p->handles.add(h.get(), T::kKind);
  return h.release();
}

// Forget a handle and delete it.
template <class T>
void retire(Process* p, T* h) {
  p->handles.remove(h);
  delete h;
}

// The calling thread's context stack (top = current context).
std::vector<CUctx_st*>& ctx_stack();
CUctx_st* current_ctx();

// Bring the GPU's simulation up to now and reap this process's completed ops there. Call with
// its lock held.
void catch_up(Device* d);

// Sleep until the simulated event at `next` or a change of the generation from `gen`: futex
// wait while far, then spin for the last microseconds.
void wait_for_event(SimShared* g, uint32_t gen, uint64_t next);

// After an enqueue (lock held): settle the new ops and move this process's engine wake-up time
// earlier if they need it. Return true if the engine must be woken (kick_engine, after unlocking).
bool schedule_engine(Device* d);
void kick_engine(Device* d);

// Wait until `done()` holds on GPU `d`. done() runs under its lock, after catch_up().
template <class Done>
void wait_until(Device* d, Done done) {
  struct Waiting {  // the engine defers to this thread meanwhile
    Device* d;
    explicit Waiting(Device* d) : d(d) { d->waiting.fetch_add(1); }
    ~Waiting() { d->waiting.fetch_sub(1); }
  } waiting(d);
  for (;;) {
    uint32_t gen;
    uint64_t next;
    {
      ShmLock lock(d->g);
      catch_up(d);
      if (done()) return;
      gen = d->g->generation.load();
      next = next_event(*d->g);
    }
    wait_for_event(d->g, gen, next);
  }
}

// Append ops to stream `s`, waiting while its ring is full. Once `n` entries are free (n <=
// kStreamRing), `op(i)` is called under the lock for i in [0, n) and must return the i-th op.
template <class OpAt>
CUresult push_ops(Process*, CUstream_st* s, uint32_t n, OpAt op) {
  CUresult r = CUDA_SUCCESS;
  bool wake = false;
  Device* d = s->ctx->dev;
  wait_until(d, [&] {
    SimShared& g = *d->g;
    SimStream& st = g.streams[s->slot];
    if (!st.in_use || st.proc != d->slot || st.destroyed) {
      r = CUDA_ERROR_INVALID_HANDLE;
      return true;
    }
    if (st.tail - st.head + n > kStreamRing) return false;
    for (uint32_t i = 0; i < n; i++) g.rings[s->slot][st.tail++ % kStreamRing] = op(i);
    wake = schedule_engine(d);
    return true;
  });
  // No generation bump: new work never makes queued work finish earlier, so every waiter's
  // timeout (the next predicted event) stays valid; waking them would only contend for the lock.
  if (wake) kick_engine(d);
  return r;
}

// Append one op to stream `s` (see push_ops).
CUresult push_op(Process* p, CUstream_st* s, const SimOp& op);

// Write the trace lines of completed kernels to <FIKIT_SIM_TRACE>.<pid> (GPU 0) or
// <FIKIT_SIM_TRACE>.gpu<k>.<pid> (GPU k > 0), at sync points and exit: one GPU's, or every GPU's.
void flush_trace(Device* d);
void flush_trace(Process* p);

// Keep the calling thread busy for `ns` (the host cost of a driver call).
void burn_cpu(uint64_t ns);

// Resolve a stream argument: NULL is the legacy default stream (the per-thread one for `_ptsz`
// entry points); CU_STREAM_LEGACY and CU_STREAM_PER_THREAD name them explicitly.
CUresult resolve_stream(CUstream s, bool ptsz, CUstream_st** out);

// Wait until every op queued so far on stream `s` (or on every stream of `ctx`) completed and was
// reaped, then flush the trace.
void stream_wait(Process* p, CUstream_st* s);
void ctx_wait(Process* p, CUctx_st* ctx);

// Create a context on GPU `d` (shm slot and its two default streams). Return nullptr when full.
CUctx_st* ctx_create(Process* p, Device* d);
// Create a stream of `ctx`. Return nullptr when full.
CUstream_st* stream_create(Process* p, CUctx_st* ctx);

}  // namespace fikit::sim
