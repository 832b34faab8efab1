#include "substrate/substrate.h"

#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "base/log.h"
#include "substrate/calibration.h"
#include "substrate/subprocess.h"

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
                                                    const std::string& run_dir, uint64_t given_ns) {
  auto s = std::unique_ptr<Substrate>(new Substrate());
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
  Calibration c =
      run_calibration(calibrate_program(), mps ? mps_->env() : std::vector<std::string>{},
                      mps ? kMpsCalibrationTimeoutMs : kCalibrationTimeoutMs);
  if (c.ok) {
    switch_ns_ = c.switch_us > 0 ? static_cast<uint64_t>(c.switch_us * 1000) : 0;
    switch_source_ = "measured";
    FIKIT_LOG_INFO("switch-back cost: %.0f us measured on %s (%s)", switch_ns_ / 1e3,
                   c.device.c_str(), c.detail.c_str());
    return;
  }
  switch_ns_ = mps ? 0 : kDefaultSwitchCostNs;
  switch_source_ = "default";
  FIKIT_LOG_WARN("failed to measure the switch-back cost (%s): using %llu us", c.detail.c_str(),
                 static_cast<unsigned long long>(switch_ns_ / 1000));
}

nlohmann::json Substrate::status_json() const {
  return nlohmann::json{{"kind", substrate_name(kind_)},
                        {"why", why_},
                        {"mps_pipe_dir", mps_ ? mps_->dirs().pipe_dir : ""},
                        {"mps_log_dir", mps_ ? mps_->dirs().log_dir : ""},
                        {"mps_daemon_pid", mps_ ? mps_->pid() : 0},
                        {"switch_cost_us", static_cast<double>(switch_ns_) / 1e3},
                        {"switch_cost_source", switch_source_}};
}

}  // namespace fikit::broker
