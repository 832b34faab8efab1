// The harvest controller (AIMD on measured HP slowdown against the budget).
#include "policy/fikit/harvest_controller.h"

#include <algorithm>

namespace fikit::broker::fikit_policy {

const char* controller_state_name(ControllerState s) {
  switch (s) {
    case ControllerState::kFailSafe:
      return "fail-safe";
    case ControllerState::kProbe:
      return "probe";
    case ControllerState::kHold:
      return "hold";
    case ControllerState::kBackoff:
      return "backoff";
  }
  return "unknown";
}

void HarvestController::fail_safe() {
  gain_ = 0;
  state_ = ControllerState::kFailSafe;
}

void HarvestController::on_request(double slowdown, const ControllerInput& in,
                                   const ControllerParams& p) {
  window_.add(static_cast<uint64_t>(std::max(0.0, slowdown) * kScale));
  if (++since_eval_ >= std::max(1u, p.eval_every)) {
    since_eval_ = 0;
    evaluate(in, p);
  }
}

void HarvestController::evaluate(const ControllerInput& in, const ControllerParams& p) {
  bool measurable = in.alone_known && in.alone_p50_ns > 0;
  auto ratio = [&](double q, double alone) {
    if (!measurable || window_.size() == 0) return 0.0;
    return static_cast<double>(window_.quantile(q)) / kScale / std::max(alone, 1e-3);
  };
  s50_ = ratio(0.5, in.alone_slowdown_p50);
  s99_ = ratio(0.99, in.alone_slowdown_p99);
  if (!measurable || in.budget.off()) {
    fail_safe();
    return;
  }
  // Too few requests to judge: never judged yet, fail-safe; since a decrease, keep the new gain.
  if (window_.size() < p.min_samples) {
    if (state_ == ControllerState::kFailSafe) gain_ = 0;
    return;
  }
  const HpBudget& b = in.budget;
  bool over = (b.p50 > 0 && s50_ > b.p50) || (b.p99 > 0 && s99_ > b.p99);
  if (over) {
    gain_ *= p.backoff;
    if (gain_ < p.step / 4) gain_ = 0;
    state_ = ControllerState::kBackoff;
    decreases_++;
    // The window held the requests that broke the budget: judge the new gain on its own.
    window_.clear();
    return;
  }
  auto roomy = [&](double budget, double s) {
    return budget == 0 || s < 1 + p.headroom * (budget - 1);
  };
  if (roomy(b.p50, s50_) && roomy(b.p99, s99_)) {
    double next = p.slow_start && decreases_ == 0 ? std::max(p.step, 2 * gain_) : gain_ + p.step;
    gain_ = std::min(p.max_gain, next);
    state_ = ControllerState::kProbe;
    increases_++;
  } else {
    state_ = ControllerState::kHold;
  }
}

double controller_allowance_ns(const HarvestController& c, const ControllerInput& in) {
  if (c.state() == ControllerState::kFailSafe || c.gain() <= 0) return 0;
  double b = in.budget.p99 > 0 ? in.budget.p99 : in.budget.p50;
  return c.gain() * (b - 1) * static_cast<double>(in.alone_p50_ns);
}

}  // namespace fikit::broker::fikit_policy
