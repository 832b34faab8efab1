// The GPUs of the simulated node (FIKIT_SIM_DEVICES=N): each is its own shm object, with its own
// engine, UUID, name and SM count, sharing nothing with the others. GPU 0 is FIKIT_SIM_GPU itself
// (so a one-GPU node is what it always was); GPU k > 0 is FIKIT_SIM_GPU-k. A UUID is derived from
// the GPU's shm name, so every process naming the same node agrees on it.
//
// CUDA_VISIBLE_DEVICES is honoured as the real driver does: a comma-separated list of indices or
// UUIDs (a unique prefix of "GPU-..." is enough); the list ends at the first entry that names no
// GPU or names one already listed; set but empty means no GPU. CUdevice ordinals count the listed
// GPUs in list order.
#pragma once

#include <cuda.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sim/sim_state.h"

namespace fikit::sim {

struct DeviceIdentity {
  uint32_t index = 0;     // physical index in the simulated node
  Config cfg;             // cfg with this GPU's shm name and SM count
  CUuuid uuid{};          // derived from the shm name
  std::string uuid_text;  // "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
  std::string name;       // "fikit simulated GPU" (one GPU), else "fikit simulated GPU <index>"
};

// Every GPU of the node `cfg` describes, by physical index.
std::vector<DeviceIdentity> node_devices(const Config& cfg);

// The physical indices CUDA_VISIBLE_DEVICES (`env`, nullptr: unset) makes visible, in ordinal
// order.
std::vector<uint32_t> visible_devices(const std::vector<DeviceIdentity>& node, const char* env);

}  // namespace fikit::sim
