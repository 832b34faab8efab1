// The "gpu" member of the status document: the eBPF GPU-driver observer's state and every process
// it saw use the NVIDIA driver (tenants, unmanaged GPU processes, other driver users), live or
// recently exited, with contexts and device memory. Drawn as a second table by status_text().
//
//   "gpu": {"observer": "loaded"|"disabled"|"failed", "reason", "audit", "test_device",
//           "nvidia_major", "uvm_major", "traced_ioctls", "events", "dropped", "impossible",
//           "impossible_line", "unmanaged", "processes_omitted",
//           "processes": [{"pid", "name", "kind": "tenant"|"unmanaged"|"mps-server"|"other",
//           "tenant",
//                          "state": "running"|"exited", "exit_code", "exit_signal", "clients",
//                          "contexts", "channels", "streams", "contexts_created",
//                          "streams_created", "device_bytes", "mapped_bytes",
//                          "peak_device_bytes", "peak_mapped_bytes", "ioctls", "ioctl_ms",
//                          "audited", "launches", "age_s",
//                          "gpus": [{"minor" (null: unattributed), "index", "uuid",
//                                    "contexts", "device_bytes"}]}]}
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "gpu/gpu_inventory.h"

namespace fikit::broker {

enum class GpuObserverState { kDisabled, kLoaded, kFailed };

// What a process is to the broker. kUnmanaged: a GPU process (it created an RM client, a context
// or device memory, or used nvidia-uvm) that is not a tenant: its kernels cannot be scheduled.
// kMpsServer: the MPS server, which holds the GPU objects of its clients (tenants included, with
// --substrate mps). kOther: it only queried the driver (nvidia-smi, or a process older than the
// observer).
enum class GpuProcessKind { kTenant, kUnmanaged, kMpsServer, kOther };

// A process's live contexts and device memory on one GPU, by the minor of /dev/nvidia<minor>
// (-1: what the observer could not attribute to a GPU, docs/BPF.md "Per GPU"), with the GPU's
// index (position in the NVIDIA driver's list, by minor) and UUID where the driver lists it.
struct GpuProcessShare {
  int32_t minor = -1;
  uint32_t contexts = 0;
  uint64_t device_bytes = 0;
  int32_t index = -1;  // -1: not in the driver's list (a test device, no /proc/driver/nvidia)
  std::string uuid;
};

struct GpuProcessInfo {
  pid_t pid = 0;
  std::string name;
  GpuProcessKind kind = GpuProcessKind::kOther;
  uint32_t tenant = 0;  // tenant id, kTenant only
  int64_t uid = -1;     // the owner of its /proc entry; -1: unknown (gone before it was seen)
  bool exited = false;
  int exit_status = 0;  // wait status once exited; -1: unknown (the exit event was lost)
  uint64_t first_ns = 0;
  uint32_t clients = 0;
  uint32_t contexts = 0;
  uint32_t channels = 0;
  uint32_t streams = 0;
  uint32_t contexts_created = 0;
  uint32_t streams_created = 0;
  uint64_t device_bytes = 0;
  uint64_t mapped_bytes = 0;
  uint64_t peak_device_bytes = 0;
  uint64_t peak_mapped_bytes = 0;
  uint64_t ioctls = 0;
  uint64_t ioctl_ns = 0;
  bool audited = false;  // audit mode counts its launches
  uint64_t launches = 0;
  std::vector<GpuProcessShare> gpus;  // attributed GPUs by minor, then the unattributed share
};

struct GpuObserverInfo {
  GpuObserverState state = GpuObserverState::kDisabled;
  std::string reason;  // why disabled or failed
  bool audit = false;
  std::string test_device;  // "MAJ:MIN" or ""
  uint32_t nvidia_major = 0;
  uint32_t uvm_major = 0;  // 0: nvidia-uvm not loaded
  uint64_t traced_ioctls = 0;
  uint64_t events = 0;
  uint64_t dropped = 0;     // events, statistics or objects lost (maps or ring buffer full)
  uint64_t impossible = 0;  // impossible states met by the BPF programs
  uint32_t impossible_line = 0;
  // The observer's BPF programs, with the kernel's run count and run time (counted only while
  // BPF statistics are on: --bpf-stats, or the sysctl kernel.bpf_stats_enabled).
  struct Program {
    uint32_t id = 0;
    std::string name;
    uint64_t runs = 0;
    uint64_t run_ns = 0;
  };
  std::vector<Program> programs;
  bool run_stats = false;  // the broker holds BPF statistics on (--bpf-stats)
};

// Fill each share's index and UUID from the driver's GPU list (gpu_inventory.h, by minor).
void name_gpus(std::vector<GpuProcessShare>* shares, const std::vector<GpuIdentity>& gpus);

const char* observer_state_name(GpuObserverState s);
const char* process_kind_name(GpuProcessKind k);

// The "gpu" member's value, at most max_len bytes dumped: processes beyond it are counted in
// processes_omitted.
nlohmann::json gpu_status_json(const GpuObserverInfo& info,
                               const std::vector<GpuProcessInfo>& procs, uint64_t now_ns,
                               size_t max_len);

// The GPU part of `fikit-broker status` for people, from the member's value.
std::string gpu_status_text(const nlohmann::json& value);

}  // namespace fikit::broker
