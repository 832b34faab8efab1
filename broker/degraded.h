// Degraded modes: what the broker runs without, found once at start from its own status (the GPU
// observer's and the substrate's members) and the profile directory. Each is a line such as
// "BPF unavailable: ... (no GPU memory accounting, no unmanaged-process detection)". `start`
// prints them on its terminal, logs them, and `status` shows them ("degraded": [...]).
#pragma once

#include <string>
#include <vector>

#include "options.h"

namespace fikit::broker {

// `gpu_json` and `substrate_json`: the status document's "gpu" and "substrate" values.
std::vector<std::string> degraded_modes(const Options& o, const std::string& gpu_json,
                                        const std::string& substrate_json);

// The JSON array of `modes`.
std::string degraded_json(const std::vector<std::string>& modes);

}  // namespace fikit::broker
