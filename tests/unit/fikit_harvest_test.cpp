// The fikit policy against the oracle on a synthetic clock: an HP kernel chain with fixed,
// jittered and bimodal gaps, a LP tenant that always has 50 us kernels waiting, on an MPS-like
// GPU (a LP kernel overlapping an HP kernel slows it by half the overlap). Deterministic: no
// wall-clock time is involved. Checks the targets in this idealised setting: HP slowdown
// <= 1.05 and LP harvest >= 70% of the oracle's.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <random>

#include "fikit_fake_sched.h"

namespace fikit::broker {
namespace {

constexpr uint64_t kUs = 1000;
constexpr uint64_t kHpKernel = 100 * kUs, kLpKernel = 50 * kUs;
constexpr uint64_t kPollLatency = 2 * kUs, kLaunchDelay = 1 * kUs;
constexpr uint64_t kKeyHp = 0x1111, kKeyLp = 0x2222;

struct t_Result {
  double hp_slowdown;  // HP chain time co-located / alone
  double harvest;      // LP busy time inside HP gaps / HP gap time
  uint64_t fill_misses;
};

class t_Sim {
 public:
  t_Sim(const PolicyOps* ops, bool hints) : s_(PolicyConfig{}, ops), hints_(hints) {
    hp_ = s_.add("serve", kPriorityHigh);
    lp_ = s_.add("train", kPriorityLow);
  }

  t_Result run(int cycles, const std::function<uint64_t(int)>& gap_of) {
    uint64_t alone = 0, gaps = 0;
    for (int i = 0; i < cycles; i++) {
      uint64_t g = gap_of(i);
      uint64_t launch = t_;
      run_until(launch);
      s_.hp_launch(hp_, kKeyHp, launch);
      // MPS-like: LP work still running when HP launches shares the GPU with it.
      uint64_t overlap = lp_busy_until_ > launch ? std::min(lp_busy_until_ - launch, kHpKernel) : 0;
      uint64_t done = launch + kHpKernel + overlap / 2;
      run_until(done);
      s_.hp_complete(hp_, done);
      if (hints_) fikit_oracle_hint_idle(s_.state(), s_.t(hp_).info, g, done);
      dispatch(done + kPollLatency);
      gap_start_ = done;
      gap_end_ = done + g;
      t_ = gap_end_;
      alone += kHpKernel + g;
      gaps += g;
    }
    run_until(t_);
    t_Result r;
    r.hp_slowdown = static_cast<double>(t_ - start_) / static_cast<double>(alone);
    r.harvest = static_cast<double>(harvested_) / static_cast<double>(gaps);
    r.fill_misses = 0;
    std::string j = fikit_tenant_stats_json(s_.state(), s_.t(hp_).info.id);
    size_t at = j.find("\"fill_misses\":");
    if (at != std::string::npos) r.fill_misses = std::stoull(j.substr(at + 14));
    return r;
  }

 private:
  // Keep LP requests waiting; grant, launch and complete LP kernels up to time `until`.
  void run_until(uint64_t until) {
    for (;;) {
      uint64_t next = std::min(next_lp_done(), s_.wake() ? s_.wake() : UINT64_MAX);
      if (next >= until) return;
      if (next == next_lp_done()) {
        Running r = running_.front();
        running_.erase(running_.begin());
        account(r);
        s_.lp_complete(lp_, r.launch, r.end);
      }
      dispatch(next);
    }
  }
  void dispatch(uint64_t now) {
    while (s_.t(lp_).waiting.size() < 8) s_.lp_request(lp_, kKeyLp, now);
    for (size_t n = s_.dispatch(now).size(); n > 0; n--) {
      uint64_t launch = now + kLaunchDelay;
      uint64_t start = std::max(launch, lp_busy_until_);
      lp_busy_until_ = start + kLpKernel;
      running_.push_back({launch, start, lp_busy_until_});
    }
  }
  uint64_t next_lp_done() const { return running_.empty() ? UINT64_MAX : running_.front().end; }
  struct Running {
    uint64_t launch, start, end;
  };
  // LP busy time inside the HP gap it ran in.
  void account(const Running& r) {
    uint64_t a = std::max(r.start, gap_start_), b = std::min(r.end, gap_end_);
    if (b > a) harvested_ += b - a;
  }

  t_FakeSched s_;
  bool hints_;
  uint32_t hp_, lp_;
  uint64_t start_ = 1000000000, t_ = start_;
  uint64_t lp_busy_until_ = 0, gap_start_ = 0, gap_end_ = 0, harvested_ = 0;
  std::vector<Running> running_;
};

void t_compare(const char* name, const std::function<uint64_t(int)>& gap_of) {
  t_Result fikit = t_Sim(&kFikitPolicy, false).run(1500, gap_of);
  t_Result oracle = t_Sim(&kOraclePolicy, true).run(1500, gap_of);
  std::printf("%-9s fikit: slowdown %.3f harvest %.3f misses %llu | oracle: %.3f %.3f\n", name,
              fikit.hp_slowdown, fikit.harvest, static_cast<unsigned long long>(fikit.fill_misses),
              oracle.hp_slowdown, oracle.harvest);
  EXPECT_LE(fikit.hp_slowdown, 1.05) << name;
  EXPECT_GT(oracle.harvest, 0.3) << name;
  EXPECT_GE(fikit.harvest, 0.7 * oracle.harvest) << name;
}

TEST(FikitHarvest, FixedGaps) {
  t_compare("fixed", [](int) { return 300 * kUs; });
}

TEST(FikitHarvest, JitteredGaps) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> d(300e3, 30e3);
  t_compare("jittered", [&](int) { return static_cast<uint64_t>(std::max(20e3, d(rng))); });
}

TEST(FikitHarvest, BimodalGaps) {
  std::mt19937_64 rng(11);
  t_compare("bimodal", [&](int) { return rng() % 2 ? 2000 * kUs : 50 * kUs; });
}

}  // namespace
}  // namespace fikit::broker
