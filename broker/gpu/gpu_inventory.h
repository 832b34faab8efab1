// The NVIDIA GPUs of this machine as the driver lists them (/proc/driver/nvidia/gpus/*/information:
// minor number, UUID, model), for the per-GPU sections of status and the gpu label of metrics.
// Empty without the NVIDIA driver (CI, the simulated driver). FIKIT_NVIDIA_GPUS_DIR replaces the
// folder (a simulated run on a GPU host: an empty one).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fikit::broker {

struct GpuIdentity {
  uint32_t minor = 0;  // /dev/nvidia<minor>
  std::string uuid;    // "GPU-8c1d..."
  std::string model;   // "NVIDIA H200"
  std::string driver;  // the driver's version ("" if unknown): a stored calibration is its own
  bool has_device_file = false;  // from /proc/driver/nvidia: /dev/nvidia<minor> is this GPU
};

// The GPUs listed under `dir`, by minor number. Read once per process for the default directory.
std::vector<GpuIdentity> read_nvidia_gpus(const std::string& dir);
const std::vector<GpuIdentity>& nvidia_gpus();

// The pid of another process that has /dev/nvidia<minor> open (the GPU is in use), or 0.
int gpu_user_pid(uint32_t minor);

}  // namespace fikit::broker
