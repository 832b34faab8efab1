#include "gpu/gpu_inventory.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace fikit::broker {
namespace {

// The value of "Key:   value" lines, trimmed.
std::string trimmed(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  size_t e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

}  // namespace

std::vector<GpuIdentity> read_nvidia_gpus(const std::string& dir) {
  std::vector<GpuIdentity> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::ifstream f(entry.path() / "information");
    GpuIdentity g;
    std::string line;
    bool any = false;
    while (std::getline(f, line)) {
      size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string key = line.substr(0, colon), value = trimmed(line.substr(colon + 1));
      if (key == "Model") g.model = value, any = true;
      if (key == "GPU UUID") g.uuid = value, any = true;
      if (key == "Device Minor")
        g.minor = static_cast<uint32_t>(std::strtoul(value.c_str(), nullptr, 10));
    }
    if (any) out.push_back(g);
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.minor < b.minor; });
  return out;
}

const std::vector<GpuIdentity>& nvidia_gpus() {
  static const std::vector<GpuIdentity> gpus = read_nvidia_gpus("/proc/driver/nvidia/gpus");
  return gpus;
}

}  // namespace fikit::broker
