// Integration-test harness: start real brokers and real client processes on the simulated driver.
// Helpers are named t_* (liburing's test convention). Nothing here sleeps blindly: waits poll a
// condition until a generous deadline.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace fikit::test {

using Env = std::vector<std::pair<std::string, std::string>>;
using Clock = std::chrono::steady_clock;

// Paths of the build under test (FIKIT_BUILD_DIR, set by ctest).
std::string t_build_dir();
std::string t_bin(const std::string& name);  // <build>/bin/<name>

// A fresh temporary directory, removed with its contents on destruction.
class t_TempDir {
 public:
  t_TempDir();
  ~t_TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A child process with stdout and stderr captured to files.
struct t_Proc {
  pid_t pid = -1;
  std::string out_path, err_path;
  int status = -1;  // waitpid status once reaped
};

// Start argv with the current environment plus `env`. Aborts the test on failure to spawn.
// `in_child`, if given, runs in the child before exec (e.g. to change user); false: exit 126.
t_Proc t_spawn(const std::vector<std::string>& argv, const Env& env, const std::string& log_prefix,
               const std::function<bool()>& in_child = {});
// True if a SOCK_SEQPACKET connect to `path` succeeds (something listens there).
bool t_socket_accepts(const std::string& path);
// Open `n` connections to `path` that never speak (non-blocking connects: those the listen backlog
// refuses are closed). Return the descriptors; the caller closes them.
std::vector<int> t_silent_connections(const std::string& path, int n);
// Wait for the process to exit, at most `timeout`. Return true if it exited (status filled in).
bool t_wait(t_Proc& p, std::chrono::milliseconds timeout);
// Return the exit code (or 128 + signal) of a reaped process.
int t_exit_code(const t_Proc& p);
std::string t_read_file(const std::string& path);
// Poll `cond` every few milliseconds until it holds or `timeout` passes. Return whether it held.
bool t_eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout);

// Parse "a=1 b=x" (the workload's result line: the last line containing '=') into a map.
std::map<std::string, std::string> t_kv(const std::string& output);

// The environment every simulated-GPU client gets: the sim driver, a private GPU, its trace files.
struct t_SimGpu {
  std::string name;          // FIKIT_SIM_GPU
  std::string trace_prefix;  // FIKIT_SIM_TRACE
  std::string mode = "timeslice";
  int devices = 1;  // FIKIT_SIM_DEVICES: GPU k > 0 is the shm object <name>-k
  explicit t_SimGpu(const t_TempDir& dir);
  ~t_SimGpu();
  Env env() const;
};

// A broker started in the foreground on a private socket; stopped (SIGTERM) on destruction.
// Profiles go to <dir>/profiles unless `extra` names a --profile-dir.
class t_Broker {
 public:
  // `env`: added to the broker's environment (e.g. the simulated GPU's, for its calibration).
  t_Broker(const t_TempDir& dir, const std::string& policy,
           const std::vector<std::string>& extra = {}, const Env& env = {});
  ~t_Broker();
  const std::string& socket() const { return socket_; }
  t_Proc& proc() { return proc_; }
  // `fikit-broker status --json` output ("" on failure).
  std::string status_json() const;
  void kill9();
  bool running() const { return proc_.pid > 0; }

 private:
  std::string socket_;
  t_Proc proc_;
};

// Per-stream kernel tags of one process's sim trace: stream id → tags in execution order.
std::map<int, std::vector<uint64_t>> t_trace_tags(const std::string& trace_file,
                                                  const std::string& kernel);
// All trace files written under a prefix (one per process).
std::vector<std::string> t_trace_files(const std::string& prefix);

}  // namespace fikit::test
