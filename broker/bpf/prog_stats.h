// Kernel BPF run-time statistics of fikit's programs (for fikit-audit and status): the kernel's
// counters run_cnt and run_time_ns, kept while a BPF_ENABLE_STATS fd is open, read from any loaded
// program by id, the same numbers `bpftool prog show` prints.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bpf_status.h"

namespace fikit::bpf {

// Keeps the kernel's BPF run-time statistics on while alive (BPF_ENABLE_STATS through libbpf).
// Closing the fd turns them off again unless someone else holds them, so tools do not fight over
// the kernel.bpf_stats_enabled sysctl. Statistics cost a little on every program run: hold them
// only while measuring.
class StatsSession {
 public:
  static Result<StatsSession> start();
  StatsSession(StatsSession&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  StatsSession& operator=(StatsSession&&) = delete;
  StatsSession(const StatsSession&) = delete;
  ~StatsSession();

 private:
  explicit StatsSession(int fd) : fd_(fd) {}
  int fd_;
};

struct ProgramSample {
  uint32_t id = 0;
  std::string name;
  std::string type;  // "tracepoint", "kprobe" (uprobes too), ...
  std::string tag;   // hex, as bpftool prints it
  bool gpl = false;
  uint64_t run_cnt = 0;
  uint64_t run_time_ns = 0;
  uint64_t recursion_misses = 0;
  std::vector<uint32_t> map_ids;
};

// Every loaded BPF program whose name starts with `prefix`, by id; only those in `only_ids` if it
// is not empty.
Result<std::vector<ProgramSample>> sample_programs(const std::string& prefix,
                                                   const std::vector<uint32_t>& only_ids = {});

// The kernel's id of the BPF program behind `fd`.
Result<uint32_t> program_id(int fd);

// The line `bpftool prog show id <id>` prints first for this program (plain output).
std::string bpftool_line(const ProgramSample& p);

// Find the per-CPU array of __u64 named `name` among `map_ids` and return its slots summed over
// CPUs. ENOENT if no such map.
Result<std::vector<uint64_t>> read_counter_map(const std::vector<uint32_t>& map_ids,
                                               const std::string& name);

}  // namespace fikit::bpf
