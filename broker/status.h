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
//
// Other members are status parts (StatusPart): "substrate" (substrate/substrate_status.h),
// "hp_idle" (sched/idle_status.h) and "gpu" (gpu/gpu_status.h). The broker builds the whole
// document as one JSON object and dumps it once; the table is drawn from the same object, each
// part by the renderer that status.cpp lists under its key.
#pragma once

#include <fikit/result.h>
#include <sys/types.h>

#include <functional>
#include <nlohmann/json_fwd.hpp>
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

// A member of the status document that a part of the broker owns: its key (one of those
// status_text() draws) and its value, built at each status request within max_len bytes (dumped).
// A value longer than the room left, or null, leaves the member out.
struct StatusPart {
  std::string key;
  std::function<nlohmann::json(uint64_t now_ns, size_t max_len)> value;
};

// The JSON document, at most max_len bytes: the parts first, in their order, then the tenants
// in the room left (those beyond it are counted in tenants_omitted).
std::string status_json(const BrokerInfo& info, const std::vector<TenantStatus>& tenants,
                        uint64_t now_ns, size_t max_len, const std::vector<StatusPart>& parts = {});

// The table for people, from the JSON document.
Result<std::string> status_text(const std::string& json);

const char* state_name(TenantState s);

}  // namespace fikit::broker
