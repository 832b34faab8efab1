#include "broker.h"

#include <fikit/util.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/log.h"
#include "control/access.h"
#include "control/control.h"
#include "control/endpoint.h"
#include "degraded.h"
#include "gpu/gpu_domains.h"
#include "gpu/gpu_lock.h"
#include "gpu/gpu_monitor.h"
#include "gpu/gpu_status.h"
#include "metrics/exporter.h"
#include "notify.h"
#include "sched/idle_meter.h"
#include "sched/scheduler.h"
#include "substrate/calibration.h"
#include "substrate/substrate.h"

namespace fikit::broker {
namespace {

constexpr uint64_t kListGpusTimeoutMs = 5000;  // fikit-calibrate --list: cuInit and a few queries

// A GPU model as a directory name: letters, digits and '-' ("NVIDIA H200" -> "NVIDIA-H200").
std::string model_slug(const std::string& model) {
  std::string out;
  for (char c : model) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
  return out.empty() ? "unknown" : out;
}

constexpr size_t kMetricsDocMax = 64 << 20;

// Block the signals the control loop reads from its signalfd, in every thread to come.
Status block_signals() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  if (int err = pthread_sigmask(SIG_BLOCK, &mask, nullptr); err != 0)
    return Status::from_errno(err, "block signals");
  signal(SIGPIPE, SIG_IGN);  // a client gone mid-reply is not our death
  return Status();
}

// The status document's members besides the broker's own and the tenants' (status.h).
void add_status_parts(Control& control, const Substrate& sub, const IdleMeter* meter,
                      GpuMonitor& gpu) {
  control.add_status_part({"substrate", [&sub](uint64_t, size_t) { return sub.status_json(); }});
  if (meter)
    control.add_status_part({"hp_idle", [meter](uint64_t, size_t) {
                               return nlohmann::json::parse(meter->summary_json());
                             }});
  // The GPU observer's process list takes at most half the document; the tenants get the rest.
  control.add_status_part({"gpu", [&gpu](uint64_t now, size_t max_len) {
                             return gpu.status_json(now, std::min<size_t>(max_len, kStatusMax / 2));
                           }});
}

// The /metrics endpoint on the control loop, or nullptr (--metrics off, or it could not listen:
// the broker runs without it, as without the GPU observer).
std::unique_ptr<metrics::Exporter> start_metrics(const std::string& addr, Control& control) {
  if (addr == "off") return nullptr;
  Result<metrics::ListenAddress> a = metrics::parse_listen_address(addr);
  auto doc = [&control] {
    StatusInput in = control.status_input(true, true);
    in.max_len = kMetricsDocMax;  // every tenant, not one message's worth
    return status_document(in);
  };
  auto e = std::make_unique<metrics::Exporter>(control.loop(), doc);
  Status s = a.ok() ? e->start(*a) : a.status();
  if (!s.ok()) {
    FIKIT_LOG_WARN("%s: running without metrics (--metrics off silences this)",
                   s.message().c_str());
    return nullptr;
  }
  FIKIT_LOG_INFO("metrics at http://%s:%u/metrics", a->host.c_str(), e->port());
  return e;
}

}  // namespace

int run_broker(const Options& o, const ReadyFn& ready) {
  if (Status s = block_signals(); !s.ok()) return ready(s, {}), 1;
  access_configure(o.access);
  Result<std::unique_ptr<Endpoint>> ep = Endpoint::open(o.socket, o.tenant_group);
  if (!ep.ok()) return ready(ep.status(), {}), 1;
  // The node's GPUs, one scheduling domain each: the NVIDIA driver's list, else CUDA's (the
  // simulated driver, containers without /proc/driver/nvidia), else learned from registrations.
  std::vector<GpuIdentity> inventory = nvidia_gpus();
  const bool from_nvidia = !inventory.empty();
  if (!from_nvidia) inventory = list_driver_gpus(calibrate_program(), {}, kListGpusTimeoutMs);
  GpuDomains gpus(inventory, !from_nvidia);
  GpuLocks gpu_locks;
  if (Status s = gpu_locks.lock(o.run_dir, inventory, o.socket); !s.ok())
    return (*ep)->remove(), ready(s, {}), 1;
  for (size_t i = 0; i < inventory.size(); i++)
    FIKIT_LOG_INFO("GPU %zu: %s %s%s", i, inventory[i].model.c_str(), inventory[i].uuid.c_str(),
                   from_nvidia ? "" : " (listed by CUDA)");
  // MPS daemon and switch-back costs before the policy starts; the daemon stops with `sub`.
  Result<std::unique_ptr<Substrate>> sub =
      Substrate::setup(o.substrate, o.run_dir, o.policy_cfg.switch_cost_ns, inventory);
  if (!sub.ok()) return (*ep)->remove(), ready(sub.status(), {}), 1;
  std::vector<std::string> degraded;  // found once the observer is loaded, below
  IdleMeter meter(o.hp_marker_every);
  SchedulerConfig sc;
  sc.policy = policy_find(o.policy.c_str());
  sc.policy_cfg = o.policy_cfg;
  sc.policy_cfg.switch_cost_ns = (*sub)->switch_cost_ns();
  sc.spin_ns = o.spin_ns;
  sc.idle_meter = o.hp_marker_every ? &meter : nullptr;
  Scheduler sched(sc);
  for (size_t i = 0; i < inventory.size(); i++) {  // each GPU's domain plans with its own cost
    PolicyConfig pc = sc.policy_cfg;
    pc.switch_cost_ns = (*sub)->switch_cost_ns(i);
    // Kernel profiles hold durations, which are the GPU model's: GPUs of GPU 0's model share the
    // profile directory, another model keeps its own (<profile_dir>/model-<name>).
    if (!pc.profile_dir.empty() && inventory[i].model != inventory[0].model)
      pc.profile_dir += "/model-" + model_slug(inventory[i].model);
    sched.domains().set_config(static_cast<uint32_t>(i), pc);
  }
  ControlConfig cc;
  cc.gpus = &gpus;
  cc.listen_fd = (*ep)->fd();
  cc.socket_path = o.socket;
  cc.spin_ns = o.spin_ns;
  Control control(cc, sched);
  // The eBPF GPU-driver observer: loaded before the broker reports ready; never fails the start.
  GpuMonitor gpu(o.gpu, control.loop(),
                 [&control](pid_t pid, const char* why) { control.reap_pid(pid, why); });
  control.set_gpu(&gpu);
  add_status_parts(control, **sub, sc.idle_meter, gpu);
  // The broker's HP budget (--hp-budget; HP tenants may set their own: tenants[].hp_budget).
  HpBudget budget = o.policy_cfg.hp_budget;
  control.add_status_part({"budget", [budget](uint64_t, size_t) {
                             auto q = [](double v) { return v > 0 ? nlohmann::json(v) : nullptr; };
                             return nlohmann::json{{"p50", q(budget.p50)}, {"p99", q(budget.p99)}};
                           }});
  control.add_status_part(
      {"degraded", [&degraded](uint64_t, size_t) { return nlohmann::json(degraded); }});
  Status s = control.init();
  if (s.ok()) gpu.start();
  std::unique_ptr<metrics::Exporter> exporter;
  if (s.ok()) exporter = start_metrics(o.metrics, control);
  if (s.ok()) s = sched.start();
  if (!s.ok()) {
    (*ep)->remove();
    return ready(s, {}), 1;
  }
  FIKIT_LOG_INFO("listening on %s (%s; policy %s, ABI %u.%u)", o.socket.c_str(),
                 (*ep)->access_text().c_str(), o.policy.c_str(), kAbiMajor, kAbiMinor);
  degraded = degraded_modes(o, gpu.status_json(now_ns(), kStatusMax / 2), (*sub)->status_json());
  for (const std::string& d : degraded) FIKIT_LOG_WARN("degraded: %s", d.c_str());
  ready(Status(), degraded);
  std::string reason = control.run();
  FIKIT_LOG_INFO("stopping: %s", reason.c_str());
  notify_stopping("stopping: " + reason);
  sched.stop();
  if (sc.idle_meter) FIKIT_LOG_INFO("HP idleness, all tenants: %s", meter.summary_line().c_str());
  control.close_tenants();
  (*ep)->remove();
  sub->reset();  // stops the MPS daemon we run (its clients have been told to fail open)
  log_flush_suppressed();
  FIKIT_LOG_INFO("stopped");
  return 0;
}

}  // namespace fikit::broker
