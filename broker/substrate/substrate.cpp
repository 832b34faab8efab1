#include "substrate/substrate.h"

#include <unistd.h>

#include <cstdlib>
#include <future>
#include <nlohmann/json.hpp>

#include "base/log.h"
#include "substrate/calibration.h"
#include "substrate/subprocess.h"
#include "substrate/switch_store.h"

namespace fikit::broker {
namespace {

constexpr const char* kMpsControl = "nvidia-cuda-mps-control";
constexpr const char* kGpuDevice = "/dev/nvidia0";
constexpr const char* kSystemMpsPipeDir = "/tmp/nvidia-mps";  // MPS's default pipe directory
// Two CUDA start-ups and 0.5 s of measuring; under MPS the first client also starts the server.
constexpr uint64_t kCalibrationTimeoutMs = 3000;
constexpr uint64_t kMpsCalibrationTimeoutMs = 8000;

}  // namespace

Status parse_substrate(const char* arg, SubstrateConfig* c) {
  std::string s = arg;
  if (s == "auto")
    c->kind = SubstrateKind::kAuto;
  else if (s == "mps")
    c->kind = SubstrateKind::kMps;
  else if (s == "timeslice")
    c->kind = SubstrateKind::kTimeslice;
  else
    return Status(StatusCode::kInvalidArgument,
                  "--substrate wants mps, timeslice or auto, not '" + s + "'");
  return Status();
}

const char* substrate_name(SubstrateKind k) {
  switch (k) {
    case SubstrateKind::kAuto:
      return "auto";
    case SubstrateKind::kTimeslice:
      return "timeslice";
    case SubstrateKind::kMps:
      return "mps";
  }
  return "?";
}

SubstrateFacts probe_substrate(const std::string& pipe_dir) {
  SubstrateFacts f;
  f.mps_control = find_on_path(kMpsControl);
  f.gpu = access(kGpuDevice, F_OK) == 0;
  f.root = geteuid() == 0;
  f.mps_running = mps_daemon_pid(pipe_dir);
  return f;
}

SubstrateChoice choose_substrate(SubstrateKind requested, const SubstrateFacts& f) {
  if (requested == SubstrateKind::kMps) return {SubstrateKind::kMps, "--substrate mps"};
  if (requested == SubstrateKind::kTimeslice)
    return {SubstrateKind::kTimeslice, "--substrate timeslice"};
  if (f.mps_running)
    return {SubstrateKind::kMps, "auto: an MPS control daemon already runs on the pipe directory"};
  if (f.mps_control.empty())
    return {SubstrateKind::kTimeslice, std::string("auto: ") + kMpsControl + " not found on PATH"};
  if (!f.gpu)
    return {SubstrateKind::kTimeslice, std::string("auto: no GPU (") + kGpuDevice + " is absent)"};
  if (!f.root) return {SubstrateKind::kTimeslice, "auto: not root (MPS is run as root)"};
  return {SubstrateKind::kMps, "auto: " + f.mps_control + ", a GPU and root"};
}

Result<std::unique_ptr<Substrate>> Substrate::setup(const SubstrateConfig& cfg,
                                                    const std::string& run_dir, uint64_t given_ns,
                                                    const std::vector<GpuIdentity>& gpus) {
  auto s = std::unique_ptr<Substrate>(new Substrate());
  s->run_dir_ = run_dir;
  s->gpus_ = gpus;
  MpsDirs dirs = mps_dirs(run_dir);
  SubstrateFacts facts = probe_substrate(dirs.pipe_dir);
  SubstrateChoice choice = choose_substrate(cfg.kind, facts);
  s->kind_ = choice.kind;
  s->why_ = choice.why;
  FIKIT_LOG_INFO("substrate: %s (%s)", substrate_name(s->kind_), s->why_.c_str());
  if (s->kind_ == SubstrateKind::kMps) {
    std::string control = facts.mps_control.empty() ? kMpsControl : facts.mps_control;
    s->mps_ = std::make_unique<MpsDaemon>(control, dirs);
    if (Status st = s->mps_->start(); !st.ok()) return st;
    FIKIT_LOG_INFO(
        "tenants join MPS with CUDA_MPS_PIPE_DIRECTORY=%s CUDA_MPS_LOG_DIRECTORY=%s "
        "(fikit-run sets them)",
        dirs.pipe_dir.c_str(), dirs.log_dir.c_str());
  } else if (pid_t pid = mps_daemon_pid(kSystemMpsPipeDir)) {
    FIKIT_LOG_WARN(
        "an MPS control daemon runs on %s (pid %d): CUDA processes join it unless they set "
        "CUDA_MPS_PIPE_DIRECTORY, so tenants may share the GPU through MPS, not time-slicing",
        kSystemMpsPipeDir, pid);
  }
  s->settle_switch_cost(cfg, given_ns);
  return s;
}

void Substrate::settle_switch_cost(const SubstrateConfig& cfg, uint64_t given_ns) {
  bool mps = kind_ == SubstrateKind::kMps;
  if (cfg.switch_cost_given) {
    switch_ns_ = given_ns;
    switch_source_ = "given";
    FIKIT_LOG_INFO("switch-back cost: %llu us (--switch-cost-us)",
                   static_cast<unsigned long long>(given_ns / 1000));
    return;
  }
  if (mps && !cfg.calibrate) {
    switch_source_ = "mps";
    FIKIT_LOG_INFO("switch-back cost: 0 us (MPS: one shared context; --calibrate measures it)");
    return;
  }
  if (gpus_.empty()) {  // GPUs unknown before tenants name them: the default device's, for all
    GpuCost c = gpu_switch_cost(0, GpuIdentity{}, mps);
    store_measured({c});
    switch_ns_ = c.ns;
    switch_source_ = c.source;
    return;
  }
  // GPUs share nothing: measure them all at once (an 8-GPU node starts in one measurement's time),
  // then store what was measured in one write.
  std::vector<std::future<GpuCost>> jobs;
  for (size_t i = 0; i < gpus_.size(); i++)
    jobs.push_back(std::async(std::launch::async,
                              [this, i, mps] { return gpu_switch_cost(i, gpus_[i], mps); }));
  for (auto& j : jobs) gpu_costs_.push_back(j.get());
  store_measured(gpu_costs_);
  switch_ns_ = gpu_costs_[0].ns;
  switch_source_ = gpu_costs_[0].source;
}

Substrate::GpuCost Substrate::gpu_switch_cost(size_t index, const GpuIdentity& g, bool mps) {
  const uint64_t fallback = mps ? 0 : kDefaultSwitchCostNs;
  const std::string what =
      "GPU " + std::to_string(index) + (g.uuid.empty() ? "" : " (" + g.uuid + ")");
  const std::string costs =
      "LP grants plan " + std::to_string(fallback / 1000) +
      " us to give the GPU back: if the real cost is lower LP tenants get less of the HP gaps, if "
      "higher HP latency suffers; give --switch-cost-us, or restart the broker on an idle GPU";
  std::map<std::string, StoredCost> store = read_switch_store(run_dir_);
  if (auto it = store.find(g.uuid); !g.uuid.empty() && it != store.end() &&
                                    it->second.driver == g.driver && it->second.switch_us > 0) {
    FIKIT_LOG_INFO("switch-back cost of %s: %.0f us, stored (measured earlier, driver %s)",
                   what.c_str(), it->second.switch_us, g.driver.c_str());
    return {g.uuid, static_cast<uint64_t>(it->second.switch_us * 1000), "stored", g.driver};
  }
  if (g.has_device_file) {
    if (int pid = gpu_user_pid(g.minor)) {
      FIKIT_LOG_WARN(
          "switch-back cost of %s: not measured, the GPU is in use (pid %d has /dev/nvidia%u open) "
          "and none is stored: using the default %llu us; %s",
          what.c_str(), pid, g.minor, static_cast<unsigned long long>(fallback / 1000),
          costs.c_str());
      return {g.uuid, fallback, "default", g.driver};
    }
  }
  std::vector<std::string> env = mps ? mps_->env() : std::vector<std::string>{};
  if (!g.uuid.empty()) env.push_back("CUDA_VISIBLE_DEVICES=" + g.uuid);
  Calibration c = run_calibration(calibrate_program(), env,
                                  mps ? kMpsCalibrationTimeoutMs : kCalibrationTimeoutMs);
  if (!c.ok) {
    FIKIT_LOG_WARN(
        "failed to measure the switch-back cost of %s (%s): using the default %llu us; %s",
        what.c_str(), c.detail.c_str(), static_cast<unsigned long long>(fallback / 1000),
        costs.c_str());
    return {g.uuid, fallback, "default", g.driver};
  }
  if (c.switch_us < kMinSwitchCostUs && !mps) {
    // Giving the GPU back to another context is never free (~200 us on an H100): 0, less, or
    // the noise around 0 is a failed measurement (the GPU was busy, or the processes did not
    // take turns).
    FIKIT_LOG_WARN(
        "switch-back cost of %s measured %.1f us: rejected (below %.0f us, a context switch "
        "cannot be that cheap: a failed measurement, e.g. on a busy GPU); using the default "
        "%llu us; %s",
        what.c_str(), c.switch_us, kMinSwitchCostUs,
        static_cast<unsigned long long>(fallback / 1000), costs.c_str());
    return {g.uuid, fallback, "default", g.driver};
  }
  uint64_t ns = c.switch_us > 0 ? static_cast<uint64_t>(c.switch_us * 1000) : 0;
  FIKIT_LOG_INFO("switch-back cost of %s: %.0f us measured on %s (%s)", what.c_str(), ns / 1e3,
                 c.device.c_str(), c.detail.c_str());
  return {g.uuid.empty() ? c.uuid : g.uuid, ns, "measured", g.driver.empty() ? c.driver : g.driver};
}

void Substrate::store_measured(const std::vector<GpuCost>& costs) {
  std::map<std::string, StoredCost> store = read_switch_store(run_dir_);
  size_t n = 0;
  for (const GpuCost& c : costs)
    if (c.source == "measured" && !c.uuid.empty() && c.ns > 0) {
      store[c.uuid] = StoredCost{c.ns / 1e3, c.driver};
      n++;
    }
  std::string err;
  if (n > 0 && !write_switch_store(run_dir_, store, &err))
    FIKIT_LOG_WARN("%s: the switch-back cost will be measured again at the next start",
                   err.c_str());
}

nlohmann::json Substrate::gpus_json() const {
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < gpu_costs_.size(); i++)
    out.push_back({{"index", i},
                   {"uuid", gpu_costs_[i].uuid},
                   {"switch_cost_us", static_cast<double>(gpu_costs_[i].ns) / 1e3},
                   {"switch_cost_source", gpu_costs_[i].source}});
  return out;
}

nlohmann::json Substrate::status_json() const {
  return nlohmann::json{{"kind", substrate_name(kind_)},
                        {"why", why_},
                        {"mps_pipe_dir", mps_ ? mps_->dirs().pipe_dir : ""},
                        {"mps_log_dir", mps_ ? mps_->dirs().log_dir : ""},
                        {"mps_daemon_pid", mps_ ? mps_->pid() : 0},
                        {"switch_cost_us", static_cast<double>(switch_ns_) / 1e3},
                        {"switch_cost_source", switch_source_},
                        {"gpus", gpus_json()}};
}

}  // namespace fikit::broker
