// One sample of everything fikit-audit reports: fikit's BPF programs (run counters), the
// observer's per-CPU counters, the client library's counters per tenant (shared-memory segments
// in /dev/shm) and the broker's CPU time. Two samples make a report.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "prog_stats.h"

namespace fikit::audit {

struct TenantSample {
  pid_t pid = 0;
  std::string name;
  uint32_t priority = 0;
  uint64_t launches = 0;
  uint64_t passed_through = 0;
  uint64_t dropped = 0;
  uint64_t markers = 0;
};

struct BrokerSample {
  pid_t pid = 0;
  uint64_t cpu_ticks = 0;  // utime + stime, in clock ticks
};

struct Sample {
  uint64_t t_ns = 0;                                   // CLOCK_MONOTONIC
  std::vector<bpf::ProgramSample> programs;            // names starting with "fikit_"
  std::map<uint32_t, std::vector<uint64_t>> counters;  // per observer, by fikit_ioctl_in id
  std::vector<TenantSample> tenants;
  std::vector<BrokerSample> brokers;
};

// Take a sample of all fikit programs, or of those in `program_ids` if it is not empty. Fails
// only if the BPF programs cannot be listed (not root).
bpf::Result<Sample> take_sample(const std::vector<uint32_t>& program_ids);

}  // namespace fikit::audit
