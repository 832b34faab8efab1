// The oracle policy: fikit's filling with each gap's end taken from the tenant's idle hint.
#include <gtest/gtest.h>

#include "fikit_fake_sched.h"

namespace fikit::broker {
namespace {

constexpr uint64_t kUs = 1000;
constexpr uint64_t kNow = 1000000000;
constexpr uint64_t kKeyHp = 0x1111, kKeyLp = 0x2222;

struct t_Oracle {
  t_FakeSched s{PolicyConfig{}, &kOraclePolicy};
  uint32_t hp = s.add("serve", kPriorityHigh);
  uint32_t lp = s.add("train", kPriorityLow);
  uint64_t t = kNow;
  t_Oracle() {
    for (int i = 0; i < 5; i++) {  // LP kernels of 50 us, measured at full speed
      s.lp_request(lp, kKeyLp, t);
      EXPECT_EQ(s.dispatch(t).size(), 1u);
      s.lp_complete(lp, t, t + 50 * kUs);
      t += 60 * kUs;
    }
    s.hp_launch(hp, kKeyHp, t);
    s.hp_complete(hp, t + 100 * kUs);
    t += 100 * kUs;  // HP idle from here
  }
  void hint(uint64_t idle_ns, uint64_t at) {
    fikit_oracle_hint_idle(s.state(), s.t(hp).info, idle_ns, at);
  }
  size_t fill(int requests) {
    for (int i = 0; i < requests; i++) s.lp_request(lp, kKeyLp, t + 1 * kUs);
    return s.dispatch(t + 1 * kUs).size();
  }
};

TEST(FikitOracle, NoHintNoFill) {
  t_Oracle o;
  EXPECT_EQ(o.fill(4), 0u);
}

TEST(FikitOracle, FillsExactlyTheHintedGap) {
  t_Oracle o;
  o.hint(200 * kUs, o.t);
  // ~52 us per kernel (50 us, high-quantile bucket edge) + 20 us margin, in 199 us: 3 fit.
  EXPECT_EQ(o.fill(6), 3u);
}

TEST(FikitOracle, HintSeenAfterTheDrainAppliesToTheOpenGap) {
  t_Oracle o;
  o.hint(1000 * kUs, o.t + 1 * kUs);
  EXPECT_EQ(o.fill(2), 2u);
  EXPECT_NE(fikit_tenant_stats_text(o.s.state(), o.s.t(o.lp).info.id).find("fill 2"),
            std::string::npos);
}

TEST(FikitOracle, HintIsForgottenOnceTheTenantLaunchesAgain) {
  t_Oracle o;
  o.hint(10000 * kUs, o.t);
  o.s.hp_launch(o.hp, kKeyHp, o.t + 5 * kUs);
  o.s.hp_complete(o.hp, o.t + 105 * kUs);
  o.t += 105 * kUs;
  EXPECT_EQ(o.fill(2), 0u);  // a new gap, no new hint
}

}  // namespace
}  // namespace fikit::broker
