// The fikit policy's ops (defined in broker/policy/fikit.cpp), shared with the oracle policy
// (broker/policy/oracle.cpp), which differs only in where its gap predictions come from.
#pragma once

#include <cstdint>
#include <string>

#include "policy/fikit/policy_state.h"
#include "policy/policy.h"

namespace fikit::broker::fikit_policy {

// Create the state; `oracle`: gaps come from idle hints, and profiles are neither loaded nor
// saved (benchmark runs stay independent of each other).
void* ops_init(const PolicyConfig& cfg, bool oracle);
void ops_exit(void* state);
void ops_tenant_add(void* state, TenantInfo& t);
void ops_tenant_remove(void* state, TenantInfo& t);
void ops_on_submit(void* state, TenantInfo& t, const Submission& s);
void ops_on_complete(void* state, TenantInfo& t, const Completion& c);
void ops_on_idle(void* state, TenantInfo& t, uint64_t t_ns);
void ops_dispatch(void* state, SchedulerApi& sched, uint64_t now_ns);
std::string ops_tenant_stats(void* state, uint32_t id, bool json);

}  // namespace fikit::broker::fikit_policy
