// The NVIDIA GPUs of this machine as the driver lists them (/proc/driver/nvidia/gpus/*/information:
// minor number, UUID, model), for the per-GPU sections of status and the gpu label of metrics.
// Empty without the NVIDIA driver (CI, the simulated driver).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fikit::broker {

struct GpuIdentity {
  uint32_t minor = 0;  // /dev/nvidia<minor>
  std::string uuid;    // "GPU-8c1d..."
  std::string model;   // "NVIDIA H200"
};

// The GPUs listed under `dir`, by minor number. Read once per process for the default directory.
std::vector<GpuIdentity> read_nvidia_gpus(const std::string& dir);
const std::vector<GpuIdentity>& nvidia_gpus();

}  // namespace fikit::broker
