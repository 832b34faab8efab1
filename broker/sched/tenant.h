// What the control thread knows of an admitted tenant (TenantDesc, immutable once handed to the
// scheduler) and what the scheduler reports about it (TenantStatus, a copy for status requests).
#pragma once

#include <fikit/abi.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "base/kube_pod.h"
#include "policy/budget.h"
#include "sched/latency_histogram.h"

namespace fikit::broker {

struct TenantDesc {
  uint32_t id = 0;
  pid_t pid = 0;
  uid_t uid = 0;
  uint32_t priority = 0;
  uint32_t gpu = 0;  // its GPU's domain (gpu/gpu_domains.h): one registration per GPU it uses
  std::string name;
  Segment* seg = nullptr;      // the broker's mapping of that segment
  std::shared_ptr<void> keep;  // keeps the mapping alive while anyone holds the descriptor
  uint64_t admitted_ns = 0;    // CLOCK_MONOTONIC
  std::string note;            // for the tenant to print, e.g. admitted below the priority asked
  KubeRef kube;                // its Kubernetes pod and container, if any (at registration)
  bool has_budget = false;     // it asked for an HP budget (FIKIT_HP_BUDGET)
  HpBudget budget;
};

struct TenantStatus {
  uint32_t id = 0;
  uint32_t gpu = 0;  // TenantDesc::gpu
  pid_t pid = 0;
  uid_t uid = 0;
  uint32_t priority = 0;
  std::string name;
  TenantState state = TenantState::kConnecting;
  std::string fault;            // why it is faulty ("" otherwise)
  uint64_t launches = 0;        // HP records and LP requests consumed from its ring
  uint64_t granted = 0;         // LP requests granted
  uint64_t burst_granted = 0;   // ... of which launched at once inside a burst (ABI 2.3)
  uint64_t passed_through = 0;  // client counter: launched without the broker
  uint64_t dropped = 0;         // client counter: HP records lost to a full ring
  uint64_t expired = 0;         // grants taken back after grant_timeout_ns
  uint32_t lp_waiting = 0;
  uint32_t lp_in_flight = 0;
  uint32_t outstanding = 0;  // issued launches not yet known complete
  uint64_t admitted_ns = 0;
  std::string policy_json;  // the policy's statistics of the tenant (PolicyOps::tenant_stats)
  std::string policy_text;  // the same as indented lines ("" if the policy has none)
  KubeRef kube;
  uint64_t busy_ns = 0;            // time with launches outstanding (from issue to seen complete)
  LatencyHistogram grant_latency;  // LP: from the request (client's timestamp) to its grant
};

}  // namespace fikit::broker
