// Tests of the simulated GPU's time model (tests/sim/sim_engine.h), driven by hand on a state in
// plain memory: simulated time is explicit here, so timelines are checked exactly.
#include "sim_model_fixture.h"

namespace {

using fikit::sim::advance;
using fikit::sim::next_event;
using fikit::sim::OpKind;
using fikit_test::kMs;
using fikit_test::kT0;
using fikit_test::SimModel;

TEST_F(SimModel, TimeslicingAlternatesSlicesAndPaysEachSwitch) {
  uint32_t a = t_stream(0), b = t_stream(1);
  t_kernel(a, 0, 50, 0.01);  // small kernels: they would fit side by side, but not here
  t_kernel(b, 0, 50, 0.01);
  t_drain();
  // a runs alone, b waits a's slice and a switch; then 10 ms slices separated by 5 ms
  // switches: a finishes its 5th slice at 130 ms, b after one more switch and slice.
  EXPECT_EQ(t_start(a, 0), 0);
  EXPECT_EQ(t_start(b, 0), 15);
  EXPECT_EQ(t_end(a, 0), 130);
  EXPECT_EQ(t_end(b, 0), 145);
  EXPECT_EQ(g->context_switches, 9u);
  EXPECT_EQ(g->kernels_total, 2u);
  EXPECT_EQ(g->procs[0].kernels, 1u);
  EXPECT_EQ(g->procs[1].kernels, 1u);
}

TEST_F(SimModel, TheSliceCountsFromWhenContentionBegins) {
  uint32_t a = t_stream(0), b = t_stream(1);
  t_kernel(a, 0, 100);
  t_kernel(b, 50, 1);  // a ran 50 ms alone: it still gets a full slice once b arrives
  t_drain();
  EXPECT_EQ(t_start(b, 0), 65);  // 50 + slice 10 + switch 5
  EXPECT_EQ(t_end(b, 0), 66);
  EXPECT_EQ(t_end(a, 0), 111);  // switch back at 66, 40 ms left
}

TEST_F(SimModel, ALoadedContextStaysLoadedAndTheNextOnePaysTheSwitch) {
  uint32_t a = t_stream(0), b = t_stream(1);
  t_kernel(a, 0, 10);
  t_kernel(a, 0, 10);
  t_kernel(b, 40, 1);  // a is idle but loaded
  t_drain();
  EXPECT_EQ(t_start(a, 0), 0) << "the first context loads for free";
  EXPECT_EQ(t_end(a, 1), 20);
  EXPECT_EQ(t_start(b, 0), 45);
  EXPECT_EQ(g->context_switches, 1u);
}

TEST_F(SimModel, StreamsOfOneContextRunConcurrently) {
  uint32_t a = t_stream(0), a2 = t_stream(0);
  t_kernel(a, 0, 10, 0.5);
  t_kernel(a2, 0, 10, 0.5);
  t_drain();
  EXPECT_EQ(t_end(a, 0), 10);
  EXPECT_EQ(t_end(a2, 0), 10);
  EXPECT_EQ(g->context_switches, 0u);
}

TEST_F(SimModel, ZeroTimeOpsCompleteWhenTheyReachTheHead) {
  uint32_t a = t_stream(0);
  g->events[0] = {.in_use = 1, .serial = 1, .proc = 0, .recorded = 1};
  t_kernel(a, 0, 10);
  t_push(a, 0, {.kind = OpKind::kWrite64, .arg = 0x1000, .value = 7});
  t_push(a, 0, {.kind = OpKind::kEventRecord, .arg = 0 | (1ull << 32), .value = 1});
  advance(*g, kT0 + 9 * kMs);
  EXPECT_EQ(g->streams[a].exec, 0u) << "nothing completes before its kernel";
  EXPECT_EQ(g->events[0].done, 0u);
  t_drain();
  EXPECT_EQ(g->streams[a].exec, 3u);
  EXPECT_EQ(t_end(a, 1), 10);
  EXPECT_EQ(g->events[0].done, 1u);
  EXPECT_EQ(g->events[0].time_ns, kT0 + 10 * kMs);

  t_push(a, 20, {.kind = OpKind::kWrite64, .arg = 0x1000, .value = 8});  // idle stream: at once
  EXPECT_EQ(g->streams[a].exec, 4u);
  EXPECT_EQ(t_end(a, 3), 20);
}

TEST_F(SimModel, EventWaitHoldsAStreamUntilTheRecordCompletes) {
  uint32_t a = t_stream(0), b = t_stream(0);
  g->events[5] = {.in_use = 1, .serial = 3, .proc = 0, .recorded = 1};
  const uint64_t id = 5 | (3ull << 32);
  t_kernel(a, 0, 10, 0.1);
  t_push(a, 0, {.kind = OpKind::kEventRecord, .arg = id, .value = 1});
  t_push(b, 0, {.kind = OpKind::kEventWait, .arg = id, .value = 1});
  t_kernel(b, 0, 1, 0.1);
  t_push(b, 0, {.kind = OpKind::kEventWait, .arg = 5 | (2ull << 32), .value = 9});  // stale
  t_drain();
  EXPECT_EQ(t_start(b, 1), 10);
  EXPECT_EQ(t_end(b, 1), 11);
  EXPECT_EQ(g->streams[b].exec, 3u) << "a wait on a destroyed event must not block";
}

}  // namespace
