// Domains: one SchedCore (tenants, rings, grants and its own policy state) per GPU, driven by the
// one scheduler thread. A tenant registers once per GPU it launches on (TenantDesc::gpu), so each
// registration lives in exactly one domain: an LP launch on GPU k waits only for the work of
// GPU k, and a process on GPUs 0 and 1 takes part in those two domains and no other. A domain is
// made when its first tenant arrives and kept (its policy's learned state) until the broker stops.
//
// The scheduler thread calls these as it called SchedCore's: a round polls every domain; the
// thread spins if any domain is busy and sleeps on every domain's doorbells otherwise, so an idle
// GPU costs no CPU and the broker's CPU does not grow with the number of GPUs.
#pragma once

#include <linux/futex.h>

#include <memory>
#include <vector>

#include "sched/sched_core.h"

namespace fikit::broker {

class Domains {
 public:
  Domains(const PolicyOps* ops, const PolicyConfig& cfg) : ops_(ops), cfg_(cfg) {}

  // The domain of GPU `gpu`, made on first use (gpu < kMaxGpuDomains is the caller's check).
  SchedCore& domain(uint32_t gpu);
  // The domains made so far, by GPU index (nullptr where none is).
  const std::vector<std::unique_ptr<SchedCore>>& all() const { return cores_; }
  // Policy configuration of GPU `gpu`'s domain from now on (its switch-back cost): used when the
  // domain is made, so call it before the GPU's first tenant.
  void set_config(uint32_t gpu, const PolicyConfig& cfg);

  void add(std::shared_ptr<const TenantDesc> desc, uint64_t now_ns);
  bool remove(uint32_t id);
  uint32_t poll(uint64_t now_ns);
  bool busy() const;
  uint64_t wake_at_ns() const;  // the earliest of the domains' (0: none)
  // Until when no busy domain's policy expects an event (SchedCore::quiet_until_ns): the
  // earliest of theirs; 0 if one of them does not know.
  uint64_t quiet_until_ns() const;
  void set_sleeping(bool sleeping);
  size_t doorbells(struct futex_waitv* out, size_t max) const;
  bool rings_ready() const;
  size_t active_count() const;
  std::vector<TenantStatus> status() const;
  std::vector<TenantStatus> take_departed();
  const PolicyOps& policy() const { return *ops_; }
  void set_idle_meter(IdleMeter* meter);

 private:
  const PolicyOps* ops_;
  PolicyConfig cfg_;
  std::vector<PolicyConfig> per_gpu_;  // set_config, by GPU index (default: cfg_)
  IdleMeter* meter_ = nullptr;
  std::vector<std::unique_ptr<SchedCore>> cores_;
};

}  // namespace fikit::broker
