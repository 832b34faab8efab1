// The time-slicing switch-back cost, measured at start-up by fikit-calibrate (tools/): two
// processes take turns on the GPU, and the extra time a kernel takes right after the other
// process's is the cost of giving the GPU back. On the simulated driver it is FIKIT_SIM_SWITCH_US.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gpu/gpu_inventory.h"

namespace fikit::broker {

struct Calibration {
  bool ok = false;
  double switch_us = 0;  // switch_back_us as measured (may be slightly negative: no cost)
  std::string device;    // the GPU's name
  std::string uuid;      // the GPU's UUID and the driver's version, as fikit-calibrate saw them
  std::string driver;
  std::string detail;  // the program's line, or why it failed
};

// fikit-calibrate: $FIKIT_CALIBRATE, else beside this program (<dir of the
// broker>/fikit-calibrate).
std::string calibrate_program();

// Run `program` with `env` added ("NAME=value"; CUDA_MPS_* of the broker's own environment are
// dropped first), bounded to timeout_ms in all (its own measuring loop stops after 0.5 s).
Calibration run_calibration(const std::string& program, const std::vector<std::string>& env,
                            uint64_t timeout_ms);

// The GPUs the CUDA driver shows to `program --list` (no kernel is launched): for machines
// without /proc/driver/nvidia/gpus (the simulated driver, some containers). Empty on failure.
std::vector<GpuIdentity> list_driver_gpus(const std::string& program,
                                          const std::vector<std::string>& env, uint64_t timeout_ms);

}  // namespace fikit::broker
