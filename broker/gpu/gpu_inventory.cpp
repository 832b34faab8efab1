#include "gpu/gpu_inventory.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
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
    g.has_device_file = true;
    if (any) out.push_back(g);
  }
  // "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  ...": the driver of every GPU.
  std::ifstream v(std::filesystem::path(dir).parent_path() / "version");
  std::string line, driver;
  if (std::getline(v, line)) {
    size_t at = line.find("Kernel Module");
    if (at != std::string::npos) {
      size_t b = line.find_first_not_of(' ', at + 13);
      size_t e = b == std::string::npos ? b : line.find(' ', b);
      if (b != std::string::npos) driver = line.substr(b, e == std::string::npos ? e : e - b);
    }
  }
  for (GpuIdentity& g : out) g.driver = driver;
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.minor < b.minor; });
  return out;
}

int gpu_user_pid(uint32_t minor) {
  const std::string device = "/dev/nvidia" + std::to_string(minor);
  const int self = getpid();
  std::error_code ec;
  for (const auto& proc : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string pid = proc.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos || std::stoi(pid) == self)
      continue;
    std::error_code fd_ec;
    for (const auto& fd : std::filesystem::directory_iterator(proc.path() / "fd", fd_ec)) {
      std::error_code link_ec;
      if (std::filesystem::read_symlink(fd.path(), link_ec).string() == device)
        return std::stoi(pid);
    }
  }
  return 0;
}

const std::vector<GpuIdentity>& nvidia_gpus() {
  // FIKIT_NVIDIA_GPUS_DIR stands in for the driver's list: a run on the simulated driver on a
  // GPU host points it at an empty folder, so that the broker schedules the simulated GPUs its
  // tenants name, not the real ones (whose UUIDs they do not know).
  static const std::vector<GpuIdentity> gpus = [] {
    const char* dir = getenv("FIKIT_NVIDIA_GPUS_DIR");
    return read_nvidia_gpus(dir && *dir ? dir : "/proc/driver/nvidia/gpus");
  }();
  return gpus;
}

}  // namespace fikit::broker
