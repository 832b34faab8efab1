#include "degraded.h"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

namespace fikit::broker {

std::vector<std::string> degraded_modes(const Options& o, const std::string& gpu_json,
                                        const std::string& substrate_json) {
  std::vector<std::string> out;
  nlohmann::json gpu = nlohmann::json::parse(gpu_json, nullptr, false);
  nlohmann::json sub = nlohmann::json::parse(substrate_json, nullptr, false);
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

std::string degraded_json(const std::vector<std::string>& modes) {
  return nlohmann::json(modes).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace fikit::broker
