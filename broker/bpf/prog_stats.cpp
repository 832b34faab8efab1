#include "prog_stats.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>

#include "map_helpers.h"

namespace fikit::bpf {
namespace {

constexpr uint32_t kMaxMapIds = 32;

// Closes an fd obtained from the kernel when it goes out of scope.
struct ScopedFd {
  int fd;
  ~ScopedFd() {
    if (fd >= 0) close(fd);
  }
};

// Fill `out` from the program with fd `fd`. Return 0 or -errno.
int read_program(int fd, ProgramSample* out) {
  uint32_t map_ids[kMaxMapIds] = {};
  bpf_prog_info info = {};
  info.nr_map_ids = kMaxMapIds;
  info.map_ids = reinterpret_cast<uintptr_t>(map_ids);
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len)) return -errno;
  out->id = info.id;
  out->name = info.name;
  const char* type = libbpf_bpf_prog_type_str(static_cast<bpf_prog_type>(info.type));
  out->type = type ? type : "type " + std::to_string(info.type);
  char tag[2 * BPF_TAG_SIZE + 1] = {};
  for (int i = 0; i < BPF_TAG_SIZE; i++) std::snprintf(tag + 2 * i, 3, "%02x", info.tag[i]);
  out->tag = tag;
  out->gpl = info.gpl_compatible;
  out->run_cnt = info.run_cnt;
  out->run_time_ns = info.run_time_ns;
  out->recursion_misses = info.recursion_misses;
  out->map_ids.assign(map_ids, map_ids + std::min(info.nr_map_ids, kMaxMapIds));
  return 0;
}

}  // namespace

Result<StatsSession> StatsSession::start() {
  const int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
  if (fd < 0)
    return errno_status(errno,
                        "enable BPF run-time statistics (BPF_ENABLE_STATS needs Linux 5.8 and "
                        "root or CAP_SYS_ADMIN)");
  return StatsSession(fd);
}

StatsSession::~StatsSession() {
  if (fd_ >= 0) close(fd_);
}

Result<std::vector<ProgramSample>> sample_programs(const std::string& prefix,
                                                   const std::vector<uint32_t>& only_ids) {
  std::vector<ProgramSample> out;
  uint32_t id = 0;
  for (;;) {
    if (bpf_prog_get_next_id(id, &id)) {
      if (errno == ENOENT) break;  // no more programs
      return errno_status(errno, "list BPF programs (run as root)");
    }
    if (!only_ids.empty() && std::find(only_ids.begin(), only_ids.end(), id) == only_ids.end())
      continue;
    ScopedFd fd{bpf_prog_get_fd_by_id(id)};
    if (fd.fd < 0) {
      if (errno == ENOENT) continue;  // unloaded meanwhile
      return errno_status(errno, "open BPF program " + std::to_string(id) + " (run as root)");
    }
    ProgramSample p;
    if (int err = read_program(fd.fd, &p))
      return errno_status(err, "read BPF program info of id " + std::to_string(id));
    if (p.name.compare(0, prefix.size(), prefix) == 0) out.push_back(std::move(p));
  }
  return out;
}

Result<uint32_t> program_id(int fd) {
  bpf_prog_info info = {};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len)) return errno_status(errno, "read BPF program info");
  return info.id;
}

std::string bpftool_line(const ProgramSample& p) {
  char buf[256];
  int n = std::snprintf(buf, sizeof(buf), "%u: %s  name %s  tag %s%s", p.id, p.type.c_str(),
                        p.name.c_str(), p.tag.c_str(), p.gpl ? "  gpl" : "");
  std::string line(buf, n > 0 ? static_cast<size_t>(n) : 0);
  if (p.run_time_ns) {
    std::snprintf(buf, sizeof(buf), " run_time_ns %" PRIu64 " run_cnt %" PRIu64, p.run_time_ns,
                  p.run_cnt);
    line += buf;
  }
  if (p.recursion_misses) line += " recursion_misses " + std::to_string(p.recursion_misses);
  return line;
}

Result<std::vector<uint64_t>> read_counter_map(const std::vector<uint32_t>& map_ids,
                                               const std::string& name) {
  for (uint32_t id : map_ids) {
    ScopedFd fd{bpf_map_get_fd_by_id(id)};
    if (fd.fd < 0) continue;
    bpf_map_info info = {};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.fd, &info, &len) || name != info.name) continue;
    if (info.type != BPF_MAP_TYPE_PERCPU_ARRAY || info.value_size != sizeof(uint64_t))
      return Status(StatusCode::kInvalidArgument,
                    "map " + name + " is not a per-CPU array of 64-bit counters");
    const int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0) return errno_status(-ncpu, "count possible CPUs");
    std::vector<uint64_t> sums(info.max_entries);
    for (uint32_t slot = 0; slot < info.max_entries; slot++) sums[slot] = percpu_sum(fd.fd, slot);
    return sums;
  }
  return Status(StatusCode::kNotFound, "no map named " + name + " in the program's maps");
}

}  // namespace fikit::bpf
