// LP bursts in the fikit policy (burst.h) with a fake scheduler: sized by the tenant's kernel
// chain and the room in the gap, bounded by the in-flight limit, its launches recorded as grants
// into the gap, closed when the level above comes back; at full speed bounded by burst_full.
#include <gtest/gtest.h>

#include "fikit_fake_sched.h"
#include "policy/fikit/policy_state.h"

namespace fikit::broker {
namespace {

constexpr uint64_t kUs = 1000;
constexpr uint64_t kNow = 1000000000;
constexpr uint64_t kKeyHp = 0x1111, kKeyLp = 0x2222, kKeyNew = 0x4444;

fikit_policy::TenantData& t_data(t_FakeSched& s, uint32_t i) {
  return *static_cast<fikit_policy::TenantData*>(s.t(i).info.policy_data);
}

struct t_Bursts {
  explicit t_Bursts(const char* opts = "", uint32_t max_in_flight = 16)
      : s(config(opts, max_in_flight)) {
    hp = s.add("serve", kPriorityHigh);
    lp = s.add("train", kPriorityLow);
    s.enable_bursts();
  }
  static PolicyConfig config(const char* opts, uint32_t max_in_flight) {
    PolicyConfig cfg;
    cfg.opts = opts;
    cfg.max_lp_in_flight = max_in_flight;
    return cfg;
  }
  // LP kernels of `key`, 50 us each, one after another with nothing else active: the policy
  // learns their duration and that `key` follows `key`. Full-speed bursts are off meanwhile.
  uint64_t teach_lp(uint64_t key, uint64_t t) {
    for (int i = 0; i < 5; i++) {
      s.lp_request(lp, key, t);
      EXPECT_EQ(s.dispatch(t).size(), 1u);
      s.close_burst(lp);
      s.lp_complete(lp, t, t + 50 * kUs);
      t += 60 * kUs;
    }
    return t;
  }
  // HP cycles of a 100 us kernel, then `gap` idle; return the next launch time.
  uint64_t hp_cycles(uint64_t t, int n, uint64_t gap) {
    for (int i = 0; i < n; i++) {
      s.hp_launch(hp, kKeyHp, t);
      s.hp_complete(hp, t + 100 * kUs);
      t += 100 * kUs + gap;
    }
    return t;
  }
  // Teach, let the HP serve with 400 us gaps, then ask for one LP kernel in a gap: it is granted
  // (and, where it can, opens a burst). Return when that gap began.
  uint64_t grant_in_a_gap() {
    uint64_t t = teach_lp(kKeyLp, kNow);
    t = hp_cycles(t, 5, 400 * kUs);
    uint64_t idle = t - 400 * kUs;
    s.lp_request(lp, kKeyLp, idle + 1 * kUs);
    EXPECT_EQ(s.dispatch(idle + 1 * kUs).size(), 1u);
    return idle;
  }
  t_FakeSched s;
  uint32_t hp, lp;
};

// The same gap as FikitFill.SeveralPerGapWhileTheyFit, where six 50 us kernels granted one by one
// fit: one grant, then a burst of the five that follow it in the chain.
TEST(FikitBurst, FollowsTheKernelChainWhileItFitsTheGap) {
  t_Bursts x;
  auto& td = t_data(x.s, x.lp);
  uint64_t idle = x.grant_in_a_gap();
  ASSERT_TRUE(td.burst.open);
  EXPECT_TRUE(td.burst.fill);
  uint32_t kernels = (x.s.t(x.lp).burst_end - x.s.t(x.lp).next_pos) / 2;  // 2 positions each
  uint64_t burst_grants = td.counters.grants_burst, fills = td.counters.grants_fill;
  EXPECT_EQ(kernels, 5u);
  // Its deadline leaves room for a kernel and the margin before the gap's predicted end.
  EXPECT_GT(x.s.t(x.lp).burst_until, idle + 1 * kUs);
  EXPECT_LE(x.s.t(x.lp).burst_until, idle + 400 * kUs - 50 * kUs - 20 * kUs);
  // Every kernel it was sized for launches without a request; the next one does not.
  for (uint32_t i = 0; i < kernels; i++)
    EXPECT_TRUE(x.s.lp_burst_launch(x.lp, kKeyLp, idle + (2 + i) * kUs)) << i;
  EXPECT_FALSE(x.s.lp_burst_launch(x.lp, kKeyLp, idle + 10 * kUs));
  EXPECT_EQ(td.counters.grants_burst, burst_grants + kernels);
  EXPECT_EQ(td.counters.grants_fill, fills + kernels);
  EXPECT_EQ(x.s.lp_in_flight(), 1u + kernels);
  auto& hd = t_data(x.s, x.hp);
  EXPECT_GE(hd.counters.lp_into_gaps, 1u + kernels);
  // They complete inside the gap: no fill miss, no overrun.
  uint64_t done = idle + 20 * kUs;
  for (uint32_t i = 0; i <= kernels; i++, done += 50 * kUs) x.s.lp_complete(x.lp, idle, done);
  EXPECT_EQ(x.s.lp_in_flight(), 0u);
  x.s.hp_launch(x.hp, kKeyHp, idle + 400 * kUs);
  EXPECT_EQ(hd.counters.fill_misses, 0u);
  EXPECT_EQ(td.counters.fill_overruns, 0u);
}

TEST(FikitBurst, TheLevelAboveComingBackClosesIt) {
  t_Bursts x;
  uint64_t idle = x.grant_in_a_gap();
  ASSERT_NE(x.s.t(x.lp).burst_until, 0u);
  x.s.hp_launch(x.hp, kKeyHp, idle + 30 * kUs);  // early
  x.s.dispatch(idle + 31 * kUs);
  EXPECT_EQ(x.s.t(x.lp).burst_until, 0u);
  EXPECT_FALSE(t_data(x.s, x.lp).burst.open);
}

TEST(FikitBurst, StopsAtAKernelNeverMeasured) {
  t_Bursts x;
  uint64_t t = x.teach_lp(kKeyLp, kNow);
  // kKeyLp is now followed by a kernel never measured (its grant taken back).
  x.s.lp_request(x.lp, kKeyNew, t);
  ASSERT_EQ(x.s.dispatch(t).size(), 1u);
  x.s.close_burst(x.lp);
  x.s.revoke(x.lp);
  t = x.hp_cycles(t + 100 * kUs, 5, 400 * kUs);
  uint64_t idle = t - 400 * kUs;
  x.s.lp_request(x.lp, kKeyLp, idle + 1 * kUs);
  uint32_t before = x.s.t(x.lp).bursts;
  ASSERT_EQ(x.s.dispatch(idle + 1 * kUs).size(), 1u);
  EXPECT_EQ(x.s.t(x.lp).bursts, before) << "no burst past an unknown kernel";
}

TEST(FikitBurst, BoundedByTheLpInFlightLimit) {
  t_Bursts x("", 3);
  x.grant_in_a_gap();
  EXPECT_EQ(x.s.t(x.lp).burst_end, x.s.t(x.lp).next_pos + 2 * 2);  // 1 granted + 2 <= 3
}

TEST(FikitBurst, FullSpeedBurstIsBoundedInTimeAndCount) {
  t_Bursts x("burst_full_us=500", 4);
  x.s.lp_request(x.lp, kKeyNew, kNow);
  ASSERT_EQ(x.s.dispatch(kNow).size(), 1u);
  EXPECT_EQ(x.s.t(x.lp).burst_until, kNow + 500 * kUs);
  EXPECT_EQ(x.s.t(x.lp).burst_end, x.s.t(x.lp).next_pos + 2 * 3);
  EXPECT_FALSE(t_data(x.s, x.lp).burst.fill);
  // Past the deadline the policy counts it closed.
  x.s.dispatch(kNow + 501 * kUs);
  EXPECT_FALSE(t_data(x.s, x.lp).burst.open);
}

TEST(FikitBurst, BurstMaxZeroTurnsThemOff) {
  t_Bursts x("burst_max=0");
  x.s.lp_request(x.lp, kKeyNew, kNow);
  ASSERT_EQ(x.s.dispatch(kNow).size(), 1u);
  EXPECT_EQ(x.s.t(x.lp).bursts, 0u);
}

}  // namespace
}  // namespace fikit::broker
