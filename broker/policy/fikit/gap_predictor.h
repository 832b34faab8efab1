// Gap prediction: how long a tenant that has nothing in flight will stay idle, from the gaps
// seen after its last kernel key. The prediction is a low quantile of those gaps, conditioned on
// the idle time already elapsed (a bimodal gap whose short mode has passed predicts its long
// mode), with what is left of it beyond the elapsed time scaled by the key's conservatism factor,
// which missed predictions lower (the factor also lowers the quantile).
#pragma once

#include <cstdint>

#include "policy/fikit/kernel_stats.h"
#include "policy/fikit/log_histogram.h"
#include "policy/fikit/params.h"

namespace fikit::broker::fikit_policy {

enum class GapSource : uint8_t {
  kNone,    // nothing known: no prediction
  kKey,     // the gaps after this very key
  kTenant,  // the key has too few gaps: all gaps of the tenant
};

struct GapEstimate {
  GapSource source = GapSource::kNone;
  uint64_t end_ns = 0;      // predicted gap length, from the gap's start (0: no room)
  uint64_t raw_end_ns = 0;  // the same without the conservatism factor
  uint64_t recheck_ns = 0;  // elapsed idle time at which the prediction can grow (0: never)
  uint64_t longest_ns = 0;  // the longest such gap seen: no prediction can end later
  bool known() const { return source != GapSource::kNone; }
};

// Predict the gap after `ks` (nullptr: key unknown) once `elapsed_ns` of it have passed;
// `tenant_gaps` (nullable) holds every gap of the tenant.
GapEstimate predict_gap(const KeyStats* ks, const LogHistogram* tenant_gaps, uint64_t elapsed_ns,
                        const FikitParams& p);

// Record a finished gap of `actual_ns` after the key.
void gap_observed(KeyStats& ks, uint64_t actual_ns);

// Score the prediction made when the gap began against the actual gap: hit if the gap lasted at
// least as long as predicted. recover_hits hits of the raw prediction since the last fill miss
// win back conservatism.
void gap_scored(KeyStats& ks, const GapEstimate& at_start, uint64_t actual_ns,
                const FikitParams& p);

// A gap of the key closed with `overrun` true if fills to its predictions would have left more
// LP work than its HP could afford at its return (KeyStats::overrun_rate).
void gap_overrun_scored(KeyStats& ks, bool overrun);

// A gap after the key that LP work was granted into has closed (a fill miss, if it was one, is
// seen later, when that work completes).
void filled_gap_closed(KeyStats& ks, const FikitParams& p);

// The tenant came back while LP work granted into its gap was still running: if that happens
// more often than the gap quantile allows, make the key's predictions more conservative.
void fill_missed(KeyStats& ks, const FikitParams& p);

}  // namespace fikit::broker::fikit_policy
