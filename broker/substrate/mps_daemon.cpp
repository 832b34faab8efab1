#include "substrate/mps_daemon.h"

#include <fikit/util.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "base/log.h"
#include "substrate/subprocess.h"

namespace fikit::broker {
namespace {

// MPS puts unix sockets in the pipe directory ("control" and others): <pipe dir>/control must
// stay within 100 bytes (sun_path holds 108; the benchmark runner checks the same).
constexpr size_t kMaxPipeDirLen = 92;
constexpr uint64_t kCommandTimeoutMs = 10'000;
constexpr uint64_t kUpTimeoutNs = 5'000'000'000;
constexpr uint64_t kDownTimeoutNs = 5'000'000'000;

// Return true if process pid runs (a zombie does not).
bool alive(pid_t pid) {
  if (pid <= 0 || (kill(pid, 0) != 0 && errno != EPERM)) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;  // no /proc: trust kill()
  size_t paren = line.rfind(')');
  return paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] != 'Z';
}

// The first number in `path`, or 0.
pid_t read_pid(const std::string& path) {
  std::ifstream f(path);
  long pid = 0;
  if (!(f >> pid) || pid <= 0) return 0;
  return static_cast<pid_t>(pid);
}

// mkdir -p `dir` (mode 0755). Return 0 or -errno.
int make_dirs(const std::string& dir) {
  struct stat st;
  if (dir.empty() || stat(dir.c_str(), &st) == 0) return 0;
  size_t slash = dir.find_last_of('/');
  if (slash != std::string::npos && slash > 0)
    if (int err = make_dirs(dir.substr(0, slash)); err < 0) return err;
  return mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST ? 0 : -errno;
}

// Wait until `done()` or deadline; return done().
template <typename F>
bool wait_for(F done, uint64_t timeout_ns) {
  uint64_t deadline = now_ns() + timeout_ns;
  while (!done() && now_ns() < deadline) {
    timespec ts{0, 10'000'000};
    nanosleep(&ts, nullptr);
  }
  return done();
}

}  // namespace

MpsDirs mps_dirs(const std::string& run_dir) {
  std::string base = run_dir == "/" ? "" : run_dir;
  return MpsDirs{base + "/mps-pipe", base + "/mps-log", base + "/mps-owner"};
}

pid_t mps_daemon_pid(const std::string& pipe_dir) {
  pid_t pid = read_pid(pipe_dir + "/nvidia-cuda-mps-control.pid");
  return alive(pid) ? pid : 0;
}

MpsDaemon::MpsDaemon(std::string control, MpsDirs dirs)
    : control_(std::move(control)), dirs_(std::move(dirs)) {}

MpsDaemon::~MpsDaemon() { stop(); }

std::vector<std::string> MpsDaemon::env() const {
  return {"CUDA_MPS_PIPE_DIRECTORY=" + dirs_.pipe_dir, "CUDA_MPS_LOG_DIRECTORY=" + dirs_.log_dir};
}

Status MpsDaemon::start() {
  if (dirs_.pipe_dir.size() > kMaxPipeDirLen)
    return Status(StatusCode::kInvalidArgument,
                  "MPS pipe directory " + dirs_.pipe_dir + " is longer than " +
                      std::to_string(kMaxPipeDirLen) +
                      " bytes (MPS puts unix sockets there): use a shorter --run-dir");
  for (const std::string& d : {dirs_.pipe_dir, dirs_.log_dir})
    if (int err = make_dirs(d); err < 0)
      return Status::from_errno(-err, "create the MPS directory " + d);
  if (pid_t pid = mps_daemon_pid(dirs_.pipe_dir)) return adopt(pid);
  return launch();
}

// A daemon runs on our pipe directory already: use it; own it only if its broker is gone.
Status MpsDaemon::adopt(pid_t pid) {
  pid_ = pid;
  pid_t owner = read_pid(dirs_.owner_file);
  std::string head = "an MPS control daemon already runs on " + dirs_.pipe_dir + " (pid " +
                     std::to_string(pid) + ")";
  if (owner == 0) {
    origin_ = head + ", started by someone else: using it, and leaving it running at exit";
  } else if (alive(owner)) {
    origin_ = head + ", started by fikit-broker pid " + std::to_string(owner) +
              ", which still runs: using it, and leaving it running at exit";
  } else {
    origin_ = head + ", left by a fikit-broker that ended (pid " + std::to_string(owner) +
              "): taking it over; it is stopped when this broker stops";
    owned_ = true;
    std::ofstream(dirs_.owner_file, std::ios::trunc) << getpid() << "\n";
  }
  FIKIT_LOG_WARN("%s", origin_.c_str());
  return Status();
}

Status MpsDaemon::launch() {
  // Without CUDA_VISIBLE_DEVICES: the one daemon serves every GPU of the node (docs/MULTIGPU.md).
  ProcessSpec spec{{control_, "-d"}, env(), {"CUDA_VISIBLE_DEVICES"}, "", kCommandTimeoutMs};
  Result<ProcessResult> r = run_process(spec);
  if (!r.ok()) return r.status();
  if (r->exit_code != 0 || r->timed_out) {
    std::string why =
        r->timed_out ? "did not return within 10 s" : "exited with " + std::to_string(r->exit_code);
    std::string out = last_line(r->output);
    return Status(StatusCode::kFailedPrecondition,
                  "failed to start the MPS control daemon (" + control_ + " -d " + why +
                      (out.empty() ? "" : ": " + out) +
                      "); MPS needs the NVIDIA driver and usually root; or start with "
                      "--substrate timeslice");
  }
  if (!wait_for([&] { return mps_daemon_pid(dirs_.pipe_dir) != 0; }, kUpTimeoutNs)) {
    ProcessSpec quit{{control_}, env(), {}, "quit\n", kCommandTimeoutMs};
    (void)run_process(quit);
    return Status(StatusCode::kUnavailable,
                  "the MPS control daemon did not come up within 5 s (no live pid in " +
                      dirs_.pipe_dir + "/nvidia-cuda-mps-control.pid); see " + dirs_.log_dir +
                      "/control.log");
  }
  pid_ = mps_daemon_pid(dirs_.pipe_dir);
  owned_ = true;
  std::ofstream(dirs_.owner_file, std::ios::trunc) << getpid() << "\n";
  origin_ = "started (pid " + std::to_string(pid_) + ")";
  FIKIT_LOG_INFO("MPS control daemon %s: pipe directory %s, log directory %s", origin_.c_str(),
                 dirs_.pipe_dir.c_str(), dirs_.log_dir.c_str());
  return Status();
}

void MpsDaemon::stop() {
  if (!owned_) return;
  owned_ = false;
  ProcessSpec quit{{control_}, env(), {}, "quit\n", kCommandTimeoutMs};
  Result<ProcessResult> r = run_process(quit);
  if (!r.ok() || r->exit_code != 0)
    FIKIT_LOG_WARN("failed to send quit to the MPS control daemon (pid %d): %s", pid_,
                   r.ok() ? last_line(r->output).c_str() : r.status().message().c_str());
  if (wait_for([&] { return !alive(pid_); }, kDownTimeoutNs))
    FIKIT_LOG_INFO("MPS control daemon (pid %d) stopped", pid_);
  else
    FIKIT_LOG_WARN(
        "the MPS control daemon (pid %d) still runs 5 s after quit: it ends once its clients "
        "have (see %s/control.log)",
        pid_, dirs_.log_dir.c_str());
  unlink(dirs_.owner_file.c_str());
}

}  // namespace fikit::broker
