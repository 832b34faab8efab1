#include "gpu/gpu_domains.h"

#include <strings.h>

namespace fikit::broker {

GpuDomains::GpuDomains(std::vector<GpuIdentity> known, bool learn)
    : gpus_(std::move(known)), learning_(learn || gpus_.empty()) {}

Result<uint32_t> GpuDomains::index_of(const uint8_t* uuid) {
  if (!uuid) return 0u;
  std::string text = gpu_uuid_text(uuid);
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < gpus_.size(); i++)
    if (strcasecmp(gpus_[i].uuid.c_str(), text.c_str()) == 0) return static_cast<uint32_t>(i);
  if (!learning_)
    return Status(StatusCode::kNotFound,
                  "GPU " + text + " is not one of the " + std::to_string(gpus_.size()) +
                      " GPU(s) the NVIDIA driver lists (a MIG instance? fikit schedules whole "
                      "GPUs only): its launches run unmanaged");
  if (gpus_.size() >= kMaxGpuDomains)
    return Status(StatusCode::kUnavailable, "the broker already schedules " +
                                                std::to_string(kMaxGpuDomains) + " GPUs: " + text +
                                                " runs unmanaged");
  GpuIdentity g;
  g.minor = static_cast<uint32_t>(gpus_.size());
  g.uuid = text;
  gpus_.push_back(g);
  return static_cast<uint32_t>(gpus_.size() - 1);
}

std::vector<GpuIdentity> GpuDomains::list() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (gpus_.empty()) return {GpuIdentity{}};  // GPU 0, not named yet
  return gpus_;
}

}  // namespace fikit::broker
