// Fairness among the LP tenants of one level (policy/fikit/share.h), on a synthetic clock with a
// fake scheduler: an HP kernel chain with fixed gaps and LP tenants that always have kernels
// waiting, run one after another on an MPS-like GPU. Same kernels share the harvest; longer
// kernels are not starved by shorter ones; a lower level still fills when the level above has
// nothing that fits.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "fikit_fake_sched.h"

namespace fikit::broker {
namespace {

constexpr uint64_t kUs = 1000;
constexpr uint64_t kHpKernel = 100 * kUs, kGap = 400 * kUs, kLaunchDelay = 5 * kUs;
constexpr uint64_t kKeyHp = 0x1111;

struct t_Lp {
  uint32_t idx;
  uint64_t key, kernel_ns;
  uint64_t gpu_ns = 0;  // GPU time it got
};

class t_ShareSim {
 public:
  t_ShareSim() { hp_ = s_.add("serve", kPriorityHigh); }
  size_t add_lp(const char* name, uint32_t priority, uint64_t key, uint64_t kernel_ns) {
    lps_.push_back({s_.add(name, priority), key, kernel_ns});
    return lps_.size() - 1;
  }
  const t_Lp& lp(size_t i) const { return lps_[i]; }

  // Teach the policy every LP kernel's duration (alone, before the HP task starts; add tenants
  // best level first), then run
  // `cycles` HP kernels and gaps.
  void run(int cycles) {
    for (auto it = lps_.rbegin(); it != lps_.rend(); ++it)  // lower levels first: nothing above
      for (int i = 0; i < 5; i++) {
        t_Lp& l = *it;
        s_.lp_request(l.idx, l.key, t_);
        EXPECT_EQ(s_.dispatch(t_).size(), 1u);
        s_.lp_complete(l.idx, t_, t_ + l.kernel_ns);
        t_ += l.kernel_ns + 10 * kUs;
      }
    for (int i = 0; i < cycles; i++) {
      uint64_t launch = t_;
      run_until(launch);
      s_.hp_launch(hp_, kKeyHp, launch);
      uint64_t done = std::max(launch, busy_until_) + kHpKernel;
      run_until(done);
      s_.hp_complete(hp_, done);
      dispatch(done + 2 * kUs);
      t_ = done + kGap;
    }
    run_until(t_);
  }

 private:
  struct Running {
    size_t lp;
    uint64_t launch, end;
  };
  void run_until(uint64_t until) {
    for (;;) {
      uint64_t next = running_.empty() ? UINT64_MAX : running_.front().end;
      if (s_.wake()) next = std::min(next, s_.wake());
      if (next >= until) return;
      if (!running_.empty() && next == running_.front().end) {
        Running r = running_.front();
        running_.erase(running_.begin());
        s_.lp_complete(lps_[r.lp].idx, r.launch, r.end);
      }
      dispatch(next);
    }
  }
  void dispatch(uint64_t now) {
    for (t_Lp& l : lps_)
      while (s_.t(l.idx).waiting.size() < 4) s_.lp_request(l.idx, l.key, now);
    for (uint32_t idx : s_.dispatch(now)) {
      size_t i = 0;
      while (lps_[i].idx != idx) i++;
      uint64_t launch = now + kLaunchDelay;
      busy_until_ = std::max(launch, busy_until_) + lps_[i].kernel_ns;
      lps_[i].gpu_ns += lps_[i].kernel_ns;
      running_.push_back({i, launch, busy_until_});
    }
  }

  t_FakeSched s_;
  uint32_t hp_;
  std::vector<t_Lp> lps_;
  std::vector<Running> running_;
  uint64_t t_ = 1'000'000'000, busy_until_ = 0;
};

double t_jain(double a, double b) { return (a + b) * (a + b) / (2 * (a * a + b * b)); }

TEST(FikitShare, SameKernelTenantsShareTheHarvest) {
  t_ShareSim sim;
  size_t a = sim.add_lp("train-a", kPriorityLow, 0x2222, 50 * kUs);
  size_t b = sim.add_lp("train-b", kPriorityLow, 0x2222, 50 * kUs);
  sim.run(400);
  double ga = static_cast<double>(sim.lp(a).gpu_ns), gb = static_cast<double>(sim.lp(b).gpu_ns);
  ASSERT_GT(ga + gb, 0);
  EXPECT_GE(t_jain(ga, gb), 0.95) << ga << " vs " << gb;
}

// 40 us against 200 us kernels in 400 us gaps: both fit an empty gap, so each gets at least half
// of an equal share of the level's GPU time.
TEST(FikitShare, LongKernelTenantIsNotStarvedByShortKernels) {
  t_ShareSim sim;
  size_t shorter = sim.add_lp("short", kPriorityLow, 0x2222, 40 * kUs);
  size_t longer = sim.add_lp("long", kPriorityLow, 0x3333, 300 * kUs);
  sim.run(400);
  double gs = static_cast<double>(sim.lp(shorter).gpu_ns);
  double gl = static_cast<double>(sim.lp(longer).gpu_ns);
  double equal = (gs + gl) / 2;
  ASSERT_GT(equal, 0);
  EXPECT_GE(gl, equal / 2) << "long " << gl << " short " << gs;
  EXPECT_GE(gs, equal / 2) << "long " << gl << " short " << gs;
}

// The normal level's kernels never fit a 400 us gap; the low level's do, and fill them.
TEST(FikitShare, LowerLevelFillsWhenTheLevelAboveHasNothingThatFits) {
  t_ShareSim sim;
  size_t big = sim.add_lp("batch", kPriorityNormal, 0x4444, 5000 * kUs);
  size_t small = sim.add_lp("train", kPriorityLow, 0x2222, 50 * kUs);
  sim.run(400);
  EXPECT_GT(sim.lp(small).gpu_ns, 100 * 50 * kUs) << "batch " << sim.lp(big).gpu_ns;
}

}  // namespace
}  // namespace fikit::broker
