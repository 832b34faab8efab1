// fikit: FIKIT gap filling (Filling Inter-Kernel Idle Time).
//
// The highest active priority level runs freely; each lower level's requests are granted only
// into the predicted idle gaps of all active levels above it. The broker timestamps completion
// markers and drains; from them the policy learns, per tenant and kernel key, how long kernels
// run and how long the tenant stays idle after each key (events.cpp, gap.cpp). When every
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
#include <memory>

#include "policy/fikit/burst.h"
#include "policy/fikit/dispatch.h"
#include "policy/fikit/events.h"
#include "policy/fikit/fikit.h"
#include "policy/fikit/gap.h"
#include "policy/fikit/grants.h"
#include "policy/fikit/key_names.h"
#include "policy/fikit/plog.h"
#include "policy/fikit/policy_state.h"
#include "policy/fikit/profile.h"
#include "policy/fikit/stats_format.h"

namespace fikit::broker {

namespace fp = fikit_policy;

namespace fikit_policy {
namespace {

FikitState* state_of(void* s) { return static_cast<FikitState*>(s); }

// The ops table's form of a tenant event handler Fn(state, tenant data, tenant, args...): cast
// the state, find the tenant's data (none: a tenant the policy does not know), call Fn.
template <auto Fn>
struct TenantOp;
template <typename... A, void (*Fn)(FikitState&, TenantData&, const TenantInfo&, A...)>
struct TenantOp<Fn> {
  static void call(void* s, TenantInfo& t, A... a) {
    if (auto* td = static_cast<TenantData*>(t.policy_data)) Fn(*state_of(s), *td, t, a...);
  }
};

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

// What sets the fikit policy and the oracle apart.
struct Variant {
  const char* name;
  const char* description;
  GapSourceFn gap_source;
  // The oracle: gaps from idle hints, and no profiles (its benchmark runs stay independent).
  bool hints;
};
constexpr Variant kFikit{
    .name = "fikit",
    .description = "fill the predicted idle gaps of higher priorities with lower-priority kernels",
    .gap_source = gap_from_history,
    .hints = false};
constexpr Variant kOracle{
    .name = "oracle",
    .description = "fikit given the true gaps (fikit_hint_idle), for benchmarks",
    .gap_source = gap_from_hints,
    .hints = true};

template <const Variant& V>
void* init_state(const PolicyConfig& cfg) {
  auto* st = new FikitState(cfg, params_for(cfg), V.gap_source);
  if (cfg.switch_cost_ns > 0) st->params.miss_tolerance = st->params.miss_tolerance_ts;
  if (V.hints) st->cfg.profile_dir.clear();
  // The oracle is the benchmarks' bound: it polls rather than sleep towards predicted events,
  // which cost it most of its harvest (benchmarks/results/scenario-2026-12-02-budget*.md).
  if (V.hints) st->params.quiet_sleep = 0;
  // Risk admission needs predictions from history: the oracle fills only what fits.
  st->budget_on = !V.hints && !cfg.hp_budget.off();
  st->ctl.slow_start = st->params.slow_start != 0;
  st->trace.open_from_env(cfg.gpu);
  return st;
}

void exit_state(void* s) {
  FikitState* st = state_of(s);
  for (const auto& [id, td] : st->tenants) save_profile(*st, *td);
  if (std::string err = st->trace.write(); !err.empty())
    plog(st->cfg, kLogError, "%s", err.c_str());
  delete st;
}

void tenant_add(void* s, TenantInfo& t) {
  FikitState* st = state_of(s);
  auto td = std::make_unique<TenantData>(t.id, t.name ? t.name : "", t.priority, st->params);
  td->uid = t.uid;
  td->budget = t.has_budget ? t.budget : st->cfg.hp_budget;
  td->hp_idle_at_add = st->hp_idle_ns;
  load_profile(*st, *td);
  t.policy_data = td.get();
  st->tenants[t.id] = std::move(td);
}

void tenant_remove(void* s, TenantInfo& t) {
  FikitState* st = state_of(s);
  auto it = st->tenants.find(t.id);
  if (it != st->tenants.end()) {
    collect_key_names(*it->second, t.key_names);
    save_profile(*st, *it->second);
    st->tenants.erase(it);
  }
  grants_forget(*st, t.id);
  t.policy_data = nullptr;
}

void dispatch(void* s, SchedulerApi& sched, uint64_t now_ns) {
  fikit_dispatch(*state_of(s), sched, now_ns);
}

std::string tenant_stats(void* s, uint32_t id, bool json) {
  return json ? fikit_tenant_stats_json(s, id) : fikit_tenant_stats_text(s, id);
}

// The ops table of variant V.
template <const Variant& V>
constexpr PolicyOps ops_table() {
  return PolicyOps{
      .name = V.name,
      .description = V.description,
      .init = init_state<V>,
      .exit = exit_state,
      .on_tenant_add = tenant_add,
      .on_tenant_remove = tenant_remove,
      .on_submit = TenantOp<ev_submit>::call,
      .on_complete = TenantOp<ev_complete>::call,
      .on_revoke = TenantOp<ev_revoke>::call,
      .on_burst_grant = TenantOp<ev_burst_grant>::call,
      .on_idle = TenantOp<ev_idle>::call,
      .dispatch = dispatch,
      .tenant_stats = tenant_stats,
      .on_hint_idle = V.hints ? TenantOp<gap_hint>::call : nullptr,
      .check_opts = fikit_policy_opts_check,
  };
}

}  // namespace
}  // namespace fikit_policy

const PolicyOps kFikitPolicy = fp::ops_table<fp::kFikit>();
const PolicyOps kOraclePolicy = fp::ops_table<fp::kOracle>();

void fikit_oracle_hint_idle(void* state, TenantInfo& t, uint64_t idle_ns, uint64_t t_ns) {
  if (state) kOraclePolicy.on_hint_idle(state, t, idle_ns, t_ns);
}

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
