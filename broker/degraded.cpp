#include "degraded.h"

#include <fcntl.h>
#include <unistd.h>

namespace fikit::broker {

std::vector<std::string> degraded_modes(const Options& o, const nlohmann::json& gpu,
                                        const nlohmann::json& sub) {
  std::vector<std::string> out;
  // --no-bpf is a choice, not a degradation; a failed load (or a build without BPF) is.
  if (o.gpu.enabled && gpu.is_object() && gpu.value("observer", std::string()) != "loaded")
    out.push_back("BPF unavailable: " + gpu.value("reason", std::string("unknown")) +
                  " (no GPU memory accounting, no detection of unmanaged GPU processes)");
  if (sub.is_object()) {
    if (o.substrate.kind == SubstrateKind::kAuto && sub.value("kind", std::string()) != "mps")
      out.push_back("MPS unavailable: " + sub.value("why", std::string()) +
                    " (tenants share the GPU by time-slicing)");
    if (sub.value("switch_cost_source", std::string()) == "default")
      out.push_back(
          "calibration not done: the switch-back cost is a default, not measured "
          "(fikit-calibrate failed; see the log)");
  }
  const std::string& dir = o.policy_cfg.profile_dir;
  if (!dir.empty() && access(dir.c_str(), W_OK | X_OK) != 0)
    out.push_back("profile directory " + dir +
                  " not writable: learned profiles are neither saved nor loaded");
  return out;
}

}  // namespace fikit::broker
