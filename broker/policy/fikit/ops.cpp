// fikit: FIKIT gap filling (Filling Inter-Kernel Idle Time).
//
// The highest active priority level runs freely; each lower level's requests are granted only
// into the predicted idle gaps of all active levels above it. The broker timestamps completion
// markers and drains; from them the policy learns, per tenant and kernel key, how long kernels
// run and how long the tenant stays idle after each key (policy/fikit/events.cpp). When every
// tenant above a level is idle, their gaps are predicted from their last keys (a low quantile,
// conditioned on the idle time already elapsed, scaled down after misses); a waiting request is
// granted if its predicted duration (a high quantile) plus grant delay, after the LP work already
// in the gap, plus the switch-back cost (time-slicing) and a margin, fits (dispatch.cpp,
// fill_decision.cpp). Unknown kernels are measured first, alone, in long gaps. Learned state is
// saved per tenant name (profile.cpp) and loaded when a tenant of that name arrives.
//
// Known limits (docs/POLICY.md): gaps are predicted from the last key only; a tenant with no
// synchronizing calls shows no gaps; a kernel never measured waits for a long gap or for the
// levels above to go inactive; LP kernels are assumed to run one after another in a gap.
#include "policy/fikit/ops.h"

#include <memory>

#include "policy/fikit/dispatch.h"
#include "policy/fikit/events.h"
#include "policy/fikit/fikit.h"
#include "policy/fikit/plog.h"
#include "policy/fikit/policy_state.h"
#include "policy/fikit/profile.h"
#include "policy/fikit/stats_format.h"

namespace fikit::broker {

namespace fp = fikit_policy;

namespace fikit_policy {

namespace {

FikitState* state_of(void* s) { return static_cast<FikitState*>(s); }
TenantData* data_of(TenantInfo& t) { return static_cast<TenantData*>(t.policy_data); }

// Save td's profile unless there is nowhere to save it, nothing learned, or the file there was
// rejected at load (it may belong to another broker version: leave it to the operator).
void save_profile(const FikitState& st, const TenantData& td) {
  if (st.cfg.profile_dir.empty() || td.name.empty() || td.keys.size() == 0 || td.profile_rejected)
    return;
  std::string err;
  if (!profile_save(td, st.cfg.profile_dir, &err))
    plog(st.cfg, kLogError, "%s (the measurements of tenant '%s' are lost)", err.c_str(),
         td.name.c_str());
}

void load_profile(const FikitState& st, TenantData& td) {
  if (st.cfg.profile_dir.empty() || td.name.empty()) return;
  std::string err;
  if (profile_load(&td, st.cfg.profile_dir, &err)) {
    td.profile_note = "loaded " + std::to_string(td.keys.size()) + " keys";
    plog(st.cfg, kLogInfo, "tenant '%s': profile loaded (%u kernel keys)", td.name.c_str(),
         td.keys.size());
  } else if (!err.empty()) {
    td.profile_note = "rejected: " + err;
    td.profile_rejected = true;
    plog(st.cfg, kLogError, "%s; tenant '%s' starts without it (the file is left as it is)",
         err.c_str(), td.name.c_str());
  } else {
    td.profile_note = "none yet";
  }
}

}  // namespace

void* ops_init(const PolicyConfig& cfg, bool oracle) {
  auto* st = new FikitState(cfg, params_for(cfg));
  if (cfg.switch_cost_ns > 0) st->params.miss_tolerance = st->params.miss_tolerance_ts;
  st->oracle = oracle;
  if (oracle) st->cfg.profile_dir.clear();
  st->trace.open_from_env();
  return st;
}

void ops_exit(void* s) {
  FikitState* st = state_of(s);
  for (const auto& [id, td] : st->tenants) save_profile(*st, *td);
  if (std::string err = st->trace.write(); !err.empty())
    plog(st->cfg, kLogError, "%s", err.c_str());
  delete st;
}

void ops_tenant_add(void* s, TenantInfo& t) {
  FikitState* st = state_of(s);
  auto td = std::make_unique<TenantData>(t.id, t.name ? t.name : "", t.priority, st->params);
  td->uid = t.uid;
  load_profile(*st, *td);
  t.policy_data = td.get();
  st->tenants[t.id] = std::move(td);
}

void ops_tenant_remove(void* s, TenantInfo& t) {
  FikitState* st = state_of(s);
  auto it = st->tenants.find(t.id);
  if (it != st->tenants.end()) {
    save_profile(*st, *it->second);
    st->tenants.erase(it);
  }
  ev_forget_grants(*st, t.id);
  t.policy_data = nullptr;
}

void ops_on_submit(void* s, TenantInfo& t, const Submission& sub) {
  if (TenantData* td = data_of(t)) ev_submit(*state_of(s), *td, t, sub);
}

void ops_on_complete(void* s, TenantInfo& t, const Completion& c) {
  if (TenantData* td = data_of(t)) ev_complete(*state_of(s), *td, c);
}

void ops_on_idle(void* s, TenantInfo& t, uint64_t t_ns) {
  if (TenantData* td = data_of(t)) ev_idle(*state_of(s), *td, t, t_ns);
}

void ops_dispatch(void* s, SchedulerApi& sched, uint64_t now_ns) {
  fikit_dispatch(*state_of(s), sched, now_ns);
}

std::string ops_tenant_stats(void* s, uint32_t id, bool json) {
  return json ? fikit_tenant_stats_json(s, id) : fikit_tenant_stats_text(s, id);
}

}  // namespace fikit_policy

namespace {
void* fikit_init(const PolicyConfig& cfg) { return fp::ops_init(cfg, false); }
}  // namespace

const PolicyOps kFikitPolicy = {
    .name = "fikit",
    .description = "fill the predicted idle gaps of higher priorities with lower-priority kernels",
    .init = fikit_init,
    .exit = fp::ops_exit,
    .on_tenant_add = fp::ops_tenant_add,
    .on_tenant_remove = fp::ops_tenant_remove,
    .on_submit = fp::ops_on_submit,
    .on_complete = fp::ops_on_complete,
    .on_idle = fp::ops_on_idle,
    .dispatch = fp::ops_dispatch,
    .tenant_stats = fp::ops_tenant_stats,
    .on_hint_idle = nullptr,  // fikit predicts gaps; hints are the oracle's (oracle.cpp)
    .check_opts = fikit_policy_opts_check,
};

bool fikit_policy_opts_check(const std::string& spec, std::string* err) {
  fp::FikitParams p;
  return fp::params_parse(spec, &p, err);
}

std::string fikit_tenant_stats_text(const void* state, uint32_t tenant_id) {
  if (!state) return "";
  return fp::tenant_stats_text(*static_cast<const fp::FikitState*>(state), tenant_id);
}

std::string fikit_tenant_stats_json(const void* state, uint32_t tenant_id) {
  if (!state) return "{}";
  return fp::tenant_stats_json(*static_cast<const fp::FikitState*>(state), tenant_id);
}

}  // namespace fikit::broker
