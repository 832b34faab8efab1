// Degraded modes: what the broker runs without, found once at start from its own status (the GPU
// observer's and the substrate's members) and the profile directory. Each is a line such as
// "BPF unavailable: ... (no GPU memory accounting, no unmanaged-process detection)". `start`
// prints them on its terminal, logs them, and `status` shows them ("degraded": [...]).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "options.h"

namespace fikit::broker {

// `gpu` and `substrate`: the status document's "gpu" and "substrate" values.
std::vector<std::string> degraded_modes(const Options& o, const nlohmann::json& gpu,
                                        const nlohmann::json& substrate);

}  // namespace fikit::broker
