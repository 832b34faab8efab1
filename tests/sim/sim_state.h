// The simulated GPU's shared state: configuration from the environment, creating or attaching the
// shm object, the robust lock, and slot management (processes, contexts, streams, events),
// including reclaiming the slots of processes that died.
#pragma once

#include <string>
#include <vector>

#include "sim/sim_shared.h"

namespace fikit::sim {

// FIKIT_SIM_* settings (and the MPS client variables). The GPU-wide ones (mode, SMs, timeslice,
// switch, slice clock, bandwidth factor) only matter to the process that creates the shm object;
// the others are per process.
struct Config {
  std::string shm_name;                // FIKIT_SIM_GPU, default "/fikit-sim-gpu-<uid>"
  Mode mode = Mode::kTimeslice;        // FIKIT_SIM_MODE=timeslice|mps
  uint32_t sms = 132;                  // FIKIT_SIM_SMS (its first value: GPU 0's)
  uint32_t devices = 1;                // FIKIT_SIM_DEVICES: GPUs in the simulated node
  std::vector<uint32_t> device_sms;    // FIKIT_SIM_SMS=a,b,...: per GPU (the last repeats)
  uint64_t timeslice_ns = 2000000;     // FIKIT_SIM_TIMESLICE_US
  uint64_t switch_ns = 200000;         // FIKIT_SIM_SWITCH_US
  uint64_t default_kernel_ns = 10000;  // FIKIT_SIM_DEFAULT_KERNEL_US
  uint64_t launch_ns = 2000;           // FIKIT_SIM_LAUNCH_NS
  uint64_t slice_clock = 0;            // FIKIT_SIM_SLICE_CLOCK=0|1 (sim_shared.h: slice_clock)
  uint64_t mps_bw_pct = 0;             // FIKIT_SIM_MPS_BW_PCT: mps_bw in percent
  uint64_t mps_slots = 1;              // FIKIT_SIM_MPS_SLOTS (sim_shared.h: mps_slots)
  uint64_t mps_thread_pct = 100;       // CUDA_MPS_ACTIVE_THREAD_PERCENTAGE (per process)
  uint64_t mps_priority = 0;           // CUDA_MPS_CLIENT_PRIORITY (per process)
  std::string trace_prefix;            // FIKIT_SIM_TRACE ("" = no trace)
};

// Read the FIKIT_SIM_* variables. Return false with a message in *err on an invalid value.
bool config_from_env(Config* cfg, std::string* err);

// Map the simulated GPU named cfg.shm_name, creating and initializing it if it does not exist yet.
// Return nullptr with a message in *err on failure.
SimShared* gpu_attach(const Config& cfg, std::string* err);
void gpu_detach(SimShared* g);

// Holds the GPU lock. If the previous holder died, makes the state consistent again and drops
// the work of dead processes before returning.
class ShmLock {
 public:
  explicit ShmLock(SimShared* g);
  ~ShmLock();
  ShmLock(const ShmLock&) = delete;
  ShmLock& operator=(const ShmLock&) = delete;

 private:
  SimShared* g_;
};

// Slot allocation; call with the lock held. Each returns the slot or -1 when the table is full.
int32_t proc_alloc(SimShared& g, int pid);

int32_t ctx_alloc(SimShared& g, int32_t proc);
int32_t stream_alloc(SimShared& g, int32_t proc, int32_t ctx, uint32_t local_id);
int32_t event_alloc(SimShared& g, int32_t proc);
// Free stream `slot` if it was destroyed and its owner has reaped all its ops.
void stream_free_if_drained(SimShared& g, uint32_t slot);
// Free an event slot. Ops still queued on it see a stale serial and pass.
void event_free(SimShared& g, uint32_t slot);
// Free a context and its streams, dropping their queued work.
void ctx_free(SimShared& g, int32_t ctx);
// Drop everything a process owns.
void proc_free(SimShared& g, int32_t proc);

// Drop the work of processes that no longer exist. Runs at most every few milliseconds unless
// `force`; call with the lock held.
void reclaim_dead(SimShared& g, uint64_t now, bool force);

// Publish a state change that can make queued work finish earlier (dropped work): bump the
// generation word and wake its waiters.
void bump_generation(SimShared& g);

}  // namespace fikit::sim
