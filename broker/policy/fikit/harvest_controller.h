// The harvest controller: how much risk of delaying an HP tenant the fikit policy may take to
// let LP work in, steered by feedback on the HP's measured slowdown against its budget, in the
// spirit of a congestion controller (AIMD). Its output, `gain`, scales the damage allowance of
// risk admission (risk.h): a LP grant that may outlast the HP's gap is admitted if the HP time
// it is predicted to cost (expected overlap x what an overlap costs) is at most
// gain x (budget - 1) x the HP's alone p50 latency.
//
// Every eval_every requests it compares the slowdown over its window (p50 and p99 of the latest
// requests' slowdowns, each request's latency over the alone p50 of its kind) with the budget:
//   over budget (either bounded quantile)   gain x= backoff, window cleared (fresh evidence:
//                                            the gain holds until min_samples new requests)
//   below 1 + headroom x (budget - 1)        gain += step, up to max_gain (additive increase;
//                                            with slow_start, until the first decrease, gain
//                                            doubles from step: an HP run of a few hundred
//                                            requests is over before 40 additive steps)
//   in between                               hold (hysteresis: no oscillation at the edge)
// A p99 budget without a p50 one bounds p50 at 1 + (p99 - 1) / 2 (risk.cpp controller_input).
// Fail-safe: without an alone latency, a budget, or (before its first judgement) min_samples
// requests in its window, the gain is 0 (grant only what is predicted to fit, as without a
// controller); so it is when the HP's current request has run so long that it cannot be measured in
// time (stale()).
#pragma once

#include <cstdint>

#include "policy/budget.h"
#include "policy/fikit/request_meter.h"

namespace fikit::broker::fikit_policy {

struct ControllerParams {
  double step = 0.1;       // additive increase per evaluation
  double backoff = 0.5;    // multiplicative decrease
  double max_gain = 4.0;   // the allowance's mean damage may be this many budgets' worth
  double headroom = 0.7;   // increase only while using less than this share of the budget
  bool slow_start = true;  // double the gain until the first decrease
  uint32_t eval_every = 16;
  uint32_t min_samples = 32;
};

// What the controller measures, from the meter and the alone latency.
struct ControllerInput {
  HpBudget budget;
  bool alone_known = false;
  uint64_t alone_p50_ns = 0;
  uint64_t alone_p99_ns = 0;
  // The same slowdown measure over requests no LP work overlapped (their own spread: a kind's
  // latencies vary alone too): the window's quantiles are judged against these.
  double alone_slowdown_p50 = 1;
  double alone_slowdown_p99 = 1;
};

enum class ControllerState : uint8_t {
  kFailSafe = 0,  // no measurements, alone latency or budget: gain 0
  kProbe = 1,     // under budget: increasing
  kHold = 2,      // near the budget: holding
  kBackoff = 3,   // over budget: decreased
};
const char* controller_state_name(ControllerState s);

class HarvestController {
 public:
  static constexpr uint32_t kWindow = 128;
  static constexpr double kScale = 1e6;  // slowdowns are kept as integers, x kScale

  // One HP request ended `slowdown` times its kind's alone latency (overlapped by LP work or
  // not: both count, the budget is on every request).
  void on_request(double slowdown, const ControllerInput& in, const ControllerParams& p);
  // Measurements went missing: gain 0 until they come back.
  void fail_safe();

  double gain() const { return gain_; }
  ControllerState state() const { return state_; }
  // The slowdown over the window (0: unknown).
  double slowdown_p50() const { return s50_; }
  double slowdown_p99() const { return s99_; }
  uint64_t decreases() const { return decreases_; }
  uint64_t increases() const { return increases_; }

 private:
  void evaluate(const ControllerInput& in, const ControllerParams& p);

  SampleWindow<kWindow> window_;
  uint32_t since_eval_ = 0;
  double gain_ = 0;
  double s50_ = 0, s99_ = 0;
  ControllerState state_ = ControllerState::kFailSafe;
  uint64_t decreases_ = 0, increases_ = 0;
};

// The damage allowance per HP request, ns: gain x (budget - 1) x alone p50 (the p99 budget, else
// the p50 one). 0 when the controller is in fail-safe.
double controller_allowance_ns(const HarvestController& c, const ControllerInput& in);

}  // namespace fikit::broker::fikit_policy
