// GpuMonitor in a broker built without BPF (FIKIT_BPF=OFF): nothing to load, so status says why
// and the broker runs without GPU-process accounting. broker/CMakeLists.txt builds this file or
// gpu_monitor.cpp, never both.
#include <nlohmann/json.hpp>

#include "base/log.h"
#include "gpu/gpu_monitor.h"

namespace fikit::broker {

struct GpuMonitor::Impl {
  GpuOptions opts;
  GpuObserverInfo info;
};

GpuMonitor::GpuMonitor(const GpuOptions& options, UringLoop&, Reaper)
    : impl_(std::make_unique<Impl>(Impl{options, {}})) {}

GpuMonitor::~GpuMonitor() = default;

void GpuMonitor::start() {
  GpuObserverInfo& info = impl_->info;
  const GpuOptions& opts = impl_->opts;
  info.audit = opts.audit_launches;
  if (opts.test_device)
    info.test_device =
        std::to_string(opts.test_device->major) + ":" + std::to_string(opts.test_device->minor);
  if (!opts.enabled) {
    info.reason = "--no-bpf";
    FIKIT_LOG_INFO("GPU-driver observer disabled (--no-bpf)");
    return;
  }
  info.reason = "fikit-broker was built without BPF (FIKIT_BPF=OFF)";
  if (opts.audit_launches)
    FIKIT_LOG_WARN("--audit-launches ignored: %s", info.reason.c_str());
  else
    FIKIT_LOG_INFO("GPU-driver observer not available: %s", info.reason.c_str());
}

GpuObserverState GpuMonitor::state() const { return impl_->info.state; }

void GpuMonitor::tenant_joined(const TenantDesc&) {}

void GpuMonitor::tenant_left(const TenantDesc&) {}

nlohmann::json GpuMonitor::status_json(uint64_t now_ns, size_t max_len) {
  return gpu_status_json(impl_->info, {}, now_ns, max_len);
}

}  // namespace fikit::broker
