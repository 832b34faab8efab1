// The fikit policy end to end on synthetic event streams with a fake scheduler: measurement,
// gap prediction and filling, missed predictions, inactivity, statistics, parameters.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "fikit_fake_sched.h"
#include "policy/fikit/params.h"
#include "policy/fikit/policy_state.h"

namespace fikit::broker {
namespace {

namespace fp = fikit_policy;

constexpr uint64_t kUs = 1000, kMs = 1000000;
constexpr uint64_t kNow = 1000000000;
constexpr uint64_t kKeyHp = 0x1111, kKeyHp2 = 0x5555, kKeyLp = 0x2222;

fp::FikitState& t_state(t_FakeSched& s) { return *static_cast<fp::FikitState*>(s.state()); }
fp::TenantData& t_data(t_FakeSched& s, uint32_t i) {
  return *static_cast<fp::TenantData*>(s.t(i).info.policy_data);
}
nlohmann::json t_stats(t_FakeSched& s, uint32_t i) {
  return nlohmann::json::parse(fikit_tenant_stats_json(s.state(), s.t(i).info.id));
}

uint64_t t_teach_lp(t_FakeSched& s, uint32_t lp, uint64_t dur, uint64_t t) {
  for (int i = 0; i < 5; i++) {
    s.lp_request(lp, kKeyLp, t);
    EXPECT_EQ(s.dispatch(t).size(), 1u);
    s.lp_complete(lp, t, t + dur);
    t += dur + 10 * kUs;
  }
  return t;
}

TEST(FikitPolicy, MeasuresOnlyKernelsThatDidNotQueue) {
  t_FakeSched s;
  uint32_t hp = s.add("serve", kPriorityHigh);
  // Three launches queued at once, 100 us each: the second and third started at unknown times
  // (the completions before them are seen late on a busy host): only the first is a sample.
  s.hp_launch(hp, kKeyHp, kNow);
  s.hp_launch(hp, kKeyHp, kNow);
  s.hp_launch(hp, kKeyHp, kNow);
  s.hp_complete(hp, kNow + 100 * kUs);
  s.hp_complete(hp, kNow + 200 * kUs);
  s.hp_complete(hp, kNow + 300 * kUs);
  const fp::KeyStats* k = t_data(s, hp).keys.find(kKeyHp);
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->seen, 3u);
  EXPECT_EQ(k->duration_samples, 1u);
  EXPECT_LE(k->duration.quantile_high(1.0), 100 * kUs * 17 / 16);
  // Issued on an idle stream: a sample again.
  s.hp_launch(hp, kKeyHp, kNow + 400 * kUs);
  s.hp_complete(hp, kNow + 500 * kUs);
  EXPECT_EQ(k->duration_samples, 2u);
}

// On time-slicing a launch waits for its context: the switch from the context that ran last is
// not its duration, and a launch during which another tenant's work completed may have waited
// for that context's timeslice (no sample).
TEST(FikitPolicy, OnTimeSlicingDurationsLeaveOutOtherContextsAndTheSwitch) {
  PolicyConfig cfg;
  cfg.switch_cost_ns = 200 * kUs;
  t_FakeSched s(cfg);
  uint32_t a = s.add("a", kPriorityLow), b = s.add("b", kPriorityLow);
  auto run = [&s](uint32_t i, uint64_t key, uint64_t issue, uint64_t done) {
    s.lp_request(i, key, issue);
    s.dispatch(issue);
    s.lp_complete(i, issue, done);
  };
  run(a, kKeyLp, kNow, kNow + 40 * kUs);  // nothing ran before: 40 us
  const fp::KeyStats* k = t_data(s, a).keys.find(kKeyLp);
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->duration_samples, 1u);
  run(b, kKeyHp, kNow + 100 * kUs, kNow + 500 * kUs);
  run(a, kKeyLp, kNow + 1 * kMs, kNow + 1 * kMs + 240 * kUs);  // after b: a switch, then 40 us
  EXPECT_EQ(k->duration_samples, 2u);
  EXPECT_LE(k->duration.quantile_high(1.0), 40 * kUs * 17 / 16);
  s.lp_request(a, kKeyLp, kNow + 2 * kMs);  // issued; b's work completes before it ends
  s.dispatch(kNow + 2 * kMs);
  run(b, kKeyHp, kNow + 2 * kMs, kNow + 2 * kMs + 100 * kUs);
  s.lp_complete(a, kNow + 2 * kMs, kNow + 2 * kMs + 2340 * kUs);
  EXPECT_EQ(k->duration_samples, 2u) << "it waited for b's slice: no sample";
}

TEST(FikitPolicy, DrainOnlyCompletionsGiveNoDurations) {
  t_FakeSched s;
  uint32_t hp = s.add("serve", kPriorityHigh);
  s.hp_launch(hp, kKeyHp, kNow);
  s.hp_complete(hp, kNow + 100 * kUs, /*exact=*/false);
  EXPECT_EQ(t_data(s, hp).keys.find(kKeyHp)->duration_samples, 0u);
  EXPECT_TRUE(t_data(s, hp).gap.open);  // but the gap began
}

TEST(FikitPolicy, LearnsGapsPerKeyAndScoresPredictions) {
  t_FakeSched s;
  uint32_t hp = s.add("serve", kPriorityHigh);
  uint64_t t = kNow;
  for (int i = 0; i < 20; i++) {  // key 1 is followed by 100 us gaps, key 2 by 1 ms gaps
    s.hp_launch(hp, kKeyHp, t);
    s.hp_complete(hp, t + 50 * kUs);
    t += 150 * kUs;
    s.hp_launch(hp, kKeyHp2, t);
    s.hp_complete(hp, t + 50 * kUs);
    t += 1050 * kUs;
  }
  const fp::TenantData& td = t_data(s, hp);
  EXPECT_LE(td.keys.find(kKeyHp)->gaps->quantile_low(0.1), 100 * kUs);
  EXPECT_GE(td.keys.find(kKeyHp)->gaps->quantile_low(0.1), 100 * kUs * 15 / 16);
  EXPECT_GE(td.keys.find(kKeyHp2)->gaps->quantile_low(0.1), 1 * kMs * 15 / 16);
  auto j = t_stats(s, hp);
  EXPECT_EQ(j["gaps"], 39);
  EXPECT_EQ(j["gap_unpredicted"], 6);  // the first min_gap_samples gaps of each key
  EXPECT_EQ(j["gap_hits"], 33);
  EXPECT_EQ(j["gap_misses"], 0);
  EXPECT_EQ(j["keys"], 2);
}

// HP with 200 us gaps after its kernel, LP with 50 us kernels, one fill per gap: the LP work
// granted into the gap either finishes before HP returns (hit) or not (fill miss).
PolicyConfig t_no_slack() {
  PolicyConfig cfg;
  // Every LP completion after HP's return is a miss, and every miss backs off.
  cfg.opts = "miss_slack_us=0,miss_tolerance=0";
  return cfg;
}

struct t_MissSetup {
  explicit t_MissSetup(PolicyConfig cfg = t_no_slack()) : s(cfg) { init(); }
  t_FakeSched s;
  uint32_t hp = s.add("serve", kPriorityHigh);
  uint32_t lp = s.add("train", kPriorityLow);
  uint64_t t = 0;
  void init() {
    t = t_teach_lp(s, lp, 50 * kUs, kNow);
    // Enough 200 us gaps that the short gaps of the misses below stay under the 10% quantile.
    for (int i = 0; i < 20; i++) {
      s.hp_launch(hp, kKeyHp, t);
      s.hp_complete(hp, t + 100 * kUs);
      t += 300 * kUs;
    }
  }
  // One gap: LP granted at its start, HP back after `hp_back`, LP done after `lp_done`. Return
  // the number of LP grants.
  size_t gap(uint64_t hp_back, uint64_t lp_done) {
    uint64_t idle = t - 200 * kUs;
    s.lp_request(lp, kKeyLp, idle + 1 * kUs);
    size_t n = s.dispatch(idle + 1 * kUs).size();
    if (hp_back < lp_done) s.hp_launch(hp, kKeyHp, idle + hp_back);
    if (n) s.lp_complete(lp, idle + 2 * kUs, idle + lp_done);
    if (hp_back >= lp_done) s.hp_launch(hp, kKeyHp, idle + hp_back);
    if (!n) s.dispatch(idle + hp_back);  // (the request stays waiting)
    s.hp_complete(hp, idle + hp_back + 100 * kUs);
    t = idle + hp_back + 300 * kUs;
    return n;
  }
};

TEST(FikitPolicy, FillThatEndsBeforeHpReturnsIsNoMiss) {
  t_MissSetup x;
  EXPECT_EQ(x.gap(200 * kUs, 60 * kUs), 1u);
  EXPECT_EQ(t_stats(x.s, x.hp)["fill_misses"], 0);
  EXPECT_EQ(t_stats(x.s, x.hp)["gaps_filled"], 1);
  EXPECT_EQ(t_stats(x.s, x.lp)["grants_fill"], 1);
  EXPECT_EQ(t_data(x.s, x.hp).keys.find(kKeyHp)->factor, 1.0);
}

TEST(FikitPolicy, MissedPredictionsMakeTheKeyConservative) {
  t_MissSetup x;
  // HP comes back after 40 us while the LP kernel runs until 60 us: a miss.
  EXPECT_EQ(x.gap(40 * kUs, 60 * kUs), 1u);
  EXPECT_EQ(t_stats(x.s, x.hp)["fill_misses"], 1);
  EXPECT_EQ(t_data(x.s, x.hp).keys.find(kKeyHp)->factor, 0.5);
  // Now the key is judged by half the quantile (5%), which reaches the 40 us gap that collided,
  // and by half that: nothing fits any more.
  EXPECT_EQ(x.gap(200 * kUs, 60 * kUs), 0u);
  EXPECT_EQ(t_stats(x.s, x.hp)["fill_misses"], 1);
}

// On MPS a key's fill misses at about its gap quantile's rate are tolerated; on time-slicing,
// where each costs the HP a switch and a time slice of LP work, every one backs off.
// One fill miss under cfg (HP back after 40 us, the LP kernel runs until 60 us): the HP key's
// factor after it.
double t_factor_after_one_miss(const PolicyConfig& cfg) {
  t_MissSetup x(cfg);
  EXPECT_EQ(x.gap(40 * kUs, 60 * kUs), 1u);
  EXPECT_EQ(t_stats(x.s, x.hp)["fill_misses"], 1);
  return t_data(x.s, x.hp).keys.find(kKeyHp)->factor;
}

TEST(FikitPolicy, FillMissesAreToleratedOnMpsOnly) {
  PolicyConfig mps;
  mps.opts = "miss_slack_us=0";
  EXPECT_EQ(t_factor_after_one_miss(mps), 1.0);
  PolicyConfig ts = mps;
  ts.switch_cost_ns = 1 * kUs;
  EXPECT_EQ(t_factor_after_one_miss(ts), 0.5);
}

// The gap lasted as long as predicted (~200 us) but the LP kernel ran far longer than its 50 us:
// the kernel's fault (an overrun of the LP tenant), not the gap key's.
TEST(FikitPolicy, FillThatOutlastsAGapThatLastedAsPredictedIsAnOverrun) {
  t_MissSetup x;
  EXPECT_EQ(x.gap(250 * kUs, 400 * kUs), 1u);
  EXPECT_EQ(t_stats(x.s, x.hp)["fill_misses"], 0);
  EXPECT_EQ(t_stats(x.s, x.lp)["fill_overruns"], 1);
  EXPECT_EQ(t_data(x.s, x.hp).keys.find(kKeyHp)->factor, 1.0);
  EXPECT_EQ(x.gap(40 * kUs, 60 * kUs), 1u);  // back before the predicted end: a fill miss
  EXPECT_EQ(t_stats(x.s, x.hp)["fill_misses"], 1);
  EXPECT_EQ(t_stats(x.s, x.lp)["fill_overruns"], 1);
}

// A LP completion is seen up to the broker's polling lag late: seen within miss_slack (50 us)
// after HP came back, it is no miss. (The cap on LP work queued, risk_residual, is off: the early
// return would cap this 100 us HP's gaps at 20 us of LP work, and the second fill would not go.)
TEST(FikitPolicy, CompletionSeenWithinTheSlackIsNoMiss) {
  PolicyConfig cfg;
  cfg.opts = "risk_residual=0";
  t_MissSetup x{cfg};
  EXPECT_EQ(x.gap(40 * kUs, 60 * kUs), 1u);
  EXPECT_EQ(t_stats(x.s, x.hp)["fill_misses"], 0);
  EXPECT_EQ(x.gap(40 * kUs, 95 * kUs), 1u);
  EXPECT_EQ(t_stats(x.s, x.hp)["fill_misses"], 1);
}

TEST(FikitPolicy, HpReturnBeforeLpCompletionIsJudgedByTimestamps) {
  t_MissSetup x;
  // The scheduler sees HP's submission first, but the LP kernel had finished before it.
  uint64_t idle = x.t - 200 * kUs;
  x.s.lp_request(x.lp, kKeyLp, idle + 1 * kUs);
  ASSERT_EQ(x.s.dispatch(idle + 1 * kUs).size(), 1u);
  x.s.hp_launch(x.hp, kKeyHp, idle + 150 * kUs);
  x.s.lp_complete(x.lp, idle + 2 * kUs, idle + 60 * kUs);
  EXPECT_EQ(t_stats(x.s, x.hp)["fill_misses"], 0);
}

TEST(FikitPolicy, InactiveHpLetsLpRunAtFullSpeed) {
  t_MissSetup x;
  uint64_t idle = x.t - 200 * kUs;
  x.s.lp_request(x.lp, kKeyLp, idle + 1 * kUs);
  x.s.lp_request(x.lp, 0x9999, idle + 1 * kUs);  // unknown kernel
  ASSERT_EQ(x.s.dispatch(idle + 1 * kUs).size(), 1u);
  x.s.lp_complete(x.lp, idle + 2 * kUs, idle + 60 * kUs);
  EXPECT_TRUE(x.s.dispatch(idle + 61 * kUs).empty());  // unknown: gap too short
  uint64_t wake = x.s.wake();
  EXPECT_GT(wake, idle + 61 * kUs);
  EXPECT_LE(wake, idle + 100 * kMs + 1 * kMs);
  EXPECT_EQ(x.s.dispatch(idle + 101 * kMs).size(), 1u);  // HP idle 100 ms: inactive
}

TEST(FikitPolicy, BimodalGapsAreFilledOnceTheShortModeHasPassed) {
  t_FakeSched s;
  uint32_t hp = s.add("serve", kPriorityHigh);
  uint32_t lp = s.add("train", kPriorityLow);
  uint64_t t = t_teach_lp(s, lp, 200 * kUs, kNow);
  for (int i = 0; i < 21; i++) {  // after the same key: 30 us or 3 ms, the last one short
    s.hp_launch(hp, kKeyHp, t);
    s.hp_complete(hp, t + 50 * kUs);
    t += 50 * kUs + (i % 2 ? 3 * kMs : 30 * kUs);
  }
  uint64_t idle = t - 30 * kUs;  // the gap now open: is it a short or a long one?
  s.lp_request(lp, kKeyLp, idle + 1 * kUs);
  EXPECT_TRUE(s.dispatch(idle + 1 * kUs).empty());  // ~30 us predicted
  uint64_t wake = s.wake();
  ASSERT_GT(wake, idle + 30 * kUs);
  ASSERT_LT(wake, idle + 40 * kUs);  // it asks again once the short mode has passed
  EXPECT_EQ(s.dispatch(wake).size(), 1u);
}

TEST(FikitPolicy, ForgetsGrantsTheSchedulerNoLongerHas) {
  t_MissSetup x;
  uint64_t idle = x.t - 200 * kUs;
  x.s.lp_request(x.lp, kKeyLp, idle + 1 * kUs);
  ASSERT_EQ(x.s.dispatch(idle + 1 * kUs).size(), 1u);
  EXPECT_EQ(t_state(x.s).grants.size(), 1u);
  x.s.revoke(x.lp);  // taken back by the scheduler, never completed
  x.s.dispatch(idle + 2 * kUs);
  EXPECT_TRUE(t_state(x.s).grants.empty());
}

// The scheduler names an LP launch by its request's position: a completion ends exactly the
// grant of that position, whatever the order, and one of a position never granted ends none.
TEST(FikitPolicy, LpCompletionEndsTheGrantOfItsPosition) {
  t_MissSetup x;
  uint64_t idle = x.t - 200 * kUs;
  x.s.lp_request(x.lp, kKeyLp, idle + 1 * kUs);
  x.s.lp_request(x.lp, kKeyLp, idle + 1 * kUs);
  uint32_t first = x.s.request(x.lp, 0)->position;
  uint32_t second = x.s.request(x.lp, 1)->position;
  ASSERT_EQ(x.s.dispatch(idle + 1 * kUs).size(), 2u);
  ASSERT_EQ(t_state(x.s).grants.size(), 2u);
  uint64_t delays = t_data(x.s, x.lp).delays.total();
  kFikitPolicy.on_complete(x.s.state(), x.s.t(x.lp).info,
                           Completion{12345, kKeyLp, idle + 3 * kUs, idle + 53 * kUs, true});
  EXPECT_EQ(t_state(x.s).grants.size(), 2u);  // no grant of that position
  EXPECT_EQ(t_data(x.s, x.lp).delays.total(), delays);
  kFikitPolicy.on_complete(x.s.state(), x.s.t(x.lp).info,
                           Completion{second, kKeyLp, idle + 3 * kUs, idle + 53 * kUs, true});
  ASSERT_EQ(t_state(x.s).grants.size(), 1u);
  EXPECT_EQ(t_state(x.s).grants[0].position, first);
  EXPECT_EQ(t_data(x.s, x.lp).delays.total(), delays + 1);
}

// A revoked grant (taken back, or aborted by the client) ends only itself.
TEST(FikitPolicy, RevokeEndsOnlyTheGrantOfItsPosition) {
  t_MissSetup x;
  uint64_t idle = x.t - 200 * kUs;
  x.s.lp_request(x.lp, kKeyLp, idle + 1 * kUs);
  x.s.lp_request(x.lp, kKeyLp, idle + 1 * kUs);
  ASSERT_EQ(x.s.dispatch(idle + 1 * kUs).size(), 2u);
  uint32_t revoked = x.s.revoke(x.lp);
  ASSERT_EQ(t_state(x.s).grants.size(), 1u);
  EXPECT_NE(t_state(x.s).grants[0].position, revoked);
  x.s.lp_complete(x.lp, idle + 3 * kUs, idle + 53 * kUs);
  EXPECT_TRUE(t_state(x.s).grants.empty());
}

TEST(FikitPolicy, StatsTextAndJson) {
  t_MissSetup x;
  x.gap(200 * kUs, 60 * kUs);
  std::string text = fikit_tenant_stats_text(x.s.state(), x.s.t(x.hp).info.id);
  EXPECT_NE(text.find("kernels 21"), std::string::npos) << text;
  EXPECT_NE(text.find("keys 1/1024"), std::string::npos) << text;
  EXPECT_NE(text.find("LP into gaps 1"), std::string::npos) << text;
  for (const std::string& line : {text.substr(0, text.find('\n'))}) EXPECT_LE(line.size(), 80u);
  auto j = t_stats(x.s, x.hp);
  EXPECT_EQ(j["tenant"], "serve");
  EXPECT_EQ(j["lp_into_gaps"], 1);
  EXPECT_GT(j["gap_predicted_mean_ns"].get<uint64_t>(), 0u);
  EXPECT_EQ(fikit_tenant_stats_text(x.s.state(), 999), "");
  EXPECT_EQ(fikit_tenant_stats_json(x.s.state(), 999), "{}");
}

TEST(FikitPolicy, ParamsParse) {
  fp::FikitParams p;
  std::string err;
  ASSERT_TRUE(fp::params_parse("gap_quantile=0.05,measure_gap_us=500,max_keys=64", &p, &err))
      << err;
  EXPECT_EQ(p.gap_quantile, 0.05);
  EXPECT_EQ(p.measure_gap_ns, 500 * kUs);
  EXPECT_EQ(p.max_keys, 64u);
  EXPECT_FALSE(fp::params_parse("gap_quantile=2", &p, &err));
  EXPECT_NE(err.find("gap_quantile"), std::string::npos);
  EXPECT_FALSE(fp::params_parse("measure_gap=5", &p, &err));  // needs a unit
  EXPECT_FALSE(fp::params_parse("nonsense=1", &p, &err));
  EXPECT_FALSE(fp::params_parse("max_keys=x", &p, &err));
  EXPECT_EQ(p.gap_quantile, 0.05);  // unchanged by failures
}

}  // namespace
}  // namespace fikit::broker
