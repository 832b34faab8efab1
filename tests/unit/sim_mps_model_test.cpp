// Tests of the simulated GPU's MPS model (tests/sim/sim_mps_model.h) and of the time-slicing
// slice clock: exact timelines on a state driven by hand (100 SMs).
#include "sim/sim_mps_model.h"

#include "sim_model_fixture.h"

namespace {

using fikit::sim::advance;
using fikit::sim::Mode;
using fikit_test::kMs;
using fikit_test::kT0;
using fikit_test::SimModel;

class SimMps : public SimModel {
 protected:
  void SetUp() override {
    SimModel::SetUp();
    g->mode = Mode::kMps;
  }
};

TEST_F(SimMps, AKernelRunsInWavesAndItsLastWaveLeavesSmsToOthers) {
  uint32_t a = t_stream(0), b = t_stream(1);
  t_blocks(a, 0, 30, 250);  // 3 waves of 10 ms: 100, 100, then 50 blocks
  t_blocks(b, 15, 10, 50);  // one wave: waits for SMs, gets the 50 that a's last wave leaves
  t_drain();
  EXPECT_EQ(t_start(a, 0), 0);
  EXPECT_EQ(t_end(a, 0), 30) << "alone, a kernel takes its nominal time";
  EXPECT_EQ(t_start(b, 0), 20);
  EXPECT_EQ(t_end(b, 0), 30);
}

TEST_F(SimMps, AKernelGetsTheFreeSmsAndWaitsForTheRest) {
  uint32_t lp = t_stream(0), hp = t_stream(1);
  t_blocks(lp, 0, 10, 60);  // 60 SMs held until 10 ms
  t_blocks(hp, 2, 1, 50);   // 40 blocks at 2 ms; the other 10 when those retire at 3 ms
  t_drain();
  EXPECT_EQ(t_start(hp, 0), 2);
  EXPECT_EQ(t_end(hp, 0), 4);
  EXPECT_EQ(t_end(lp, 0), 10);
}

TEST_F(SimMps, WithinAPriorityLevelFreedSmsAreSplitEvenly) {
  uint32_t lp = t_stream(0), lp2 = t_stream(0), hp = t_stream(1);
  t_blocks(lp, 0, 10, 100);
  t_blocks(lp2, 0, 10, 100);  // waits at its head from 0
  t_blocks(hp, 5, 1, 50);     // waits from 5
  t_drain();
  // At 10 the 100 SMs lp frees go 50 / 50; lp2's other 50 blocks start when hp's retire.
  EXPECT_EQ(t_start(hp, 0), 10);
  EXPECT_EQ(t_end(hp, 0), 11);
  EXPECT_EQ(t_start(lp2, 0), 10);
  EXPECT_EQ(t_end(lp2, 0), 21);
}

TEST_F(SimMps, TheOddSmGoesToTheKernelThatWaitedLongest) {
  g->sms = 3;
  uint32_t a = t_stream(0), b = t_stream(1), c = t_stream(2);
  t_blocks(a, 0, 10, 3);
  t_blocks(c, 1, 1, 2);  // c waits first, though its stream comes later
  t_blocks(b, 2, 1, 2);
  t_drain();
  EXPECT_EQ(t_end(c, 0), 11) << "2 of the 3 SMs at 10";
  EXPECT_EQ(t_end(b, 0), 12) << "1 at 10, its second block at 11";
}

TEST_F(SimMps, BlocksOfANormalPriorityClientGoFirstButPreemptNothing) {
  uint32_t lp = t_stream(0), lp2 = t_stream(0), hp = t_stream(1);
  g->procs[0].mps_priority = 1;  // CUDA_MPS_CLIENT_PRIORITY=1: below normal
  t_blocks(lp, 0, 10, 100);
  t_blocks(lp2, 0, 10, 100);
  t_blocks(hp, 5, 1, 100);
  t_drain();
  EXPECT_EQ(t_start(hp, 0), 10) << "hp waits for lp's running blocks to retire";
  EXPECT_EQ(t_end(hp, 0), 11);
  EXPECT_EQ(t_start(lp2, 0), 11);
  EXPECT_EQ(t_end(lp2, 0), 21);
}

TEST_F(SimMps, AnActiveThreadCapLimitsTheSmsAProcessHolds) {
  uint32_t lp = t_stream(0), hp = t_stream(1);
  g->procs[0].mps_sm_cap = 30;  // CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=30
  t_blocks(lp, 0, 10, 100);     // 100 blocks of 10 ms, 30 at a time: 4 rounds
  t_blocks(hp, 0, 1, 70);       // the 70 SMs the cap leaves: at once
  t_drain();
  EXPECT_EQ(t_end(hp, 0), 1);
  EXPECT_EQ(t_end(lp, 0), 40);
}

TEST(SimMpsCap, ThePercentageOfTheSmsRoundedUp) {
  EXPECT_EQ(fikit::sim::mps_sm_cap(132, 30), 40u);
  EXPECT_EQ(fikit::sim::mps_sm_cap(132, 1), 2u);
  EXPECT_EQ(fikit::sim::mps_sm_cap(132, 100), 0u) << "no cap";
}

TEST_F(SimMps, WithTwoSlotsPerSmAKernelRunsInTheLeftoverBesideAnother) {
  g->mps_slots = 2;
  uint32_t lp = t_stream(0), lp2 = t_stream(0), hp = t_stream(1);
  t_blocks(lp, 0, 10, 100);   // alone: full speed on every SM
  t_blocks(lp2, 0, 10, 100);  // at most one block of a kernel per SM: lp2 takes the second slots
  t_blocks(hp, 2, 1, 50);     // waits: every slot is taken
  t_drain();
  // 0-10: 200 blocks on 100 SMs, each at half speed; lp's 10 ms of work need 20 ms.
  EXPECT_EQ(t_end(lp, 0), 20);
  // At 20 both lp and lp2 retire; hp then runs alone: 50 blocks, full speed.
  EXPECT_EQ(t_start(hp, 0), 20);
  EXPECT_EQ(t_end(hp, 0), 21);
}

TEST_F(SimMps, CoRunningKernelsSlowEachOtherByTheBandwidthFactor) {
  uint32_t a = t_stream(0), b = t_stream(1);
  g->mps_bw = 1.0;
  t_blocks(a, 0, 10, 50);  // each sees the other hold half of the SMs: rate 1 / 1.5
  t_blocks(b, 0, 10, 50);
  t_drain();
  EXPECT_EQ(t_end(a, 0), 15);
  EXPECT_EQ(t_end(b, 0), 15);
  t_blocks(a, 100, 10, 50);  // alone: full speed
  t_drain();
  EXPECT_EQ(t_end(a, 1), 110);
}

TEST_F(SimMps, DroppedWorkFreesItsSms) {
  uint32_t a = t_stream(0), b = t_stream(1);
  t_blocks(a, 0, 100, 100);
  t_blocks(b, 0, 1, 100);
  advance(*g, kT0 + 5 * kMs);
  g->streams[a] = {};  // its process died: the state drops its streams
  advance(*g, g->now_ns);
  t_drain();
  EXPECT_EQ(t_start(b, 0), 5);
  EXPECT_EQ(t_end(b, 0), 6);
}

TEST_F(SimModel, OnTheSliceClockContentionWaitsOnlyForTheCurrentSliceToEnd) {
  g->slice_clock = 1;  // slices of 10 ms from when a got busy: [0, 10), [10, 20), [20, 30)
  uint32_t a = t_stream(0), b = t_stream(1);
  t_kernel(a, 0, 100);
  t_kernel(b, 23, 1);
  t_drain();
  EXPECT_EQ(t_start(b, 0), 35);  // a's slice ends at 30, then the 5 ms switch
  EXPECT_EQ(t_end(b, 0), 36);
}

}  // namespace
