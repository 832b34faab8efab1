// Tunables of the fikit policy beyond PolicyConfig, with their defaults (docs/POLICY.md explains
// each). Overrides come from the environment variable FIKIT_POLICY_OPTS, then from
// `fikit-broker start --policy-opts` (PolicyConfig::opts), both
// "gap_quantile=0.05,measure_gap_us=500".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "policy/policy.h"

namespace fikit::broker::fikit_policy {

struct FikitParams {
  double gap_quantile = 0.10;         // a gap is predicted as this low quantile of the key's gaps
  double duration_quantile = 0.5;     // a LP kernel is predicted as this quantile (noise adds)
  double delay_quantile = 0.9;        // grant-to-launch delay of a LP tenant, high quantile
  uint64_t default_delay_ns = 20000;  // that delay before any was measured
  uint32_t min_gap_samples = 3;       // gaps seen after a key before it predicts
  uint32_t min_tenant_gap_samples = 32;  // gaps of the tenant before they predict unknown keys
  uint64_t measure_gap_ns = 1000000;     // an unmeasured kernel goes into gaps this long, or:
  // A request that has waited starve_wait (an unmeasured kernel, or one longer than any gap left)
  // goes alone into any gap with room for the margin: at most one such risky grant per
  // risky_every, over all tenants.
  uint64_t starve_wait_ns = 10000000;
  uint64_t risky_every_ns = 20000000;
  uint64_t inactive_ns = 100000000;  // idle this long (and past its gaps): no longer active
  // A fill miss multiplies the key's factor by miss_backoff only while more than miss_tolerance x
  // gap_quantile of its last ~miss_window filled gaps missed (a low quantile misses gap_quantile
  // of them anyway).
  double miss_backoff = 0.5;
  double miss_tolerance = 2.5;
  uint32_t miss_window = 16;
  // miss_tolerance on time-slicing, where every miss costs the level above a switch and up to a
  // time slice of LP work (tolerating misses raised eager ResNet-50's p99 to 2.86x of alone there).
  double miss_tolerance_ts = 0;
  uint64_t miss_slack_ns = 50000;  // LP seen done this soon after the return is not a miss
  double min_factor = 1.0 / 16;    // below this factor the key is not filled at all
  uint32_t recover_hits = 16;      // raw-prediction hits since a fill miss that double the factor
  uint32_t max_keys = 1024;        // kernel keys kept per tenant (least recently used out)
  uint32_t window = 2048;          // samples per histogram before old ones are halved
  uint64_t min_recheck_ns = 5000;  // shortest wake-up interval asked of the scheduler
  double switch_gap_factor = 8;    // time-slicing: fill only gaps of >= this many switch costs
  // HP completion markers (SchedulerApi::set_marker_every): 1 in hp_marker_every launches, 1 in
  // hp_marker_learn_every while the tenant launches keys with fewer than hp_marker_learn_samples
  // measured durations, every launch once it went hp_nosync_submits launches without draining
  // (it never synchronizes: only markers show it idle; twice its launches between syncs where
  // that is more, markers.h). 0 turns markers off.
  uint32_t hp_marker_every = 32;
  uint32_t hp_marker_learn_every = 4;
  uint32_t hp_marker_learn_samples = 8;
  uint32_t hp_nosync_submits = 256;
  // Risk admission (risk.h): HP time one ns of LP overlap costs, on MPS and on time-slicing.
  double overlap_cost_mps = 0.5;
  double overlap_cost_ts = 1.0;
  // 1: scale those priors per LP key by what overlaps were measured to cost (overlap_cost.h);
  // 0: the fixed factors alone.
  uint32_t learn_overlap_cost = 1;
  // 1: a budget grant's damage is the worst case, the HP back at once: overlap cost x the LP work
  // that would still be on the GPU (plus the switch on time-slicing), so that the allowance
  // bounds what any one HP request can lose (the p99); 0: the expectation over the HP's gaps
  // (risk.h), which Poisson arrivals turn into milliseconds of LP work in flight.
  uint32_t risk_residual = 1;
  // 1: the harvest controller doubles its gain until its first decrease (slow start), 0: it
  // adds its step from the start (harvest_controller.h).
  uint32_t slow_start = 1;
  // 1: tell the scheduler until when nothing is expected (SchedulerApi::quiet_until), so that it
  // sleeps instead of polling; 0: it polls as before (for comparison).
  uint32_t quiet_sleep = 1;
  // With a budget, call the policy this often while an HP tenant is active (0: never): it sees
  // the drains of 2.1 clients (2.2 ones ring a sleeping broker's doorbell) and, for every client,
  // the HP's return (HP launches ring no doorbell). Measured: it costs no scheduler CPU that the
  // LP completions' polling does not cost anyway, and without it HP p99 on multikey was 1.55-1.79x.
  uint64_t measure_poll_ns = 200000;
  // LP bursts (burst.h): after a grant that fits, let in at most this many of the kernels its
  // tenant is predicted to launch next, as one unit (0: none) ...
  uint32_t burst_max = 8;
  // ... and, with no level above active, for this long at most.
  uint64_t burst_full_ns = 1000000;
};

// Apply "name=value" pairs separated by commas to *p. Durations take a unit suffix in the name
// (_ns, _us, _ms). Return false with *err naming the bad pair; *p is then unchanged.
bool params_parse(std::string_view spec, FikitParams* p, std::string* err);

// Defaults overridden from FIKIT_POLICY_OPTS, then from cfg.opts; a bad spec is logged
// (PolicyConfig::log) and ignored as a whole.
FikitParams params_for(const PolicyConfig& cfg);

}  // namespace fikit::broker::fikit_policy
