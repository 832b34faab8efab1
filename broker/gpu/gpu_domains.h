// The GPUs the broker schedules: one scheduling domain each (docs/MULTIGPU.md). A tenant registers
// once per GPU it launches on and names the GPU by UUID (RegisterRequest::gpu_uuid); this table
// maps the UUID to the domain's index.
//
// With the NVIDIA driver's list (/proc/driver/nvidia/gpus: gpu_inventory.h) the domains are those
// GPUs, by minor number, and a UUID not among them (a MIG instance, a GPU the driver does not list)
// is refused with a message saying so. Without it (the simulated driver; a container without
// /proc/driver/nvidia) a GPU becomes a domain when a tenant first names it, up to kMaxGpuDomains.
// A registration without a UUID (an ABI 2.0 client, or one whose driver could not name the GPU)
// is GPU 0's. Thread-safe: admission and status run on the control thread, tests elsewhere.
#pragma once

#include <fikit/gpu_uuid.h>
#include <fikit/protocol.h>
#include <fikit/result.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "gpu/gpu_inventory.h"

namespace fikit::broker {

inline constexpr uint32_t kMaxGpuDomains = 64;

class GpuDomains {
 public:
  // `known`: the node's GPUs. `learn`: a GPU not among them becomes a new domain (the list came
  // from CUDA, not from the NVIDIA driver's /proc list, or there is none); else it is refused.
  explicit GpuDomains(std::vector<GpuIdentity> known, bool learn = false);

  // The domain of the GPU `uuid` (kGpuUuidLen bytes; nullptr: none given, GPU 0), or a refusal
  // that says why and what happens to the tenant's launches.
  Result<uint32_t> index_of(const uint8_t* uuid);
  // The domains in index order (uuid "" for a GPU 0 no tenant has named yet, when learning).
  std::vector<GpuIdentity> list() const;
  bool learning() const { return learning_; }

 private:
  mutable std::mutex mu_;
  std::vector<GpuIdentity> gpus_;
  bool learning_;
};

}  // namespace fikit::broker
