// The fill decision, alone (fits / does not fit / switch cost / unknown kernels / several per gap)
// and inside the policy with a fake scheduler (order, in-flight bound, levels).
#include <gtest/gtest.h>

#include "fikit_fake_sched.h"
#include "policy/fikit/fill_decision.h"
#include "policy/fikit/policy_state.h"

namespace fikit::broker {
namespace {

using fikit_policy::decide_fill;
using fikit_policy::FillVerdict;
using fikit_policy::FillWindow;
using fikit_policy::kNoEnd;
using fikit_policy::LpCost;

constexpr uint64_t kUs = 1000;
constexpr uint64_t kNow = 1000000000;

FillWindow t_window(uint64_t gap_left, uint64_t switch_cost = 0, uint64_t committed = 0) {
  return FillWindow{kNow, kNow + gap_left, committed, switch_cost, 20 * kUs, 1000 * kUs, false};
}

TEST(FikitFillDecision, FitsOrNot) {
  auto d = decide_fill(t_window(100 * kUs), LpCost{true, 50 * kUs});
  EXPECT_EQ(d.verdict, FillVerdict::kGrant);
  EXPECT_EQ(d.end_ns, kNow + 50 * kUs);
  EXPECT_EQ(decide_fill(t_window(100 * kUs), LpCost{true, 80 * kUs}).verdict, FillVerdict::kGrant);
  EXPECT_EQ(decide_fill(t_window(100 * kUs), LpCost{true, 81 * kUs}).verdict,
            FillVerdict::kNoRoom);  // 81 + 20 margin > 100
  EXPECT_EQ(decide_fill(t_window(0), LpCost{true, 1}).verdict, FillVerdict::kNoRoom);
}

TEST(FikitFillDecision, SwitchCostMustFitToo) {
  // The probe's case: 100 us gaps, 50 us LP kernels. Free on MPS, not with a 210 us switch.
  EXPECT_EQ(decide_fill(t_window(100 * kUs, 0), LpCost{true, 50 * kUs}).verdict,
            FillVerdict::kGrant);
  EXPECT_EQ(decide_fill(t_window(100 * kUs, 210 * kUs), LpCost{true, 50 * kUs}).verdict,
            FillVerdict::kNoRoom);
  EXPECT_EQ(decide_fill(t_window(300 * kUs, 210 * kUs), LpCost{true, 50 * kUs}).verdict,
            FillVerdict::kGrant);
}

TEST(FikitFillDecision, SeveralPerGapAfterWhatIsCommitted) {
  FillWindow w = t_window(100 * kUs);
  auto a = decide_fill(w, LpCost{true, 30 * kUs});
  ASSERT_EQ(a.verdict, FillVerdict::kGrant);
  w.committed_end_ns = a.end_ns;
  auto b = decide_fill(w, LpCost{true, 30 * kUs});
  ASSERT_EQ(b.verdict, FillVerdict::kGrant);
  EXPECT_EQ(b.end_ns, kNow + 60 * kUs);
  w.committed_end_ns = b.end_ns;
  EXPECT_EQ(decide_fill(w, LpCost{true, 30 * kUs}).verdict, FillVerdict::kNoRoom);
}

// The client launches while earlier LP work runs: a request's grant-to-launch delay overlaps it,
// only its duration queues behind it.
TEST(FikitFillDecision, DelayOverlapsTheLpWorkAlreadyGranted) {
  FillWindow w = t_window(300 * kUs);
  w.committed_end_ns = kNow + 100 * kUs;
  auto d = decide_fill(w, LpCost{true, 80 * kUs, 60 * kUs});
  ASSERT_EQ(d.verdict, FillVerdict::kGrant);
  EXPECT_EQ(d.end_ns, kNow + 120 * kUs);  // after the committed work, its 20 us of run time
  EXPECT_EQ(decide_fill(w, LpCost{true, 80 * kUs}).end_ns, kNow + 180 * kUs);  // no delay part
  w.committed_end_ns = kNow + 10 * kUs;  // the delay outlasts the committed work
  EXPECT_EQ(decide_fill(w, LpCost{true, 80 * kUs, 60 * kUs}).end_ns, kNow + 80 * kUs);
}

TEST(FikitFillDecision, UnknownKernelOnlyAloneInLongGaps) {
  EXPECT_EQ(decide_fill(t_window(500 * kUs), LpCost{}).verdict, FillVerdict::kNeedLongGap);
  auto d = decide_fill(t_window(5000 * kUs), LpCost{});
  EXPECT_EQ(d.verdict, FillVerdict::kGrantToMeasure);
  EXPECT_EQ(d.end_ns, kNow + 5000 * kUs);  // it takes the rest of the gap
  EXPECT_EQ(decide_fill(t_window(5000 * kUs, 0, kNow + 10 * kUs), LpCost{}).verdict,
            FillVerdict::kNeedLongGap);  // other LP work is in the gap
}

TEST(FikitFillDecision, UnknownKernelThatWaitedTooLongIsMeasuredInAShortGap) {
  FillWindow w = t_window(100 * kUs);
  w.risky_ok = true;
  auto d = decide_fill(w, LpCost{});
  EXPECT_EQ(d.verdict, FillVerdict::kGrantRisky);
  EXPECT_EQ(d.end_ns, kNow + 100 * kUs);
  w = t_window(20 * kUs);  // not even the margin left
  w.risky_ok = true;
  EXPECT_EQ(decide_fill(w, LpCost{}).verdict, FillVerdict::kNeedLongGap);
  w = t_window(100 * kUs, 0, kNow + 10 * kUs);  // not alone
  w.risky_ok = true;
  EXPECT_EQ(decide_fill(w, LpCost{}).verdict, FillVerdict::kNeedLongGap);
}

// A known kernel longer than what any gap leaves would wait for ever (memoryless gaps never leave
// more): once it has waited long enough it goes alone into a gap with room for the margin.
TEST(FikitFillDecision, KernelTooLongForTheGapThatWaitedTooLongGoesAlone) {
  FillWindow w = t_window(100 * kUs);
  EXPECT_EQ(decide_fill(w, LpCost{true, 500 * kUs}).verdict, FillVerdict::kNoRoom);
  w.risky_ok = true;
  auto d = decide_fill(w, LpCost{true, 500 * kUs});
  EXPECT_EQ(d.verdict, FillVerdict::kGrantRisky);
  EXPECT_EQ(d.end_ns, kNow + 500 * kUs);        // its own predicted end, past the gap's
  w = t_window(100 * kUs, 0, kNow + 10 * kUs);  // not alone
  w.risky_ok = true;
  EXPECT_EQ(decide_fill(w, LpCost{true, 500 * kUs}).verdict, FillVerdict::kNoRoom);
  w = t_window(20 * kUs);  // not even the margin left
  w.risky_ok = true;
  EXPECT_EQ(decide_fill(w, LpCost{true, 500 * kUs}).verdict, FillVerdict::kNoRoom);
}

TEST(FikitFillDecision, NoGapEndMeansFullSpeed) {
  FillWindow w = t_window(0);
  w.gap_end_ns = kNoEnd;
  EXPECT_EQ(decide_fill(w, LpCost{}).verdict, FillVerdict::kGrant);
  EXPECT_EQ(decide_fill(w, LpCost{true, 1000 * kUs}).verdict, FillVerdict::kGrant);
}

TEST(FikitFillDecision, CostIsDelayPlusHighQuantileDuration) {
  fikit_policy::FikitParams p;
  fikit_policy::KernelTable keys(8, 2048);
  fikit_policy::LogHistogram delays;
  EXPECT_FALSE(fikit_policy::lp_cost(nullptr, delays, p).known);
  fikit_policy::KeyStats& k = keys.touch(9);
  EXPECT_FALSE(fikit_policy::lp_cost(&k, delays, p).known);
  for (int i = 0; i < 100; i++) k.duration.add(50 * kUs);
  LpCost c = fikit_policy::lp_cost(&k, delays, p);
  ASSERT_TRUE(c.known);
  EXPECT_GE(c.ns, 50 * kUs + p.default_delay_ns);
  EXPECT_LE(c.ns, 53200 + p.default_delay_ns);
  for (int i = 0; i < 100; i++) delays.add(2 * kUs);
  EXPECT_LE(fikit_policy::lp_cost(&k, delays, p).ns, 53200 + 2200);
}

// --- Inside the policy ---

constexpr uint64_t kKeyHp = 0x1111, kKeyLp = 0x2222, kKeyLong = 0x3333, kKeyNew = 0x4444;

// Teach the policy LP kernel durations while nothing else is active (full speed).
uint64_t t_teach_lp(t_FakeSched& s, uint32_t lp, uint64_t key, uint64_t dur, uint64_t t) {
  for (int i = 0; i < 5; i++) {
    s.lp_request(lp, key, t);
    EXPECT_EQ(s.dispatch(t).size(), 1u);
    s.lp_complete(lp, t, t + dur);
    t += dur + 10 * kUs;
  }
  return t;
}

// n HP cycles: kernel `key` for `dur`, then idle for `gap`. Return the next launch time; the
// tenant is idle since that time minus `gap`.
uint64_t t_hp_cycles(t_FakeSched& s, uint32_t hp, uint64_t t, int n, uint64_t dur, uint64_t gap) {
  for (int i = 0; i < n; i++) {
    s.hp_launch(hp, kKeyHp, t);
    s.hp_complete(hp, t + dur);
    t += dur + gap;
  }
  return t;
}

struct t_Setup {
  explicit t_Setup(PolicyConfig cfg = {}) : s(cfg) {
    hp = s.add("serve", kPriorityHigh);
    lp = s.add("train", kPriorityLow);
  }
  t_FakeSched s;
  uint32_t hp, lp;
};

TEST(FikitFill, LpFillsAPredictedGapAndWaitsWhileHpRuns) {
  t_Setup x;
  uint64_t t = t_teach_lp(x.s, x.lp, kKeyLp, 50 * kUs, kNow);
  t = t_hp_cycles(x.s, x.hp, t, 5, 100 * kUs, 400 * kUs);
  uint64_t idle = t - 400 * kUs;
  x.s.hp_launch(x.hp, kKeyHp, t);
  x.s.lp_request(x.lp, kKeyLp, t + 1 * kUs);
  EXPECT_TRUE(x.s.dispatch(t + 1 * kUs).empty());  // HP busy: nothing
  x.s.hp_complete(x.hp, t + 100 * kUs);
  idle = t + 100 * kUs;
  EXPECT_EQ(x.s.dispatch(idle + 1 * kUs).size(), 1u);  // HP idle, 400 us predicted: fits
}

TEST(FikitFill, LongKernelDoesNotFit) {
  t_Setup x;
  uint64_t t = t_teach_lp(x.s, x.lp, kKeyLong, 300 * kUs, kNow);
  t = t_hp_cycles(x.s, x.hp, t, 5, 100 * kUs, 200 * kUs);
  uint64_t idle = t - 200 * kUs;
  x.s.lp_request(x.lp, kKeyLong, idle + 1 * kUs);
  EXPECT_TRUE(x.s.dispatch(idle + 1 * kUs).empty()) << "300 us kernel in a 200 us gap";
  EXPECT_NE(x.s.wake(), 0u);  // asks to look again (at the latest when HP goes inactive)
}

// The long kernel waits starve_wait, then goes alone into a gap (one risky grant per
// risky_every); meanwhile its waiting time is charged to "no room".
TEST(FikitFill, LongKernelThatWaitedTooLongGoesAloneIntoAGap) {
  t_Setup x;
  uint64_t t = t_teach_lp(x.s, x.lp, kKeyLong, 300 * kUs, kNow);
  t = t_hp_cycles(x.s, x.hp, t, 5, 100 * kUs, 200 * kUs);
  uint64_t asked = t - 200 * kUs + 1 * kUs;
  x.s.lp_request(x.lp, kKeyLong, asked);
  uint64_t granted_at = 0;
  // HP keeps serving: 100 us kernels, 200 us gaps, for 30 ms.
  for (int i = 0; i < 100 && !granted_at; i++) {
    if (!x.s.dispatch(t - 199 * kUs).empty()) granted_at = t - 199 * kUs;
    t = t_hp_cycles(x.s, x.hp, t, 1, 100 * kUs, 200 * kUs);
  }
  ASSERT_NE(granted_at, 0u) << "a kernel longer than every gap starved";
  EXPECT_GE(granted_at, asked + 10000 * kUs);  // starve_wait (10 ms)
  auto* td = static_cast<fikit_policy::TenantData*>(x.s.t(x.lp).info.policy_data);
  EXPECT_EQ(td->counters.grants_risky, 1u);
  EXPECT_EQ(td->counters.grants_measure, 0u);  // it was known: nothing to measure
  EXPECT_GE(td->counters.held_ns[static_cast<size_t>(fikit_policy::HeldReason::kNoRoom)],
            1000 * kUs);
  EXPECT_GE(td->counters.wait_max_ns, 10000 * kUs);
  // It outlasts the gap, as expected: neither a fill miss of the HP key nor an overrun.
  x.s.hp_launch(x.hp, kKeyHp, granted_at + 199 * kUs);
  x.s.lp_complete(x.lp, granted_at + 1 * kUs, granted_at + 301 * kUs);
  auto* hd = static_cast<fikit_policy::TenantData*>(x.s.t(x.hp).info.policy_data);
  EXPECT_EQ(hd->counters.fill_misses, 0u);
  EXPECT_EQ(td->counters.fill_overruns, 0u);
  EXPECT_EQ(hd->keys.find(kKeyHp)->factor, 1.0);
}

TEST(FikitFill, SwitchCostCounts) {
  // 50 us (+ delay) + 20 us margin + switch cost, in a gap predicted at ~196 us.
  for (uint64_t sw : {uint64_t{0}, 100 * kUs, 130 * kUs}) {
    PolicyConfig cfg;
    cfg.switch_cost_ns = sw;
    cfg.opts = "switch_gap_factor=0";  // the fit rule alone (see GapsShorterThanSwitchFactor...)
    t_Setup x(cfg);
    uint64_t t = t_teach_lp(x.s, x.lp, kKeyLp, 50 * kUs, kNow);
    t = t_hp_cycles(x.s, x.hp, t, 5, 100 * kUs, 200 * kUs);
    uint64_t idle = t - 200 * kUs;
    x.s.lp_request(x.lp, kKeyLp, idle + 1 * kUs);
    EXPECT_EQ(x.s.dispatch(idle + 1 * kUs).size(), sw <= 100 * kUs ? 1u : 0u) << sw;
  }
}

// Time-slicing: the level above pays the switch back whenever it returns, so a gap is filled
// only if it is at least switch_gap_factor (8) switch costs long, however well the LP kernel fits.
TEST(FikitFill, GapsShorterThanSwitchFactorAreNotFilled) {
  for (uint64_t gap : {uint64_t{700}, uint64_t{900}}) {
    PolicyConfig cfg;
    cfg.switch_cost_ns = 100 * kUs;  // needs a gap of 800 us
    t_Setup x(cfg);
    uint64_t t = t_teach_lp(x.s, x.lp, kKeyLp, 50 * kUs, kNow);
    t = t_hp_cycles(x.s, x.hp, t, 5, 100 * kUs, gap * kUs);
    uint64_t idle = t - gap * kUs;
    x.s.lp_request(x.lp, kKeyLp, idle + 1 * kUs);
    EXPECT_EQ(x.s.dispatch(idle + 1 * kUs).size(), gap >= 800 ? 1u : 0u) << gap;
  }
}

TEST(FikitFill, SeveralPerGapWhileTheyFit) {
  PolicyConfig cfg;
  cfg.max_lp_in_flight = 16;
  t_Setup x(cfg);
  uint64_t t = t_teach_lp(x.s, x.lp, kKeyLp, 50 * kUs, kNow);
  t = t_hp_cycles(x.s, x.hp, t, 5, 100 * kUs, 400 * kUs);
  uint64_t idle = t - 400 * kUs;
  for (int i = 0; i < 10; i++) x.s.lp_request(x.lp, kKeyLp, idle + 1 * kUs);
  // Predicted gap ~393 us, 20 us margin; the first grant ends after the default 20 us delay and
  // ~51 us of run, each next one ~51 us later (its delay overlaps the one before): 6 fit.
  EXPECT_EQ(x.s.dispatch(idle + 1 * kUs).size(), 6u);
}

TEST(FikitFill, InFlightBoundCapsGrants) {
  PolicyConfig cfg;
  cfg.max_lp_in_flight = 2;
  t_Setup x(cfg);
  uint64_t t = t_teach_lp(x.s, x.lp, kKeyLp, 50 * kUs, kNow);
  t = t_hp_cycles(x.s, x.hp, t, 5, 100 * kUs, 400 * kUs);
  uint64_t idle = t - 400 * kUs;
  for (int i = 0; i < 10; i++) x.s.lp_request(x.lp, kKeyLp, idle + 1 * kUs);
  EXPECT_EQ(x.s.dispatch(idle + 1 * kUs).size(), 2u);
  EXPECT_TRUE(x.s.dispatch(idle + 2 * kUs).empty());
  x.s.lp_complete(x.lp, idle + 2 * kUs, idle + 52 * kUs);
  EXPECT_EQ(x.s.dispatch(idle + 53 * kUs).size(), 1u);
}

TEST(FikitFill, FullSpeedAlsoBoundedWithoutHp) {
  PolicyConfig cfg;
  cfg.max_lp_in_flight = 4;
  t_FakeSched s(cfg);
  uint32_t lp = s.add("train", kPriorityLow);
  for (int i = 0; i < 6; i++) s.lp_request(lp, kKeyNew, kNow);
  EXPECT_EQ(s.dispatch(kNow).size(), 4u);  // unknown kernels too: nothing to protect
}

TEST(FikitFill, UnknownKernelIsMeasuredOnlyInALongGap) {
  t_Setup x;
  uint64_t t = t_hp_cycles(x.s, x.hp, kNow, 5, 100 * kUs, 200 * kUs);
  uint64_t idle = t - 200 * kUs;
  x.s.lp_request(x.lp, kKeyNew, idle + 1 * kUs);
  x.s.lp_request(x.lp, kKeyNew, idle + 1 * kUs);
  EXPECT_TRUE(x.s.dispatch(idle + 1 * kUs).empty());  // 200 us gap: too short to measure in
  // Later gaps of 5 ms: one unknown kernel goes in, alone.
  t_Setup y;
  uint64_t u = t_hp_cycles(y.s, y.hp, kNow, 5, 100 * kUs, 5000 * kUs);
  uint64_t idle2 = u - 5000 * kUs;
  y.s.lp_request(y.lp, kKeyNew, idle2 + 1 * kUs);
  y.s.lp_request(y.lp, kKeyNew, idle2 + 1 * kUs);
  EXPECT_EQ(y.s.dispatch(idle2 + 1 * kUs).size(), 1u);
  y.s.lp_complete(y.lp, idle2 + 2 * kUs, idle2 + 62 * kUs);  // now measured: 60 us
  EXPECT_EQ(y.s.dispatch(idle2 + 63 * kUs).size(), 1u);
}

TEST(FikitFill, OneTenantsRequestsStayInOrder) {
  t_Setup x;
  uint32_t lp2 = x.s.add("train2", kPriorityLow);
  uint64_t t = t_teach_lp(x.s, x.lp, kKeyLp, 50 * kUs, kNow);
  t = t_teach_lp(x.s, x.lp, kKeyLong, 300 * kUs, t);
  t = t_teach_lp(x.s, lp2, kKeyLp, 50 * kUs, t);
  t = t_hp_cycles(x.s, x.hp, t, 5, 100 * kUs, 200 * kUs);
  uint64_t idle = t - 200 * kUs;
  x.s.lp_request(x.lp, kKeyLong, idle + 1 * kUs);  // does not fit ...
  x.s.lp_request(x.lp, kKeyLp, idle + 1 * kUs);    // ... so this one waits behind it
  x.s.lp_request(lp2, kKeyLp, idle + 1 * kUs);     // another tenant's short one goes
  auto g = x.s.dispatch(idle + 1 * kUs);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0], lp2);
  EXPECT_EQ(x.s.t(x.lp).waiting.size(), 2u);
}

TEST(FikitFill, WithoutHpTheNextLevelRunsFreelyAndTheOneBelowFillsItsGaps) {
  t_FakeSched s;
  uint32_t mid = s.add("batch", kPriorityNormal);
  uint32_t low = s.add("train", kPriorityLow);
  uint64_t t = t_teach_lp(s, mid, kKeyLp, 50 * kUs, kNow);         // its gaps: 10 us
  t = t_teach_lp(s, low, kKeyLp, 50 * kUs, t + 200 * 1000 * kUs);  // (mid inactive by then)
  t += 1000 * kUs;
  s.lp_request(mid, kKeyLp, t);
  s.lp_request(low, kKeyLp, t);
  auto g = s.dispatch(t);
  ASSERT_EQ(g.size(), 1u);  // normal is the highest active level: it runs; low waits
  EXPECT_EQ(g[0], mid);
  s.lp_complete(mid, t, t + 50 * kUs);
  EXPECT_TRUE(s.dispatch(t + 51 * kUs).empty());  // normal's gaps are 10 us: no room
  // Normal once idled ~200 ms after this key: it counts as active for twice that.
  EXPECT_TRUE(s.dispatch(t + 51 * kUs + 200 * 1000 * kUs).empty());
  g = s.dispatch(t + 51 * kUs + 1000 * 1000 * kUs);
  ASSERT_EQ(g.size(), 1u);  // normal went inactive: low runs at full speed
  EXPECT_EQ(g[0], low);
}

TEST(FikitFill, LevelsFillTheGapsOfAllLevelsAboveBestLevelFirst) {
  t_FakeSched s;
  uint32_t hp = s.add("serve", kPriorityHigh);
  uint32_t mid = s.add("batch", kPriorityNormal);
  uint32_t low = s.add("train", kPriorityLow);
  uint64_t t = t_teach_lp(s, low, kKeyLp, 50 * kUs, kNow);  // (low first: normal not active)
  t = t_teach_lp(s, mid, kKeyLp, 50 * kUs, t);
  t = t_teach_lp(s, mid, kKeyLong, 300 * kUs, t);
  t = t_hp_cycles(s, hp, t, 5, 100 * kUs, 200 * kUs);
  uint64_t idle = t - 200 * kUs;
  s.lp_request(mid, kKeyLp, idle + 1 * kUs);
  s.lp_request(low, kKeyLp, idle + 1 * kUs);
  auto g = s.dispatch(idle + 1 * kUs);
  ASSERT_EQ(g.size(), 1u);  // normal first; low not while normal runs
  EXPECT_EQ(g[0], mid);
  s.lp_complete(mid, idle + 2 * kUs, idle + 52 * kUs);
  s.lp_request(mid, kKeyLong, idle + 53 * kUs);  // 300 us: does not fit what is left
  g = s.dispatch(idle + 53 * kUs);
  ASSERT_EQ(g.size(), 1u);  // normal is blocked, not idle: low's short kernel fits
  EXPECT_EQ(g[0], low);
}

}  // namespace
}  // namespace fikit::broker
