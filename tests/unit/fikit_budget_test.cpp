// The HP latency budget (policy/budget.h), the HP request meter (request_meter.h), the harvest
// controller (harvest_controller.h) on scripted latency sequences, risk admission (risk.h) and
// the alone latency in profiles. No timings: every clock is synthetic.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "fikit_fake_sched.h"
#include "policy/budget.h"
#include "policy/fikit/gap.h"
#include "policy/fikit/harvest_controller.h"
#include "policy/fikit/profile.h"
#include "policy/fikit/request_meter.h"
#include "policy/fikit/risk.h"

namespace fikit::broker {
namespace {

using namespace fikit_policy;
constexpr uint64_t kUs = 1000;

TEST(HpBudget, ParsesOneOrBothQuantiles) {
  HpBudget b;
  std::string err;
  ASSERT_TRUE(hp_budget_parse("p99=1.10", &b, &err)) << err;
  EXPECT_DOUBLE_EQ(b.p99, 1.10);
  EXPECT_EQ(b.p50, 0);
  ASSERT_TRUE(hp_budget_parse("p50=1.05,p99=1.2", &b, &err)) << err;
  EXPECT_DOUBLE_EQ(b.p50, 1.05);
  EXPECT_DOUBLE_EQ(b.p99, 1.2);
  ASSERT_TRUE(hp_budget_parse("p50=1.02", &b, &err)) << err;
  EXPECT_DOUBLE_EQ(b.p50, 1.02);
  EXPECT_EQ(b.p99, 0);
  ASSERT_TRUE(hp_budget_parse("off", &b, &err));
  EXPECT_TRUE(b.off());
  EXPECT_EQ(hp_budget_string(HpBudget{}), "p99=1.1");
  EXPECT_EQ(hp_budget_string(HpBudget{1.05, 1.2}), "p50=1.05,p99=1.2");
}

TEST(HpBudget, RefusesBadSpecsSayingWhy) {
  struct Case {
    const char* spec;
    const char* says;
  } cases[] = {{"", "empty"},
               {"p98=1.1", "unknown quantile 'p98'"},
               {"p99", "not QUANTILE=SLOWDOWN"},
               {"p99=", "want a slowdown from 1.0 to 100"},
               {"p99=abc", "want a slowdown"},
               {"p99=0.9", "want a slowdown"},
               {"p99=1000", "want a slowdown"},
               {"p99=1.1,p99=1.2", "p99 given twice"},
               {"p99=1.1,", "not QUANTILE=SLOWDOWN"}};
  for (const Case& c : cases) {
    HpBudget b{1.5, 1.5};
    std::string err;
    EXPECT_FALSE(hp_budget_parse(c.spec, &b, &err)) << c.spec;
    EXPECT_NE(err.find(c.says), std::string::npos) << c.spec << ": " << err;
    EXPECT_NE(err.find("p99=1.10"), std::string::npos) << "says how to write it: " << err;
    EXPECT_EQ(b.p50, 1.5) << "unchanged on error";
  }
}

TEST(RequestMeter, ARequestRunsFromTheFirstLaunchAfterADrainToTheDrain) {
  RequestMeter m;
  uint64_t lat = 0;
  bool overlapped = true;
  EXPECT_FALSE(m.on_drain(50, &lat, &overlapped)) << "no request open";
  m.on_submit(100, false);
  m.on_submit(150, false);  // a later launch of the same request
  ASSERT_TRUE(m.on_drain(400, &lat, &overlapped));
  EXPECT_EQ(lat, 300u);
  EXPECT_FALSE(overlapped);
  m.on_submit(1000, false);
  m.on_lp_granted();  // LP work let in while it ran
  ASSERT_TRUE(m.on_drain(1200, &lat, &overlapped));
  EXPECT_EQ(lat, 200u);
  EXPECT_TRUE(overlapped);
  m.on_lp_granted();        // between requests: the next one starts clean
  m.on_submit(2000, true);  // LP work still in flight at its start
  ASSERT_TRUE(m.on_drain(2100, &lat, &overlapped));
  EXPECT_TRUE(overlapped);
  m.on_submit(3000, false);
  EXPECT_FALSE(m.on_drain(2999, &lat, &overlapped)) << "a drain before its start is no sample";
  EXPECT_EQ(m.count(), 3u);
  EXPECT_EQ(m.recent().size(), 3u);
  EXPECT_EQ(m.recent().quantile(0.5), 200u);
  EXPECT_EQ(m.recent().quantile(0.99), 300u);
}

TEST(RequestMeter, RequestsOfOneKindShareTheirFirstKeyAndLaunchCount) {
  RequestMeter m;
  uint64_t lat = 0;
  bool overlapped = false;
  auto request = [&](uint64_t t, uint64_t key, int launches) {
    for (int i = 0; i < launches; i++) m.on_submit(t + i, false, key);
    EXPECT_TRUE(m.on_drain(t + 100, &lat, &overlapped));
    return m.last_kind();
  };
  uint64_t a = request(1000, 0x1, 1);
  EXPECT_EQ(request(2000, 0x1, 1), a);
  EXPECT_NE(request(3000, 0x1, 10), a) << "ten launches are another kind of request";
  EXPECT_NE(request(4000, 0x2, 1), a) << "so is another first kernel";
}

TEST(SampleWindow, KeepsTheLatestSamples) {
  SampleWindow<128> w;
  EXPECT_EQ(w.quantile(0.5), 0u);
  for (uint64_t i = 0; i < 1000; i++) w.add(i < 872 ? 1'000'000 : i);
  EXPECT_EQ(w.size(), 128u);
  EXPECT_EQ(w.quantile(0.0), 872u) << "only the last 128 remain";
  EXPECT_EQ(w.quantile(1.0), 999u);
}

// The controller fed requests of `latency` against an alone latency of 1 ms (p50 and p99).
class ControllerTest : public ::testing::Test {
 protected:
  ControllerTest() {
    in_.budget = HpBudget{0, 1.10};
    in_.alone_known = true;
    in_.alone_p50_ns = 1000 * kUs;
    in_.alone_p99_ns = 1000 * kUs;
  }
  void feed(int n, uint64_t latency) {
    for (int i = 0; i < n; i++)
      c_.on_request(static_cast<double>(latency) / static_cast<double>(in_.alone_p50_ns), in_, p_);
  }
  ControllerInput in_;
  ControllerParams p_;
  HarvestController c_;
};

TEST_F(ControllerTest, StartsFailSafeAndProbesWhileUnderBudget) {
  EXPECT_EQ(c_.state(), ControllerState::kFailSafe);
  EXPECT_EQ(controller_allowance_ns(c_, in_), 0);
  feed(static_cast<int>(p_.min_samples) - 1, 1000 * kUs);
  EXPECT_EQ(c_.gain(), 0) << "too few requests to judge";
  feed(p_.eval_every, 1000 * kUs);
  EXPECT_EQ(c_.state(), ControllerState::kProbe);
  double g1 = c_.gain();
  EXPECT_GT(g1, 0);
  feed(p_.eval_every * 10, 1020 * kUs);  // 1.02x: well inside 1.10
  EXPECT_GT(c_.gain(), g1) << "additive increase";
  EXPECT_NEAR(controller_allowance_ns(c_, in_), c_.gain() * 0.10 * in_.alone_p50_ns, 1);
  feed(p_.eval_every * 1000, 1000 * kUs);
  EXPECT_DOUBLE_EQ(c_.gain(), p_.max_gain) << "bounded";
}

// Slow start: until the first decrease the gain doubles, then it grows by steps again.
TEST_F(ControllerTest, SlowStartDoublesUntilTheFirstDecrease) {
  feed(static_cast<int>(p_.min_samples), 1000 * kUs);
  double g = c_.gain();
  ASSERT_DOUBLE_EQ(g, p_.step);
  feed(p_.eval_every, 1000 * kUs);
  EXPECT_DOUBLE_EQ(c_.gain(), 2 * g);
  feed(p_.eval_every, 1000 * kUs);
  EXPECT_DOUBLE_EQ(c_.gain(), 4 * g);
  feed(p_.eval_every, 1300 * kUs);  // over budget
  double after = c_.gain();
  EXPECT_DOUBLE_EQ(after, 4 * g * p_.backoff);
  feed(static_cast<int>(p_.min_samples), 1000 * kUs);
  EXPECT_DOUBLE_EQ(c_.gain(), after + p_.step) << "additive after the first decrease";
  HarvestController additive;
  p_.slow_start = false;
  for (int i = 0; i < static_cast<int>(p_.min_samples + 2 * p_.eval_every); i++)
    additive.on_request(1.0, in_, p_);
  EXPECT_NEAR(additive.gain(), 3 * p_.step, 1e-12) << "slow_start off: steps from the start";
}

TEST_F(ControllerTest, BacksOffOverBudgetAndRecovers) {
  feed(p_.eval_every * 12, 1000 * kUs);
  double high = c_.gain();
  ASSERT_GT(high, 0.5);
  feed(p_.eval_every, 1300 * kUs);  // the window's p99 goes over 1.10
  EXPECT_EQ(c_.state(), ControllerState::kBackoff);
  EXPECT_NEAR(c_.gain(), high * p_.backoff, 1e-9) << "multiplicative decrease";
  EXPECT_EQ(c_.decreases(), 1u);
  // The window restarts: the same bad evidence is not counted twice.
  feed(p_.eval_every, 1000 * kUs);
  EXPECT_NEAR(c_.gain(), high * p_.backoff, 1e-9) << "fewer than min_samples since the decrease";
  // Over budget again and again: down to 0.
  for (int i = 0; i < 20; i++) feed(p_.min_samples, 2000 * kUs);
  EXPECT_EQ(c_.gain(), 0);
  // Recovers once the HP is back inside.
  feed(p_.eval_every * 8, 1000 * kUs);
  EXPECT_GT(c_.gain(), 0);
  EXPECT_EQ(c_.state(), ControllerState::kProbe);
}

TEST_F(ControllerTest, HoldsNearTheBudget) {
  feed(p_.eval_every * 4, 1000 * kUs);
  double g = c_.gain();
  feed(p_.eval_every * 4, 1090 * kUs);  // 1.09x: inside, but above 1 + 0.7 x 0.10
  EXPECT_EQ(c_.state(), ControllerState::kHold);
  EXPECT_EQ(c_.gain(), g) << "hysteresis: no increase at the edge";
}

TEST_F(ControllerTest, RespectsP50BudgetToo) {
  in_.budget = HpBudget{1.05, 1.10};
  feed(p_.eval_every * 6, 1000 * kUs);
  ASSERT_GT(c_.gain(), 0);
  double g = c_.gain();
  feed(p_.eval_every * 6, 1070 * kUs);  // p99 1.07 inside 1.10, p50 1.07 over 1.05
  EXPECT_LT(c_.gain(), g);
  EXPECT_EQ(c_.state(), ControllerState::kBackoff);
}

TEST_F(ControllerTest, FailSafeWithoutMeasurements) {
  feed(p_.eval_every * 6, 1000 * kUs);
  ASSERT_GT(c_.gain(), 0);
  in_.alone_known = false;  // no alone latency: nothing to compare against
  feed(p_.eval_every, 1000 * kUs);
  EXPECT_EQ(c_.state(), ControllerState::kFailSafe);
  EXPECT_EQ(c_.gain(), 0);
  EXPECT_EQ(controller_allowance_ns(c_, in_), 0);
  in_.alone_known = true;
  in_.budget = HpBudget{0, 0};  // budget off: only what fits
  feed(p_.eval_every, 1000 * kUs);
  EXPECT_EQ(c_.gain(), 0);
  in_.budget = HpBudget{0, 1.10};
  feed(p_.eval_every * 2, 1000 * kUs);
  EXPECT_GT(c_.gain(), 0);
  c_.fail_safe();  // e.g. the request in progress cannot be measured in time
  EXPECT_EQ(controller_allowance_ns(c_, in_), 0);
}

// Risk admission on a policy state with one HP tenant whose gaps are all 1 ms long.
class RiskTest : public ::testing::Test {
 protected:
  RiskTest() : st_(PolicyConfig{}, FikitParams{}, gap_from_history) {
    st_.params.risk_residual = 0;  // the expectation over the gaps; RiskResidual* below: 1
    auto td = std::make_unique<TenantData>(1, "serve", kPriorityHigh, st_.params);
    for (int i = 0; i < 64; i++) {
      td->keys.touch(0x1).gaps_mut().add(1000 * kUs);
      td->all_gaps.add(1000 * kUs);
      td->alone.add(2000 * kUs);
      td->alone_slowdowns.add(static_cast<uint64_t>(HarvestController::kScale));
    }
    td->gap.open = true;
    td->gap.start_ns = 10'000 * kUs;
    td->gap.key = 0x1;
    hp_ = td.get();
    st_.tenants[1] = std::move(td);
    gaps_ = {GapRef{1, 0, 0x1, 0, 0}};
  }
  // LP work of `key` ending at end_ns, all of it on the GPU from now_ns.
  static LpWork work(uint64_t now_ns, uint64_t end_ns, uint64_t key) {
    return LpWork{.key = key, .end_ns = end_ns, .residual_ns = end_ns - now_ns};
  }
  void grow_gain() {
    ControllerInput in = controller_input(st_, *hp_);
    for (int i = 0; i < 20 * 16; i++) hp_->controller.on_request(1.0, in, st_.ctl);
  }
  FikitState st_;
  TenantData* hp_;
  std::vector<GapRef> gaps_;
};

TEST_F(RiskTest, AdmitsOnlyWhatTheAllowanceCovers) {
  double damage = 0;
  uint64_t now = hp_->gap.start_ns + 100 * kUs;
  uint64_t before_return = hp_->gap.start_ns + 900 * kUs;
  uint64_t past_return = hp_->gap.start_ns + 1500 * kUs;
  EXPECT_FALSE(risk_admits(st_, gaps_, now, work(now, before_return, 0x9), &damage))
      << "fail-safe: gain 0";
  grow_gain();
  ASSERT_GT(hp_->controller.gain(), 0);
  EXPECT_TRUE(risk_admits(st_, gaps_, now, work(now, before_return, 0x9), &damage));
  EXPECT_EQ(damage, 0) << "ends before any gap ends";
  // 500 us past every return: damage 0.5 x 500 us (MPS) against gain x 0.1 x 2 ms.
  EXPECT_TRUE(risk_admits(st_, gaps_, now, work(now, past_return, 0x9), &damage) ==
              (0.5 * 500 * kUs <= hp_->controller.gain() * 0.1 * 2000 * kUs));
  EXPECT_NEAR(damage, 0.5 * 500 * kUs, 0.05 * 500 * kUs);
  EXPECT_FALSE(
      risk_admits(st_, gaps_, now, work(now, hp_->gap.start_ns + 100'000 * kUs, 0x9), &damage))
      << "far past the return";
  hp_->gap.open = false;
  EXPECT_FALSE(risk_admits(st_, gaps_, now, work(now, before_return, 0x9), &damage))
      << "no open gap";
}

// A key whose grants were followed by requests that lost twice what the prior predicted is
// predicted at twice the prior's damage; another key keeps the prior.
TEST_F(RiskTest, LearnedOverlapCostScalesThePriorPerKey) {
  grow_gain();
  double damage = 0;
  uint64_t now = hp_->gap.start_ns + 100 * kUs;
  uint64_t past_return = hp_->gap.start_ns + 1500 * kUs;
  risk_admits(st_, gaps_, now, work(now, past_return, 0x9), &damage);
  const double prior = damage;
  ASSERT_GT(prior, 0);
  for (int i = 0; i < 200; i++) {
    risk_on_budget_grant(st_, gaps_, now, past_return, 0x9);
    hp_->overlap.on_request(2 * prior, /*overlapped=*/true, 2000 * kUs);
  }
  risk_admits(st_, gaps_, now, work(now, past_return, 0x9), &damage);
  EXPECT_NEAR(damage / prior, 2, 0.1);
  risk_admits(st_, gaps_, now, work(now, past_return, 0x7), &damage);
  EXPECT_DOUBLE_EQ(damage, prior);
  st_.params.learn_overlap_cost = 0;
  risk_admits(st_, gaps_, now, work(now, past_return, 0x9), &damage);
  EXPECT_DOUBLE_EQ(damage, prior) << "learning off: the fixed factor";
}

// With risk_residual the damage is the worst case, the HP back now: what is left of the LP work
// overlaps its request, whatever its gaps say; so the allowance bounds every request's loss.
TEST_F(RiskTest, ResidualDamageIsTheLpWorkLeftWereTheHpBackNow) {
  st_.params.risk_residual = 1;
  grow_gain();
  const double allowance = controller_allowance_ns(hp_->controller, controller_input(st_, *hp_));
  ASSERT_GT(allowance, 0);
  double damage = 0;
  uint64_t now = hp_->gap.start_ns + 100 * kUs;
  // Ends long before any gap of this HP ends: the expectation says 0, the worst case does not.
  LpWork short_work{.key = 0x9, .end_ns = now + 200 * kUs, .residual_ns = 150 * kUs};
  EXPECT_EQ(risk_admits(st_, gaps_, now, short_work, &damage), 0.5 * 150 * kUs <= allowance);
  EXPECT_DOUBLE_EQ(damage, 0.5 * 150 * kUs) << "MPS prior x residual, not x (end - now)";
  // As much LP work left as the allowance covers, and just more.
  auto residual_for = [&](double d) { return static_cast<uint64_t>(d / 0.5); };
  LpWork at{
      .key = 0x9, .end_ns = now + residual_for(allowance), .residual_ns = residual_for(allowance)};
  EXPECT_TRUE(risk_admits(st_, gaps_, now, at, &damage));
  at.residual_ns += 2 * kUs;
  at.end_ns += 2 * kUs;
  EXPECT_FALSE(risk_admits(st_, gaps_, now, at, &damage));
  // Learned costs and budget-grant charges are the expectation's; residual grants charge none.
  risk_on_budget_grant(st_, gaps_, now, now + 10 * kUs, 0x9);
  hp_->overlap.on_request(1000 * kUs, true, 2000 * kUs);
  EXPECT_EQ(hp_->overlap.learned_keys(), 0u);
  // On time-slicing the HP also pays the switch back.
  st_.cfg.switch_cost_ns = 200 * kUs;
  EXPECT_EQ(risk_admits(st_, gaps_, now, short_work, &damage),
            1.0 * 150 * kUs + 200 * kUs <= allowance);
  EXPECT_DOUBLE_EQ(damage, 1.0 * 150 * kUs + 200 * kUs);
  EXPECT_TRUE(
      risk_admits(st_, gaps_, now, LpWork{.key = 0x9, .end_ns = now, .residual_ns = 0}, &damage));
  EXPECT_EQ(damage, 0) << "nothing left on the GPU: nothing to switch from";
}

// The cap on LP work queued in a gap: allowance / overlap prior while the gap's key has short
// gaps (memoryless), none once its gaps show a floor, none on time-slicing or without a budget.
TEST_F(RiskTest, ResidualCapBoundsTheLpWorkQueuedWhileTheGapsAreMemoryless) {
  st_.params.risk_residual = 1;
  st_.budget_on = true;
  KeyStats& ks = hp_->keys.touch(0x1);
  ks.overrun_rate = 0.1;
  // Not judged yet (fail-safe): the budget's slack of the alone p50 (2 ms), over the MPS prior.
  EXPECT_NEAR(static_cast<double>(residual_cap_ns(st_, gaps_)), 0.1 * 2000 * kUs / 0.5,
              0.01 * 400 * kUs);
  grow_gain();
  double allowance = controller_allowance_ns(hp_->controller, controller_input(st_, *hp_));
  EXPECT_NEAR(static_cast<double>(residual_cap_ns(st_, gaps_)), allowance / 0.5, 1)
      << "judged: the controller's allowance";
  ks.overrun_rate = 0.005;
  EXPECT_EQ(residual_cap_ns(st_, gaps_), kNoEnd) << "gaps with a floor: filled to their end";
  ks.overrun_rate = 0.1;
  st_.cfg.switch_cost_ns = 200 * kUs;
  EXPECT_EQ(residual_cap_ns(st_, gaps_), kNoEnd) << "time-slicing: the prediction alone";
  st_.cfg.switch_cost_ns = 0;
  st_.params.risk_residual = 0;
  EXPECT_EQ(residual_cap_ns(st_, gaps_), kNoEnd) << "the expectation's mode";
  st_.params.risk_residual = 1;
  st_.budget_on = false;
  EXPECT_EQ(residual_cap_ns(st_, gaps_), kNoEnd) << "no budget";
}

TEST(OverlapCosts, StartsAtThePriorAndLearnsFromRequestsWithAndWithoutOverlap) {
  OverlapCosts oc;
  EXPECT_EQ(oc.multiplier(0x1), 1);
  // Requests without LP run 20 us over the kind's p50 (the spread): that is the baseline.
  for (int i = 0; i < 100; i++) oc.on_request(20 * kUs, false, 200 * kUs);
  EXPECT_NEAR(oc.baseline_ns(), 20 * kUs, 1 * kUs);
  // Key 1: predicted 50 us, lost 150 us over the baseline: 3x, once evidence outweighs the prior.
  for (int i = 0; i < 400; i++) {
    oc.on_grant(0x1, 50 * kUs);
    oc.on_request(170 * kUs, true, 200 * kUs);
  }
  EXPECT_NEAR(oc.multiplier(0x1), 3, 0.15);
  // Key 2: its grants ended before the HP came back (no overlap): it costs less than predicted.
  for (int i = 0; i < 400; i++) {
    oc.on_grant(0x2, 50 * kUs);
    oc.on_request(20 * kUs, false, 200 * kUs);
  }
  EXPECT_LT(oc.multiplier(0x2), 0.2);
  EXPECT_GE(oc.multiplier(0x2), OverlapCosts::kMinMultiplier);
  EXPECT_NEAR(oc.baseline_ns(), 20 * kUs, 1 * kUs)
      << "requests with pending grants are no baseline";
}

TEST(OverlapCosts, OneStuckRequestAndManyKeysAreBounded) {
  OverlapCosts oc;
  oc.on_grant(0x1, 10 * kUs);
  oc.on_request(1e12, true, 200 * kUs);  // clamped to 4 alone p50s
  EXPECT_LE(oc.multiplier(0x1), OverlapCosts::kMaxMultiplier);
  EXPECT_LT(oc.multiplier(0x1), 3) << "800 us of excess over the 500 us prior weight";
  for (uint64_t k = 2; k < 2 + 2 * OverlapCosts::kKeys; k++) {
    oc.on_grant(k, 10 * kUs);
    oc.on_request(0, true, 200 * kUs);
  }
  EXPECT_EQ(oc.learned_keys(), OverlapCosts::kKeys);
  EXPECT_LT(oc.multiplier(0xfffff), 1) << "an unlearned key beyond the table: the shared estimate";
  oc.on_grant(0x1, 10 * kUs);
  oc.drop_pending();
  oc.on_request(1e6, false, 200 * kUs);  // no pending grant left: a baseline sample
  EXPECT_GT(oc.baseline_ns(), 0);
}

TEST(AloneLatencyProfile, SavedAndLoadedAndOldProfilesStillLoad) {
  FikitParams p;
  TenantData td(1, "serve", kPriorityHigh, p);
  td.keys.touch(0x1).duration.add(100 * kUs);
  for (int i = 0; i < 20; i++) td.alone.add(1500 * kUs);
  std::string text = profile_to_json(td);
  EXPECT_NE(text.find("alone_latency"), std::string::npos);
  TenantData back(2, "serve", kPriorityHigh, p);
  std::string err;
  ASSERT_TRUE(profile_from_json(text, false, &back, &err)) << err;
  EXPECT_EQ(back.alone.total(), 20u);
  EXPECT_TRUE(back.alone_from_profile);
  // A profile saved before alone latencies existed.
  TenantData none(3, "serve", kPriorityHigh, p);
  none.keys.touch(0x1).duration.add(100 * kUs);
  std::string old = profile_to_json(none);
  ASSERT_EQ(old.find("alone_latency"), std::string::npos);
  TenantData loaded(4, "serve", kPriorityHigh, p);
  ASSERT_TRUE(profile_from_json(old, false, &loaded, &err)) << err;
  EXPECT_TRUE(loaded.alone.empty());
  EXPECT_FALSE(loaded.alone_from_profile);
}

// The whole policy on a fake scheduler: an HP tenant with 1 ms requests and 900 us gaps (or
// gap_us), a LP tenant whose 1 ms kernels (or lp_us) never fit them. Scripted HP latencies: 1 ms
// whatever LP does (no damage), or 1.5 ms whenever LP work is in flight at the request's start
// (damage).
class t_BudgetSim {
 public:
  static constexpr uint64_t kHpKey = 0x1111, kLpKey = 0x2222;
  explicit t_BudgetSim(PolicyConfig cfg = {}, const PolicyOps* ops = &kFikitPolicy,
                       uint64_t lp_us = 1000, uint64_t gap_us = 900)
      : s_(cfg, ops), gap_ns_(gap_us * kUs) {
    lp_ = s_.add("train", kPriorityLow);
    for (int i = 0; i < 5; i++) {  // its kernel measured at full speed, before HP runs
      s_.lp_request(lp_, kLpKey, t_);
      s_.dispatch(t_);
      s_.lp_complete(lp_, t_ + 10 * kUs, t_ + (10 + lp_us) * kUs);
      t_ += 2000 * kUs;
    }
    t_ += 200'000 * kUs;  // LP no longer active
    hp_ = s_.add("serve", kPriorityHigh);
  }
  nlohmann::json stats(bool hp) {
    return nlohmann::json::parse(fikit_tenant_stats_json(s_.state(), s_.t(hp ? hp_ : lp_).info.id));
  }
  void lp_waits() { s_.lp_request(lp_, kLpKey, t_); }
  // One HP request. Return true if a LP kernel was granted into the gap after it.
  bool cycle(bool damage) {
    uint64_t start = t_;
    s_.hp_launch(hp_, kHpKey, start);
    s_.dispatch(start);
    bool overlapped = lp_running_;
    if (lp_running_) {
      s_.lp_complete(lp_, lp_granted_at_ + 20 * kUs, start + 100 * kUs);
      lp_running_ = false;
      s_.lp_request(lp_, kLpKey, start + 100 * kUs);
    }
    uint64_t lat = damage && overlapped ? 1500 * kUs : 1000 * kUs;
    s_.hp_complete(hp_, start + lat);
    uint64_t now = start + lat + 10 * kUs;
    if (!s_.dispatch(now).empty()) {
      lp_running_ = true;
      lp_granted_at_ = now;
    }
    t_ = start + lat + gap_ns_;
    return lp_running_;
  }
  // `n` cycles; return the grants in them.
  int run(int n, bool damage) {
    int grants = 0;
    for (int i = 0; i < n; i++) grants += cycle(damage) ? 1 : 0;
    return grants;
  }
  t_FakeSched s_;
  uint64_t gap_ns_;
  uint32_t lp_, hp_;
  uint64_t t_ = 1'000'000'000;
  bool lp_running_ = false;
  uint64_t lp_granted_at_ = 0;
};

PolicyConfig budget_off() {
  PolicyConfig cfg;
  cfg.hp_budget = HpBudget{0, 0};
  return cfg;
}

// The expectation over the HP's gaps (risk_residual=0): a 1 ms LP kernel beside 900 us gaps
// costs the HP little on average, and is let in as long as the HP does not pay.
TEST(BudgetPolicy, LetsInWhatTheBudgetAffordsAndBacksOffWhenTheHpPays) {
  PolicyConfig cfg;
  cfg.opts = "risk_residual=0";
  t_BudgetSim sim(cfg);
  sim.run(40, false);  // alone: it learns the HP's latency and gaps
  nlohmann::json hs = sim.stats(true);
  EXPECT_EQ(hs["alone_latency"]["source"], "learned") << hs.dump();
  sim.lp_waits();
  sim.run(300, false);
  int free_grants = sim.run(100, false);
  EXPECT_GT(sim.stats(false)["grants_budget"].get<int>(), 0)
      << "LP kernels longer than every gap get in";
  EXPECT_GT(free_grants, 50) << "the gain grew while the HP did not pay";
  hs = sim.stats(true);
  EXPECT_GT(hs["controller"]["gain"].get<double>(), 0) << hs.dump();
  EXPECT_EQ(hs["controller"]["decreases"], 0) << hs.dump();
  // Every overlap now costs the HP 1.5x: the controller backs off until few overlaps remain.
  sim.run(300, true);
  int paid_grants = sim.run(100, true);
  hs = sim.stats(true);
  EXPECT_GT(hs["controller"]["decreases"].get<int>(), 0) << hs.dump();
  EXPECT_LT(paid_grants, free_grants / 2) << "fewer risky grants once they cost the HP";
  EXPECT_LE(hs["controller"]["window_slowdown_p50"].get<double>(), 1.05) << hs.dump();
  // Back to harmless overlaps: it recovers.
  sim.run(400, false);
  EXPECT_GT(sim.run(100, false), paid_grants) << sim.stats(true).dump();
}

// The worst case (risk_residual=1, the default): the 1 ms LP kernel could cost a 1 ms request
// half of it, five times its 10% budget, so it never gets in; a 150 us one, whose worst case
// (75 us) the allowance covers once the gain grows, does, into gaps too short for it, and the
// controller backs off when the HP pays.
TEST(BudgetPolicy, ResidualAdmitsOnlyLpWorkWhoseWorstCaseTheBudgetCovers) {
  t_BudgetSim long_lp;
  long_lp.run(40, false);
  long_lp.lp_waits();
  int long_grants = long_lp.run(400, false);
  EXPECT_EQ(long_lp.stats(false)["grants_budget"], 0) << long_lp.stats(true).dump();
  EXPECT_EQ(long_lp.stats(false)["grants_risky"].get<int>(), long_grants)
      << "only a starving kernel's rate-limited risky grants (risky_every)";
  EXPECT_GT(long_lp.stats(true)["controller"]["gain"].get<double>(), 1)
      << "not for want of gain: for the worst case";

  t_BudgetSim sim(PolicyConfig{}, &kFikitPolicy, /*lp_us=*/150, /*gap_us=*/100);
  sim.run(40, false);
  sim.lp_waits();
  sim.run(300, false);
  int free_grants = sim.run(100, false);
  EXPECT_GT(free_grants, 50) << sim.stats(true).dump();
  EXPECT_GT(sim.stats(false)["grants_budget"].get<int>(), 0);
  sim.run(300, true);
  int paid_grants = sim.run(100, true);
  EXPECT_GT(sim.stats(true)["controller"]["decreases"].get<int>(), 0);
  EXPECT_LT(paid_grants, free_grants / 2) << "fewer once they cost the HP";
}

TEST(BudgetPolicy, NoBudgetOnlyWhatFits) {
  t_BudgetSim sim(budget_off());
  sim.run(40, false);
  sim.lp_waits();
  sim.run(400, false);
  EXPECT_EQ(sim.stats(false)["grants_budget"], 0);
  EXPECT_EQ(sim.stats(true)["controller"]["state"], "fail-safe");
}

TEST(BudgetPolicy, TellsTheSchedulerWhenTheHpRequestIsPredictedToEnd) {
  t_BudgetSim sim(budget_off());
  sim.run(40, false);
  sim.lp_waits();
  sim.cycle(false);
  uint64_t start = sim.t_;
  sim.s_.hp_launch(sim.hp_, t_BudgetSim::kHpKey, start);
  sim.s_.dispatch(start + 10 * kUs);
  // The LP request waits for the HP request, predicted to take 1 ms (its 5% quantile).
  EXPECT_GE(sim.s_.quiet(), start + 900 * kUs);
  EXPECT_LE(sim.s_.quiet(), start + 1100 * kUs);
}

// The oracle is the bound the benchmarks compare with: it must not sleep through gap starts (with
// the sleep it gave the LP 4-15% of its time-sliced rate on the model scenarios, without 79-88%).
TEST(BudgetPolicy, TheOracleNeverTellsTheSchedulerToSleep) {
  t_BudgetSim sim(budget_off(), &kOraclePolicy);
  sim.run(40, false);
  sim.lp_waits();
  sim.cycle(false);
  uint64_t start = sim.t_;
  sim.s_.hp_launch(sim.hp_, t_BudgetSim::kHpKey, start);
  sim.s_.dispatch(start + 10 * kUs);
  EXPECT_EQ(sim.s_.quiet(), 0u);
}

}  // namespace
}  // namespace fikit::broker
