// Per-process GPU accounting built from driver events: clients, contexts, channels, streams,
// device memory and mapped memory of every process that used the NVIDIA driver, live or recently
// exited. Pure bookkeeping (no BPF), so it is tested on its own; BpfObserver feeds it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "gpu_event.h"

namespace fikit::bpf {

// ioctl calls of one process to one driver command.
struct IoctlStat {
  uint32_t driver = 0;  // enum fikit_driver: 1 nvidia, 2 nvidia-uvm
  uint32_t code = 0;    // escape number or uvm command (command_name() names it)
  uint64_t count = 0;
  uint64_t total_ns = 0;
  uint64_t failed = 0;
};

// Contexts and device memory of one process on one GPU, by the minor of its /dev/nvidia<minor>.
// minor kUnattributed: objects whose GPU the observer could not tell (their device was never used
// through a GPU's file, was used through two, or their parent chain is not tracked).
struct GpuShare {
  static constexpr int32_t kUnattributed = -1;
  int32_t minor = kUnattributed;
  uint32_t contexts = 0;
  uint64_t device_bytes = 0;
};

// Kernel launches of one process through one libcuda entry point (audit mode).
struct LaunchCount {
  std::string function;
  uint64_t count = 0;
};

struct ProcessUsage {
  pid_t pid = 0;
  std::string comm;
  uint64_t first_ns = 0;  // CLOCK_MONOTONIC of its first event
  uint64_t last_ns = 0;
  uint32_t clients = 0;   // > 0: a GPU client (cuInit done)
  uint32_t contexts = 0;  // channel groups (TSGs); one CUDA context makes several
  uint32_t channels = 0;
  uint32_t streams = 0;          // UVM range groups: one per CUDA stream
  uint32_t clients_created = 0;  // created since first seen, whatever was freed since
  uint32_t contexts_created = 0;
  uint32_t channels_created = 0;
  uint32_t streams_created = 0;
  uint64_t device_bytes = 0;  // device memory (vidmem) allocated
  uint64_t mapped_bytes = 0;  // UVM external mappings (device and pinned host memory)
  uint64_t peak_device_bytes = 0;
  uint64_t peak_mapped_bytes = 0;
  bool exited = false;
  int exit_status = 0;  // wait status, once exited
  uint64_t exit_ns = 0;
  // Live contexts and device memory split by GPU (docs/BPF.md "Per GPU"): attributed GPUs by
  // minor, then the unattributed share; entries with nothing are left out.
  std::vector<GpuShare> gpus;
  std::vector<IoctlStat> ioctls;      // filled by BpfObserver::snapshot(); final ones at exit
  std::vector<LaunchCount> launches;  // audit mode
};

// BPF map entries that an event made stale: the observer deletes them.
struct StaleKeys {
  std::vector<std::pair<uint32_t, uint32_t>> objects;  // (client, handle) of fikit_objects
  std::vector<uint64_t> mappings;                      // bases of fikit_uvm_maps
};

class GpuAccounting {
 public:
  static constexpr size_t kMaxExited = 256;  // exited processes kept until forgotten

  // Apply one event. Frees cascade down the parent chain (a freed client takes everything it
  // owned) and an exit releases everything; the returned keys are the BPF entries made stale.
  StaleKeys apply(const GpuEvent& e);

  // Store what a process did in the end (its ioctl statistics and launches, read at exit).
  void set_final(pid_t pid, std::vector<IoctlStat> ioctls, std::vector<LaunchCount> launches);

  const ProcessUsage* find(pid_t pid) const;
  std::vector<ProcessUsage> processes() const;  // by pid
  std::vector<pid_t> live_pids() const;
  void forget(pid_t pid);

 private:
  static constexpr int32_t kUnbound = -1;   // Object::minor of a device not seen on a GPU file
  static constexpr int32_t kConflict = -2;  // ... seen on two: unattributed, not guessed
  struct Object {
    ObjectKind kind = ObjectKind::kNone;
    uint32_t parent = 0;
    uint64_t bytes = 0;
    int32_t minor = kUnbound;  // devices only: the GPU they were used through
  };
  using ObjectKey = std::pair<uint32_t, uint32_t>;  // (client, handle)
  struct Process {
    ProcessUsage usage;
    std::map<ObjectKey, Object> objects;
    std::map<uint64_t, uint64_t> mappings;  // base -> length
    std::set<uint64_t> streams;
  };

  Process& process_for(const GpuEvent& e);
  void add_object(Process& p, const GpuEvent& e);
  void remove_object(Process& p, ObjectKey key, StaleKeys* stale);
  void count_object(ProcessUsage& u, const Object& o, int delta);
  void on_exit(Process& p, const GpuEvent& e, StaleKeys* stale);
  Object* device_of(Process& p, ObjectKey key);
  void bind(Process& p, ObjectKey key, uint32_t minor);
  void split_by_gpu(Process& p);

  std::map<pid_t, Process> procs_;
  std::deque<pid_t> exited_;  // oldest first
};

}  // namespace fikit::bpf
