// One lock file per GPU under the run directory (<run_dir>/gpu-<UUID>.lock, flock'ed for the
// broker's lifetime, holding "<pid> <socket>"), so that a second broker on the same GPUs is
// refused even on another socket: two brokers each granting LP work on one GPU would both think
// it theirs. The refusal names the running broker's pid and socket.
#pragma once

#include <fikit/result.h>

#include <string>
#include <vector>

#include "gpu/gpu_inventory.h"

namespace fikit::broker {

class GpuLocks {
 public:
  GpuLocks() = default;
  ~GpuLocks();
  GpuLocks(const GpuLocks&) = delete;
  GpuLocks& operator=(const GpuLocks&) = delete;

  // Lock every GPU of `gpus` (those with a UUID) under `run_dir` for the broker on `socket`.
  // Fails, holding none, if one is held by another broker or the files cannot be made.
  Status lock(const std::string& run_dir, const std::vector<GpuIdentity>& gpus,
              const std::string& socket);

 private:
  std::vector<int> fds_;
};

}  // namespace fikit::broker
