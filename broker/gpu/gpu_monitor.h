// GpuMonitor: the broker's side of the eBPF GPU-driver observer (broker/bpf/observer.h,
// docs/BPF.md), on the control thread. It loads the observer at start (unless --no-bpf; where BPF
// is unavailable it logs a warning and the broker runs without it), consumes its events in the
// control loop and merges them with the tenant table:
//   - a process that uses the GPU without being a tenant is an unmanaged tenant: listed by status,
//     warned about in the log once it has not registered within a grace period (libfikit
//     registers at its first launch), and with --audit-launches its launches are counted;
//   - a process exit seen by BPF reaps its tenant as its pidfd does (whichever comes first);
//   - status gets contexts, streams and device memory per process, live or recently exited.
// Not thread-safe: the observer is single-threaded, like the control loop. A broker built without
// BPF gets gpu_monitor_off.cpp instead: no processes, and status says why.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "gpu/gpu_options.h"
#include "gpu/gpu_status.h"

namespace fikit::broker {

class UringLoop;
struct TenantDesc;

class GpuMonitor {
 public:
  // End tenant `pid` (the control thread's reaping), `why` for the log.
  using Reaper = std::function<void(pid_t pid, const char* why)>;

  GpuMonitor(const GpuOptions& options, UringLoop& loop, Reaper reap);
  ~GpuMonitor();
  GpuMonitor(const GpuMonitor&) = delete;
  GpuMonitor& operator=(const GpuMonitor&) = delete;

  // Load and attach the observer and watch its events in the loop. Never fails the broker.
  void start();
  GpuObserverState state() const;

  // The control thread admitted or reaped a tenant.
  void tenant_joined(const TenantDesc& d);
  void tenant_left(const TenantDesc& d);

  // The value of the status document's "gpu" member, at most max_len bytes dumped.
  nlohmann::json status_json(uint64_t now_ns, size_t max_len);

 private:
  struct Impl;  // the observer and what was merged from it (gpu_monitor.cpp)
  std::unique_ptr<Impl> impl_;
};

}  // namespace fikit::broker
