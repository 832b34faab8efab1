// fikit-audit's report: the difference of two samples, printed as text (80 columns) or JSON.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "accounting.h"
#include "sample.h"

namespace fikit::audit {

struct ProgramRate {
  bpf::ProgramSample last;  // as read at the end (bpftool's view)
  uint64_t runs = 0;        // during the interval
  uint64_t run_time_ns = 0;
  double events_per_s = 0;
  double ns_per_run = 0;
  double cpu_percent = 0;  // of one CPU
};

struct TenantRate {
  TenantSample last;
  uint64_t launches = 0;
  double launches_per_s = 0;
  uint64_t passed_through = 0;
  uint64_t dropped = 0;
};

struct BrokerRate {
  pid_t pid = 0;
  double cpu_percent = 0;
};

// What COMMAND did, when fikit-audit ran one.
struct CommandResult {
  bool ran = false;
  pid_t pid = 0;
  int wait_status = 0;
  bool observed = false;    // an observer loaded with --load saw it use the driver
  bpf::ProcessUsage usage;  // what the observer saw
  uint64_t gpu_ioctls = 0;
  uint64_t launches = 0;  // counted with --audit-launches
};

struct Report {
  double interval_s = 0;
  std::vector<ProgramRate> programs;
  uint64_t traced_ioctls = 0;
  double ns_per_traced_ioctl = 0;  // BPF time of the ioctl programs per traced ioctl
  std::vector<std::pair<std::string, uint64_t>> drops;  // non-zero drop counters
  std::vector<TenantRate> tenants;
  std::vector<BrokerRate> brokers;
  CommandResult command;
};

Report make_report(const Sample& first, const Sample& last);
std::string format_text(const Report& r);
std::string format_json(const Report& r);

}  // namespace fikit::audit
