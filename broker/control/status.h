// The status format (docs/STATUS.md). The broker answers a status request with one JSON document
// (compact, at most kStatusMax bytes); `fikit-broker status` prints it as is with --json, or as a
// table that fits 80 columns.
//
//   {"schema_version": 2, "time" (Unix s), "version",
//    "broker": {"pid", "uid", "socket", "policy", "uptime_s", "scheduler_cpu_s", "process_cpu_s",
//               "spin_us", "abi", "tenants", "tenants_omitted"},
//    "gpus": [{"index", "uuid", "model", "tenants": [id...]}],
//    "tenants": [{"id", "gpu", "pid", "uid", "name", "priority", "priority_name", "state",
//                 "fault", "launches", "granted", "burst_granted", "passed_through", "dropped",
//                 "expired", "lp_waiting", "lp_in_flight", "outstanding", "busy_s", "age_s",
//                 "launches_per_s", "grants_per_s", "rate_window_s", "policy", "policy_text",
//                 "grant_latency" (once granted), "kubernetes" (in a pod)}]}
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
#include <unordered_map>
#include <vector>

#include "control/rates.h"
#include "gpu/gpu_inventory.h"
#include "sched/tenant.h"

namespace fikit::broker {

// 1: the unversioned document before schema_version, time, version, gpus and rates.
inline constexpr int kStatusSchemaVersion = 2;
// What `fikit-broker status` exits with when no broker answers (after printing
// {"running": false} with --json); 1 for any other failure, 2 for a usage error.
inline constexpr int kStatusNotRunningExit = 3;  // as LSB init scripts: "not running"

struct BrokerInfo {
  pid_t pid = 0;
  uid_t uid = 0;
  std::string socket;
  std::string policy;
  uint64_t uptime_ns = 0;
  double scheduler_cpu_s = 0;
  double process_cpu_s = 0;
  uint64_t spin_us = 0;
  double unix_time = 0;
  // The GPU the broker schedules (today one, index 0): its UUID and model when the machine has
  // exactly one NVIDIA GPU, else "".
  std::string gpu_uuid;
  std::string gpu_model;
  // Every GPU it schedules, one domain each (gpu/gpu_domains.h), by index; when set, these are
  // "gpus" (gpu_uuid and gpu_model are then unused).
  std::vector<GpuIdentity> gpus;
};

// A member of the status document that a part of the broker owns: its key (one of those
// status_text() draws) and its value, built at each status request within max_len bytes (dumped).
// A value longer than the room left, or null, leaves the member out.
struct StatusPart {
  std::string key;
  std::function<nlohmann::json(uint64_t now_ns, size_t max_len)> value;
};

struct StatusInput {
  BrokerInfo info;
  std::vector<TenantStatus> tenants;
  // Tenants gone since the last metrics scrape, with their final counts: listed in
  // "departed_tenants" (metrics documents only; omitted when empty).
  std::vector<TenantStatus> departed;
  std::unordered_map<uint32_t, TenantRate> rates;  // by tenant id (TenantRates)
  std::vector<StatusPart> parts;
  uint64_t now_ns = 0;
  size_t max_len = 0;
};

// The document, at most max_len bytes dumped: the parts first, in their order, then the tenants
// in the room left (those beyond it are counted in tenants_omitted). status_json() dumps it.
nlohmann::json status_document(const StatusInput& in);
std::string status_json(const StatusInput& in);
std::string status_json(const BrokerInfo& info, const std::vector<TenantStatus>& tenants,
                        uint64_t now_ns, size_t max_len, const std::vector<StatusPart>& parts = {});

// The table for people, from the JSON document: every line at most 80 columns.
Result<std::string> status_text(const std::string& json);

// What the table's columns and the policy's lines mean (the STATUS section of --help).
std::string status_legend();

const char* state_name(TenantState s);

}  // namespace fikit::broker
