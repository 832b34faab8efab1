// The fill decision: may a waiting lower-priority request be granted into what is left of the
// predicted gap of the levels above it? It fits if it ends at least switch cost + margin before
// the gap's predicted end, where it ends at max(now + delay, end of the LP work already granted
// into the gap) + duration (delay: grant to launch; both high quantiles): the client launches
// while earlier LP work runs, so its delay overlaps that work. A kernel never measured is
// granted alone into a long gap, where it is measured; if the levels above never leave such a
// gap, a request that has waited long enough is measured in a shorter one (a risk to the level
// above that the caller rate-limits), so that a LP task cannot starve for want of a profile. A
// known kernel longer than any gap left (memoryless gaps never leave more) is granted the same
// way once it has waited that long, alone in a gap: else it, and its task, would wait for ever.
#pragma once

#include <algorithm>
#include <cstdint>

#include "policy/fikit/kernel_stats.h"
#include "policy/fikit/log_histogram.h"
#include "policy/fikit/params.h"

namespace fikit::broker::fikit_policy {

inline constexpr uint64_t kNoEnd = UINT64_MAX;  // no gap end: nothing above to protect

// a + b, at most kNoEnd.
constexpr uint64_t sat_add(uint64_t a, uint64_t b) { return a > kNoEnd - b ? kNoEnd : a + b; }

struct LpCost {
  bool known = false;     // the kernel's duration was measured
  uint64_t ns = 0;        // predicted end from the grant: delay + duration
  uint64_t delay_ns = 0;  // of which the grant-to-launch delay (may overlap earlier LP work)
};

// Predicted cost of granting a request for kernel `ks` (nullptr: never seen) of a tenant whose
// grant-to-launch delays are `delays`.
LpCost lp_cost(const KeyStats* ks, const LogHistogram& delays, const FikitParams& p);

struct FillWindow {
  uint64_t now_ns;
  uint64_t gap_end_ns;        // absolute predicted end of the gap, or kNoEnd
  uint64_t committed_end_ns;  // predicted end of LP work already granted into it (<= now: none)
  uint64_t switch_cost_ns;    // paid when the GPU returns to the level above (time-slicing)
  uint64_t margin_ns;
  uint64_t measure_gap_ns;  // an unmeasured kernel needs this much room ...
  bool risky_ok;            // ... unless it may be measured in any gap (it waited long enough)
};

enum class FillVerdict : uint8_t {
  kGrant,           // fits
  kGrantToMeasure,  // unknown kernel, long empty gap: grant it and measure it
  kGrantRisky,      // waited too long (unknown, or longer than the gap): alone in a short gap
  kNoRoom,          // known kernel that does not fit
  kNeedLongGap,     // unknown kernel, gap too short or already in use
  kGrantBudget,     // known kernel that does not fit, admitted within the HP budget (risk.h)
};

struct FillDecision {
  FillVerdict verdict;
  uint64_t end_ns;  // predicted end of this grant (the gap's end for a measured one)
};

FillDecision decide_fill(const FillWindow& w, const LpCost& cost);

// The GPU time of a known kernel once launched: its cost less the grant-to-launch delay.
inline uint64_t lp_run(const LpCost& cost) { return cost.ns - std::min(cost.delay_ns, cost.ns); }

// Where a known kernel granted now ends: after its delay, or after the LP work already granted
// into the gap (its delay overlaps that work), whichever is later.
inline uint64_t lp_end(const FillWindow& w, const LpCost& cost) {
  return std::max(sat_add(w.now_ns, cost.ns), sat_add(w.committed_end_ns, lp_run(cost)));
}

// GPU time of the LP work in the gap that would still be to run were the level above back now,
// once this request is granted: the work granted before and this kernel, which may launch only
// after its delay but then runs its whole length.
inline uint64_t queued_after(const FillWindow& w, const LpCost& cost) {
  uint64_t before = w.committed_end_ns > w.now_ns ? w.committed_end_ns - w.now_ns : 0;
  return std::min(lp_end(w, cost) - w.now_ns, sat_add(before, lp_run(cost)));
}

// Return true for the verdicts that grant.
inline bool fill_grants(FillVerdict v) {
  return v == FillVerdict::kGrant || v == FillVerdict::kGrantToMeasure ||
         v == FillVerdict::kGrantRisky || v == FillVerdict::kGrantBudget;
}

}  // namespace fikit::broker::fikit_policy
