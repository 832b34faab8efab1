// The learned cost of LP overlap to an HP tenant.
#include "policy/fikit/overlap_cost.h"

#include <algorithm>

namespace fikit::broker::fikit_policy {

namespace {

// The baseline follows the non-overlapped requests' excess with this weight per request.
constexpr double kBaselineAlpha = 1.0 / 32;
// A request's excess counts at most this many alone p50s (one request stuck behind the host
// must not teach a key 50x).
constexpr double kMaxExcessFactor = 4;
// A key's sums are halved once its predicted damage passes this many prior weights.
constexpr double kForgetAfter = 64;

}  // namespace

OverlapCosts::Entry* OverlapCosts::find(uint64_t key) {
  for (size_t i = 0; i < n_; i++)
    if (entries_[i].key == key) return &entries_[i];
  return nullptr;
}

const OverlapCosts::Entry* OverlapCosts::find(uint64_t key) const {
  for (size_t i = 0; i < n_; i++)
    if (entries_[i].key == key) return &entries_[i];
  return nullptr;
}

OverlapCosts::Entry& OverlapCosts::slot(uint64_t key) {
  if (Entry* e = find(key)) return *e;
  if (n_ < kKeys) {
    entries_[n_] = Entry{key, 0, 0};
    return entries_[n_++];
  }
  return shared_;
}

double OverlapCosts::multiplier(uint64_t key) const {
  const Entry* e = find(key);
  if (!e && n_ == kKeys) e = &shared_;
  if (!e) return 1;
  double m = (kPriorWeightNs + e->lost_ns) / (kPriorWeightNs + e->predicted_ns);
  return std::clamp(m, kMinMultiplier, kMaxMultiplier);
}

void OverlapCosts::on_grant(uint64_t key, double predicted_ns) {
  if (!(predicted_ns > 0)) return;
  for (size_t i = 0; i < pending_n_; i++)
    if (pending_[i].key == key) {
      pending_[i].predicted_ns += predicted_ns;
      return;
    }
  if (pending_n_ < kPending) {
    pending_[pending_n_++] = Entry{key, 0, predicted_ns};
    return;
  }
  // Full: charge it with the last one (the request is shared between them anyway).
  pending_[kPending - 1].predicted_ns += predicted_ns;
}

void OverlapCosts::on_request(double excess_ns, bool overlapped, double alone_p50_ns) {
  double cap = kMaxExcessFactor * std::max(alone_p50_ns, 0.0);
  excess_ns = std::clamp(excess_ns, -cap, cap);
  if (!overlapped && pending_n_ == 0) {
    // As alone: what the kind's p50 misses of the mean (a skewed spread, the host) is no LP's.
    baseline_ns_ =
        baseline_known_ ? baseline_ns_ + kBaselineAlpha * (excess_ns - baseline_ns_) : excess_ns;
    baseline_known_ = true;
    return;
  }
  double predicted = 0;
  for (size_t i = 0; i < pending_n_; i++) predicted += pending_[i].predicted_ns;
  if (predicted > 0) {
    // A grant that ended before the HP came back cost nothing: overlapped false, lost 0; that is
    // evidence too (the prediction is an expectation over both outcomes).
    // Signed: noise averages out in the ratio of sums rather than biasing it up.
    double lost = overlapped ? excess_ns - baseline_ns_ : 0.0;
    for (size_t i = 0; i < pending_n_; i++) {
      Entry& e = slot(pending_[i].key);
      double share = pending_[i].predicted_ns / predicted;
      e.lost_ns += share * lost;
      e.predicted_ns += pending_[i].predicted_ns;
      // Old evidence fades, so that a key whose cost changes (the HP's mix) is relearned.
      if (e.predicted_ns > kForgetAfter * kPriorWeightNs) {
        e.lost_ns /= 2;
        e.predicted_ns /= 2;
      }
    }
  }
  pending_n_ = 0;
}

}  // namespace fikit::broker::fikit_policy
