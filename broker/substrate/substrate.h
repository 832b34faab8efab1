// How the tenants share the GPU underneath the broker (--substrate): MPS, with the broker running
// the MPS control daemon (mps_daemon.h), or the driver's time-slicing between contexts. `auto`
// picks MPS when the broker can run it: nvidia-cuda-mps-control on PATH, a GPU (/dev/nvidia0)
// and root; else time-slicing. The choice settles the switch-back cost the policy plans with:
// measured at start-up on time-slicing (calibration.h) unless --switch-cost-us gives it, 0 on MPS
// unless --calibrate asks for a measurement. GPU settings are never changed.
#pragma once

#include <fikit/result.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "gpu/gpu_inventory.h"
#include "substrate/mps_daemon.h"

namespace fikit::broker {

enum class SubstrateKind { kAuto, kTimeslice, kMps };

struct SubstrateConfig {
  SubstrateKind kind = SubstrateKind::kAuto;  // --substrate
  bool calibrate = false;                     // --calibrate: measure the switch cost on MPS too
  bool switch_cost_given = false;             // --switch-cost-us was given: do not measure
};

// --substrate mps|timeslice|auto.
Status parse_substrate(const char* arg, SubstrateConfig* c);
const char* substrate_name(SubstrateKind k);

// What `auto` looks at.
struct SubstrateFacts {
  std::string mps_control;  // nvidia-cuda-mps-control found on PATH ("" if none)
  bool gpu = false;         // /dev/nvidia0 exists
  bool root = false;        // effective uid 0
  pid_t mps_running = 0;    // a control daemon already runs on our pipe directory
};
SubstrateFacts probe_substrate(const std::string& pipe_dir);

struct SubstrateChoice {
  SubstrateKind kind;  // kMps or kTimeslice
  std::string why;
};
// Resolve `requested` (auto: by the facts). Pure: tests feed it facts.
SubstrateChoice choose_substrate(SubstrateKind requested, const SubstrateFacts& f);

// Switch-back cost when calibration fails on time-slicing (the probe measured ~210 us on an H100).
inline constexpr uint64_t kDefaultSwitchCostNs = 200'000;
// A time-slicing measurement below this is rejected as failed (noise around 0: a busy GPU).
inline constexpr double kMinSwitchCostUs = 5;

// The broker's substrate for its lifetime: the MPS daemon it runs (stopped on destruction) and
// the switch-back cost.
class Substrate {
 public:
  // Choose, start MPS if chosen (one daemon serves every GPU), settle the switch-back cost of
  // each GPU of `gpus` (`given_ns` with --switch-cost-us; empty `gpus`: the default device's, for
  // all). Each decision is logged. Fails if MPS was asked for (or chosen) and cannot start.
  static Result<std::unique_ptr<Substrate>> setup(const SubstrateConfig& cfg,
                                                  const std::string& run_dir, uint64_t given_ns,
                                                  const std::vector<GpuIdentity>& gpus = {});
  SubstrateKind kind() const { return kind_; }
  uint64_t switch_cost_ns() const { return switch_ns_; }  // GPU 0's
  // GPU i's (of the `gpus` given to setup; GPU 0's beyond them).
  uint64_t switch_cost_ns(size_t i) const {
    return i < gpu_costs_.size() ? gpu_costs_[i].ns : switch_ns_;
  }
  // The status document's "substrate" member: kind, why, mps_pipe_dir, mps_log_dir (both "" on
  // timeslice), mps_daemon_pid, switch_cost_us, switch_cost_source (given, measured, default, mps).
  // With several GPUs, "gpus": [{"index", "uuid", "switch_cost_us", "switch_cost_source"}].
  nlohmann::json status_json() const;

 private:
  struct GpuCost {
    std::string uuid;
    uint64_t ns = 0;
    std::string source;  // given, measured, stored, default, mps
    std::string driver;  // the driver version it was measured with
  };
  void settle_switch_cost(const SubstrateConfig& cfg, uint64_t given_ns);
  // Stored, else measured on an idle GPU (CUDA_VISIBLE_DEVICES=<uuid>), else the default.
  // Safe to run for several GPUs at once (it only reads the store).
  GpuCost gpu_switch_cost(size_t index, const GpuIdentity& g, bool mps);
  // Add the measured costs to <run_dir>/switch-cost.json.
  void store_measured(const std::vector<GpuCost>& costs);
  nlohmann::json gpus_json() const;

  std::string run_dir_;
  std::vector<GpuIdentity> gpus_;
  std::vector<GpuCost> gpu_costs_;
  SubstrateKind kind_ = SubstrateKind::kTimeslice;
  std::string why_;
  std::unique_ptr<MpsDaemon> mps_;
  uint64_t switch_ns_ = 0;
  std::string switch_source_;  // given, measured, default, mps
};

}  // namespace fikit::broker
