// The fikit policy's state: per tenant (TenantData, hung on TenantInfo::policy_data) and global
// (FikitState: the grants this policy made that are still running). Plain data; the logic is in
// events.cpp (measurement), gap.cpp (gaps: open, close, predict, score), grants.cpp (grants in
// flight, fill misses) and dispatch.cpp (levels, filling). The waiting requests are the
// scheduler's (SchedulerApi::request); the policy keeps no copy of them.
#pragma once

#include <fikit/abi.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "policy/fikit/gap_predictor.h"
#include "policy/fikit/harvest_controller.h"
#include "policy/fikit/kernel_stats.h"
#include "policy/fikit/log_histogram.h"
#include "policy/fikit/overlap_cost.h"
#include "policy/fikit/params.h"
#include "policy/fikit/request_meter.h"
#include "policy/fikit/trace.h"
#include "policy/policy.h"

namespace fikit::broker::fikit_policy {

inline constexpr uint16_t kNoSlot = 0xffff;

// The gap of a tenant that has nothing outstanding: from its drain to its next submission.
struct GapState {
  bool open = false;
  uint64_t start_ns = 0;     // drain time
  uint64_t key = 0;          // kernel key of the launch before the gap
  uint64_t epoch = 0;        // gap number, to tell gaps apart
  GapEstimate at_start;      // prediction when it opened (scored against the actual gap)
  bool filled = false;       // LP work was granted into it
  uint64_t returned_ns = 0;  // when the tenant submitted again (0: still open)
  uint64_t fill_end_ns = 0;  // the latest predicted end a LP request was judged against (0: none)
};

// A gap a fill grant went into: whose, which one, after which key.
struct GapRef {
  uint32_t tenant_id;
  uint64_t epoch;
  uint64_t key;
  uint64_t returned_ns;  // when that tenant came back (0: not yet)
  uint64_t end_ns;       // the gap's predicted end the grant relied on (absolute)
};

// A grant this policy made that has not completed, named as the scheduler names it: by tenant and
// by its request's ring position.
struct Grant {
  uint32_t tenant_id;
  uint32_t position;
  uint64_t key;
  uint16_t stream_slot;
  uint64_t grant_ns;
  uint64_t end_ns;   // predicted end (kNoEnd if unknown)
  bool fill;         // granted into a gap (false: its level ran at full speed)
  bool risky;        // granted knowing it may outlast the gap (FillVerdict::kGrantRisky)
  bool budget;       // admitted within the HP budget (FillVerdict::kGrantBudget)
  bool burst;        // launched inside a burst (burst.h): no grant-to-launch delay to learn
  uint64_t cost_ns;  // predicted GPU time (0: unknown)
  std::vector<GapRef> gaps;
};

struct TenantCounters {
  uint64_t kernels = 0;          // launches (HP records and LP requests) seen
  uint64_t durations = 0;        // kernel durations measured
  uint64_t gaps = 0;             // gaps measured
  uint64_t gap_hits = 0;         // gaps at least as long as predicted
  uint64_t gap_misses = 0;       // gaps shorter than predicted
  uint64_t gap_unpredicted = 0;  // gaps without a prediction (too little known)
  uint64_t fill_misses = 0;      // came back while LP work granted into the gap still ran
  uint64_t pred_sum_ns = 0;      // predicted vs actual, over predicted gaps
  uint64_t actual_sum_ns = 0;
  uint64_t gaps_filled = 0;      // own gaps that LP work was granted into
  uint64_t lp_into_gaps = 0;     // LP grants into own gaps
  uint64_t lp_into_gaps_ns = 0;  // their predicted GPU time
  // As a lower-priority tenant:
  uint64_t grants_fill = 0;           // grants into gaps of higher levels
  uint64_t grants_full = 0;           // grants while no higher level was active
  uint64_t grants_measure = 0;        // unknown kernels granted to measure them
  uint64_t grants_risky = 0;          // waited too long: unknown or too long, alone in a short gap
  uint64_t fill_busy_ns = 0;          // measured GPU time of completed fill grants
  uint64_t fill_overruns = 0;         // fills that outlasted a gap that lasted as predicted
  uint64_t wait_sum_ns = 0;           // request to grant, summed over grants
  uint64_t wait_max_ns = 0;           // the longest such wait
  std::array<uint64_t, 4> held_ns{};  // time spent with a request waiting, by HeldReason
  std::array<uint64_t, 5> no_room_why{};  // dispatches, by NoRoomWhy
  uint64_t no_room_cost_ns = 0;  // summed over those dispatches: the request's predicted cost
  uint64_t no_room_left_ns = 0;  // ... and the room the gap had left after the LP work in it
  uint64_t grants_budget = 0;    // did not fit, admitted within the HP budget (risk.h)
  uint64_t harvest_ns = 0;       // GPU time of its completed fill grants (measured, else predicted)
  uint64_t bursts = 0;           // bursts opened (burst.h)
  uint64_t burst_kernels = 0;    // ... the kernels they were sized for
  uint64_t grants_burst = 0;     // launches made inside them (also counted as fill or full)
  uint64_t burst_late = 0;       // ... after an HP request had begun (before the burst closed)
};

// A LP tenant's burst (burst.h): what it lets in and until when.
struct BurstState {
  bool open = false;
  bool fill = false;      // into a gap (false: its level ran at full speed)
  uint64_t until_ns = 0;  // the deadline the client was given
  uint64_t end_ns = 0;    // predicted end of the LP work it lets in
  std::vector<GapRef> gaps;
};

// Why a LP tenant's oldest request was not granted in a dispatch (time is charged to the reason
// until the next dispatch, so that an operator sees where a starving task's time goes).
enum class HeldReason : uint8_t {
  kAboveBusy = 0,  // a level above has work on the GPU: no gap at all
  kNoRoom = 1,     // a known kernel longer than what is left of the gap
  kUnknown = 2,    // an unmeasured kernel waiting for a gap long enough to measure it
  kInFlight = 3,   // max_lp_in_flight grants are still running
  kNone = 4,       // nothing waiting, or granted
};

// Why a known kernel that did not fit was not granted as a risky one either.
enum class NoRoomWhy : uint8_t {
  kYoung = 0,     // it had not waited starve_wait
  kRate = 1,      // another risky grant was too recent (risky_every)
  kNotAlone = 2,  // other LP work was still in the gap
  kGapOver = 3,   // the gap had no room left for the margin
  kCap = 4,       // it fit the gap, but the LP work queued would cost the HP more than its budget
                  // allows were it back now (risk.h residual_cap_ns)
};

struct TenantData {
  TenantData(uint32_t tid, std::string tname, uint32_t prio, const FikitParams& p)
      : id(tid),
        name(std::move(tname)),
        priority(prio),
        keys(p.max_keys, p.window),
        all_gaps(p.window),
        delays(p.window),
        issue_pos(kRingEntries),
        issue_slot(kRingEntries, kNoSlot) {
    // Position i + 1 never maps to index i: every entry starts "not this position".
    for (uint32_t i = 0; i < kRingEntries; i++) issue_pos[i] = i + 1;
  }

  // The last completion known on a stream: a later launch there cannot have started before it
  // (done_ns: the latest it can have completed, Completion::latest_ns).
  struct StreamDone {
    uint32_t position = 0;
    uint64_t done_ns = 0;
    bool valid = false;
    bool exact = false;
  };

  uint32_t id;
  std::string name;
  uint32_t priority;
  uint32_t uid = 0;  // with name, the key of its profile (profile.h)
  KernelTable keys;
  LogHistogram all_gaps;  // every gap of the tenant: fallback for keys with too few gaps
  LogHistogram delays;    // grant-to-launch delay of its LP requests
  // Kernel names of keys in `keys`, as the tenant published them (key_names.h); saved with them.
  std::map<uint64_t, std::string> key_names;
  std::array<StreamDone, kStreamSlots> last_done{};
  std::vector<uint32_t> issue_pos;  // ring position -> stream slot map (indexed by pos & mask)
  std::vector<uint16_t> issue_slot;
  GapState gap;
  uint64_t collided_epoch = 0;  // last gap already counted as a fill miss
  uint64_t hint_end_ns = 0;     // oracle: the tenant said it is idle until then
  uint64_t last_key = 0;
  // HP completion-marker sampling (markers.cpp).
  uint32_t marker_every = UINT32_MAX;  // 1 in N asked of the scheduler (UINT32_MAX: not yet)
  uint64_t unmeasured_ns = 0;          // last submission of a key with too few durations
  uint64_t submits_since_idle = 0;     // submissions since the tenant last drained
  uint64_t host_syncs_seen = 0;        // TenantInfo::host_syncs at its previous submission
  uint64_t submits_since_sync = 0;     // submissions since its last synchronizing call
  uint64_t launches_per_sync = 0;      // recent most, decaying by 1/16 per sync (0: never synced)
  TenantCounters counters;
  double served_ns = 0;  // GPU time granted, decayed (share.cpp) as of served_at_ns
  uint64_t served_at_ns = 0;
  HeldReason held = HeldReason::kNone;  // why its oldest request waits, since held_since_ns
  uint64_t held_since_ns = 0;
  uint64_t traced_deny_t_ns = 0;  // the request and verdict of the last deny traced (one each)
  TraceVerdict traced_deny_verdict = TraceVerdict::kGrant;
  std::string profile_note;       // what happened to its profile (loaded, not found, rejected: why)
  bool profile_rejected = false;  // the file there was refused: do not overwrite it
  // HP latency budget (request_meter.h, harvest_controller.h): its requests, the latency of those
  // no LP work overlapped (saved in its profile), the controller, its budget.
  RequestMeter requests;
  LogHistogram alone{512};
  // The same per kind of request (RequestMeter::last_kind), for at most kAloneKinds kinds.
  std::unordered_map<uint64_t, LogHistogram> alone_by_kind;
  SampleWindow<RequestMeter::kWindow> slowdowns;  // latest requests' latency / kind's alone p50,
  SampleWindow<RequestMeter::kWindow> alone_slowdowns;  // ... and of those without LP (x 1e6)
  uint64_t alone_learned = 0;                           // samples added to `alone` in this run
  bool alone_from_profile = false;
  HarvestController controller;
  OverlapCosts overlap;  // what LP overlap really cost its requests, per LP key (risk.cpp)
  HpBudget budget;
  uint64_t hp_idle_at_add = 0;  // LP: FikitState::hp_idle_ns when it arrived
  BurstState burst;             // LP
};

// Dispatch's view of one tenant, rebuilt on every dispatch (dispatch.cpp).
struct TenantView {
  uint32_t idx;
  TenantInfo* t;
  TenantData* td;
  bool active;
  bool busy;     // launches outstanding or granted, or granted in this dispatch
  bool blocked;  // LP tenant waiting with nothing running: it is not idle, it has no gap
  uint64_t inactive_at;
  bool turn_over;  // dispatch_level: nothing more of it is granted in this dispatch
};

// Memory dispatch reuses from call to call, so that it does not allocate.
struct DispatchScratch {
  std::vector<TenantView> views;
  std::vector<TenantView*> level;
  std::vector<GapRef> gaps;
};

struct FikitState;

// Where gap predictions come from: predict tenant td's gap after kernel `key` that began at
// start_ns and has lasted elapsed_ns. The fikit policy predicts from the tenant's history
// (gap.cpp), the oracle takes the tenant's idle hints (oracle.cpp).
using GapSourceFn = GapEstimate (*)(const FikitState& st, const TenantData& td, uint64_t key,
                                    uint64_t start_ns, uint64_t elapsed_ns);

struct FikitState {
  FikitState(const PolicyConfig& c, const FikitParams& p, GapSourceFn source)
      : cfg(c), params(p), gap_source(source) {}

  PolicyConfig cfg;
  FikitParams params;
  std::map<uint32_t, std::unique_ptr<TenantData>> tenants;  // by tenant id
  std::vector<Grant> grants;                                // in flight, oldest first (grants.cpp)
  uint32_t last_fill_tenant = UINT32_MAX;                   // time-slicing: who holds the GPU
  uint32_t last_done_tenant = UINT32_MAX;  // the tenant whose launch was last seen complete
  uint64_t last_done_ns = 0;   // and the latest it can have (events.cpp: time-slicing durations)
  uint64_t last_risky_ns = 0;  // last risky grant (a kernel that waited too long, short gap)
  GapSourceFn gap_source;
  DispatchScratch scratch;
  uint64_t dispatches = 0;
  uint64_t wakeups_asked = 0;
  Trace trace;             // off unless FIKIT_TRACE is set
  bool budget_on = false;  // fikit (not the oracle) with risk admission
  ControllerParams ctl;
  uint64_t hp_idle_ns = 0;  // HP tenants' gaps, summed (the time there was to harvest)
};

}  // namespace fikit::broker::fikit_policy
