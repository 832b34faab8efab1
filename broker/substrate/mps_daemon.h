// The MPS control daemon run by the broker (--substrate mps): `nvidia-cuda-mps-control -d` with
// CUDA_MPS_PIPE_DIRECTORY and CUDA_MPS_LOG_DIRECTORY under the broker's run directory, stopped
// with `echo quit | nvidia-cuda-mps-control` (same variables) when the broker stops.
//
// A daemon already running on that pipe directory is used, not started twice. It is stopped at
// exit only if this broker owns it: it started it, or took it over from a broker that died (the
// owner file <run-dir>/mps-owner names the broker that started it). One that someone else
// started (no owner file) is left running. GPU settings are never touched: MPS runs in whatever
// compute mode the GPU has.
#pragma once

#include <fikit/result.h>
#include <sys/types.h>

#include <string>
#include <vector>

namespace fikit::broker {

struct MpsDirs {
  std::string pipe_dir;    // <run-dir>/mps-pipe
  std::string log_dir;     // <run-dir>/mps-log
  std::string owner_file;  // <run-dir>/mps-owner: pid of the broker that started the daemon
};

MpsDirs mps_dirs(const std::string& run_dir);

// The pid of a live MPS control daemon on `pipe_dir` (its nvidia-cuda-mps-control.pid), or 0.
pid_t mps_daemon_pid(const std::string& pipe_dir);

class MpsDaemon {
 public:
  // `control`: the nvidia-cuda-mps-control program (a path, or a name looked up on PATH).
  MpsDaemon(std::string control, MpsDirs dirs);
  ~MpsDaemon();  // stop()
  MpsDaemon(const MpsDaemon&) = delete;
  MpsDaemon& operator=(const MpsDaemon&) = delete;

  // Start the daemon and wait (at most ~15 s) until it runs, or use the one already running.
  Status start();
  // Quit the daemon if this broker owns it; wait a few seconds for it to end. Idempotent.
  void stop();

  // "CUDA_MPS_PIPE_DIRECTORY=..." and "CUDA_MPS_LOG_DIRECTORY=...": what makes a process a client.
  std::vector<std::string> env() const;
  const MpsDirs& dirs() const { return dirs_; }
  pid_t pid() const { return pid_; }
  // How the daemon came to run (for the log and status): started, taken over, or someone else's.
  const std::string& origin() const { return origin_; }

 private:
  Status adopt(pid_t pid);
  Status launch();

  std::string control_;
  MpsDirs dirs_;
  pid_t pid_ = 0;
  bool owned_ = false;
  std::string origin_;
};

}  // namespace fikit::broker
