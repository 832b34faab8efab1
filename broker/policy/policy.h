// The scheduling policy interface: an ops table per policy (broker/policy/<name>.cpp, or a folder
// for a larger one: policy/fikit/), registered in policy_registry.cpp. The scheduler core
// (broker/sched/sched_core.cpp, sched_ring.cpp) owns the tenants, their waiting LP requests and
// their grants; it consumes the rings, tracks what is outstanding per stream and calls the policy
// on every event. The policy only decides which waiting requests are granted, through
// SchedulerApi, and names a grant by its request's ring position (Submission::position).
//
// Threading: every op runs on the scheduler thread; a policy needs no locks.
#pragma once

#include <fikit/abi.h>

#include <cstdint>
#include <string>

#include "policy/budget.h"

namespace fikit::broker {

struct PolicyConfig {
  // Time-slicing: the cost of returning the GPU to a higher level after LP work.
  uint64_t switch_cost_ns = 0;
  uint64_t margin_ns = 20000;      // safety margin added to every gap fit
  uint32_t max_lp_in_flight = 16;  // bound on granted, not yet completed LP launches (all tenants)
  uint64_t grant_timeout_ns = 100000000;  // a grant not launched within this is taken back
  // Where learned profiles are kept ("" = none; the broker's default kDefaultProfileDir in
  // options.h, or --profile-dir).
  std::string profile_dir;
  std::string opts;  // policy-specific "name=value,..." (--policy-opts)
  // The GPU of the domain this policy state schedules (sched/domains.h; 0 on one GPU): each GPU
  // has its own state, so files a policy writes per state are named per GPU.
  uint32_t gpu = 0;
  // The HP slowdown budget of HP tenants that set none (--hp-budget; policy/budget.h).
  HpBudget hp_budget;
  // Where the policy logs (the broker's log); level 0 debug, 1 info, 2 warn, 3 error. nullptr:
  // stderr. Set by the scheduler core, so that the policy library needs no broker code.
  void (*log)(int level, const char* text) = nullptr;
};

// A launch the scheduler saw: an HP record (already running) or an LP request (waiting for a
// grant; SchedulerApi::request shows the ones still waiting).
struct Submission {
  uint32_t position;  // ring position: the launch's identity within its tenant
  uint64_t kernel_key;
  uint64_t t_ns;  // client timestamp (CLOCK_MONOTONIC)
  uint16_t stream_slot;
  uint32_t flags;  // fikit::kFlag*
};

// A launch known to be complete.
struct Completion {
  uint32_t position;
  uint64_t kernel_key;
  uint64_t issue_ns;  // when it was issued (HP: its record's t_ns; LP: its launch)
  // When it completed, as well as the broker can tell: a drain's time, or the midpoint of the
  // interval a GPU word says it completed in (after its issue and the last look that found it
  // not done, before the look that found it done).
  uint64_t done_ns;
  bool exact;  // true: seen through a completion marker of this very launch; false: through a drain
  uint64_t latest_ns = 0;  // the latest it can have completed (when seen; 0: done_ns)
};

// The scheduler's view of one tenant, read-only for policies (but for policy_data).
struct TenantInfo {
  uint32_t id;
  uint32_t priority;  // 0 highest
  int32_t pid;
  const char* name;
  uint32_t outstanding;     // launches issued and not yet known complete
  uint32_t waiting;         // LP requests waiting for a grant
  uint32_t lp_in_flight;    // granted LP launches not yet complete
  uint64_t idle_since_ns;   // when outstanding last dropped to 0 (0 while busy)
  uint64_t last_submit_ns;  // latest submission (HP record or LP request)
  uint64_t last_key;        // kernel key of the latest issued launch
  uint64_t host_syncs;  // its synchronizing calls that published a drain (as of its last submit)
  // HP (ABI 2.4): a launch began its driver call at this time and its record has not come yet
  // (0: none): the tenant is busy although nothing of it is outstanding yet.
  uint64_t issuing_ns;
  void* policy_data;  // owned by the policy (set in on_tenant_add, freed in on_tenant_remove)
  uint32_t uid;       // the tenant process's uid (with name, the key of saved profiles)
  // The kernel names the tenant publishes (its segment; untrusted: read with key_names.h), or
  // nullptr.
  const KeyNameTable* key_names;
  // HP: the budget it registered with (FIKIT_HP_BUDGET); has_budget false: the broker's.
  bool has_budget;
  HpBudget budget;
};

// What a policy may ask of the scheduler during dispatch.
class SchedulerApi {
 public:
  virtual ~SchedulerApi() = default;
  // Number of tenants and the i-th one (stable only within one dispatch call).
  virtual uint32_t tenant_count() const = 0;
  virtual TenantInfo& tenant(uint32_t i) = 0;
  // Tenant i's k-th waiting LP request, oldest first (TenantInfo::waiting of them; k = 0 is the
  // one grant(i) grants next), or nullptr past the last. Valid until tenant i's next grant.
  virtual const Submission* request(uint32_t i, uint32_t k) const = 0;
  // Grant tenant i's oldest waiting request, request(i, 0). From then on the grant is named by
  // that request's position: on_complete or on_revoke of the same position ends it. Return false
  // if it has none.
  virtual bool grant(uint32_t i) = 0;
  // An LP burst, granted as one unit (ABI 2.3): let tenant i launch its next requests, at the
  // `positions` ring positions after those consumed so far, without waiting, until until_ns
  // (CLOCK_MONOTONIC). Each one launched in it is granted when the scheduler consumes it and
  // reported through on_burst_grant; from then on it is a grant like any other. A new burst
  // replaces the last. Return false if tenant i is of the highest priority or has requests
  // waiting (they are granted first, in ring order). Clients before 2.3 ignore bursts.
  virtual bool open_burst(uint32_t /*i*/, uint32_t /*positions*/, uint64_t /*until_ns*/) {
    return false;
  }
  // End tenant i's burst now. A request that saw it open may still come, and is accepted.
  virtual void close_burst(uint32_t /*i*/) {}
  // Total granted LP launches not yet complete, over all tenants.
  virtual uint32_t lp_in_flight() const = 0;
  // Return true if any tenant with priority strictly higher (smaller number) than `priority` has
  // outstanding launches.
  virtual bool busy_above(uint32_t priority) const = 0;
  // Ask for a dispatch call no later than t_ns even if nothing happens (0 clears).
  virtual void wake_at(uint64_t t_ns) = 0;
  // Nothing the policy waits for (an HP drain, an LP completion) is expected before t_ns: the
  // scheduler may sleep until shortly before then instead of polling (0: unknown, poll). Set at
  // each dispatch; the default ignores it.
  virtual void quiet_until(uint64_t /*t_ns*/) {}
  // Ask highest-priority tenant i to put a completion marker after 1 in n of its launches (0:
  // none), so that the policy measures HP kernels and sees a tenant that never synchronizes
  // drain. Written to the tenant's segment (BrokerWords::hp_marker_every); the default ignores it.
  virtual void set_marker_every(uint32_t /*i*/, uint32_t /*n*/) {}
};

// A policy lists only the ops it implements (designated initializers leave the others nullptr).
struct PolicyOps {
  const char* name = nullptr;
  const char* description = nullptr;  // one line, shown by --help
  // Create the policy's state; nullptr is allowed for stateless policies.
  void* (*init)(const PolicyConfig& cfg) = nullptr;
  void (*exit)(void* state) = nullptr;
  void (*on_tenant_add)(void* state, TenantInfo& t) = nullptr;
  void (*on_tenant_remove)(void* state, TenantInfo& t) = nullptr;
  // An HP launch record or an LP request was consumed from t's ring.
  void (*on_submit)(void* state, TenantInfo& t, const Submission& s) = nullptr;
  // A launch of t completed (LP: c.position is its request's, the name of its grant).
  void (*on_complete)(void* state, TenantInfo& t, const Completion& c) = nullptr;
  // The grant of t's request at `position` ended without a completion: taken back after
  // grant_timeout_ns, aborted by the client (kLpAbort), or no longer tracked. A late launch of it
  // is still reported through on_complete.
  void (*on_revoke)(void* state, TenantInfo& t, uint32_t position) = nullptr;
  // t launched request s inside its burst (SchedulerApi::open_burst): s is granted, named by
  // s.position, as if by grant(). Called right after on_submit of s.
  void (*on_burst_grant)(void* state, TenantInfo& t, const Submission& s) = nullptr;
  // t has nothing outstanding any more (drained) at t_ns.
  void (*on_idle)(void* state, TenantInfo& t, uint64_t t_ns) = nullptr;
  // Grant whatever may run now. Called after every batch of events and at wake_at times.
  void (*dispatch)(void* state, SchedulerApi& sched, uint64_t now_ns) = nullptr;
  // Optional (nullptr: none). The policy's statistics of tenant `id` for `fikit-broker status`:
  // json: one JSON object ("{}" if none); else indented text lines ("" if none).
  std::string (*tenant_stats)(void* state, uint32_t id, bool json) = nullptr;
  // Optional. t said it is idle for idle_ns from t_ns (fikit_hint_idle: a kHintIdle entry).
  void (*on_hint_idle)(void* state, TenantInfo& t, uint64_t idle_ns, uint64_t t_ns) = nullptr;
  // Optional (nullptr: the policy takes no options). Return true if `opts` (--policy-opts,
  // "name=value,...") is valid for this policy, else false with *err naming the bad pair.
  bool (*check_opts)(const std::string& opts, std::string* err) = nullptr;
};

// Every policy, in the order --help lists them. The first is the default.
const PolicyOps* const* policy_list();
// Return the policy named `name`, or nullptr.
const PolicyOps* policy_find(const char* name);

}  // namespace fikit::broker
