// The status format. The broker answers a status request with one JSON document (compact, at most
// kStatusMax bytes); `fikit-broker status` prints it as is with --json, or as an 80-column table.
//
//   {"broker": {"pid", "uid", "socket", "policy", "uptime_s", "scheduler_cpu_s", "process_cpu_s",
//               "spin_us", "abi", "tenants", "tenants_omitted"},
//    "tenants": [{"id", "pid", "uid", "name", "priority", "priority_name", "state", "fault",
//                 "launches", "granted", "passed_through", "dropped", "expired", "lp_waiting",
//                 "lp_in_flight", "outstanding", "age_s", "policy", "policy_text"}]}
//   policy: the policy's statistics of the tenant (an object, {} if none; fikit: see
//   docs/POLICY.md), policy_text: the same as indented lines for the table.
#pragma once

#include <fikit/result.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "sched/tenant.h"

namespace fikit::broker {

struct BrokerInfo {
  pid_t pid = 0;
  uid_t uid = 0;
  std::string socket;
  std::string policy;
  uint64_t uptime_ns = 0;
  double scheduler_cpu_s = 0;
  double process_cpu_s = 0;
  uint64_t spin_us = 0;
};

// The JSON document, at most max_len bytes (tenants beyond that are counted in tenants_omitted).
std::string status_json(const BrokerInfo& info, const std::vector<TenantStatus>& tenants,
                        uint64_t now_ns, size_t max_len);

// The table for people, from the JSON document.
Result<std::string> status_text(const std::string& json);

const char* state_name(TenantState s);

}  // namespace fikit::broker
