// The fixture of the simulated GPU's time-model tests (sim_model_test.cpp, sim_mps_model_test.cpp):
// a state in plain memory driven by hand, so that simulated time is explicit and timelines exact.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "sim/sim_engine.h"

namespace fikit_test {

using fikit::sim::advance;
using fikit::sim::kNever;
using fikit::sim::kStreamRing;
using fikit::sim::Mode;
using fikit::sim::next_event;
using fikit::sim::OpKind;
using fikit::sim::SimOp;
using fikit::sim::SimShared;

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kT0 = 1'000'000'000;  // the simulation's start time

class SimModel : public ::testing::Test {
 protected:
  void SetUp() override {
    g = std::make_unique<SimShared>();
    g->mode = Mode::kTimeslice;
    g->sms = 100;
    g->timeslice_ns = 10 * kMs;
    g->switch_ns = 5 * kMs;
    g->active_ctx = -1;
    g->switch_to = -1;
    g->now_ns = kT0;
  }

  // A new stream of context `ctx` (owned by process `ctx`). Return its slot.
  uint32_t t_stream(int32_t ctx) {
    uint32_t i = g->stream_hwm++;
    g->ctxs[ctx] = {.in_use = 1, .proc = ctx};
    g->procs[ctx] = {.pid = 1000 + ctx, .in_use = 1, .kernels = 0};
    g->streams[i] = {.in_use = 1, .proc = ctx, .ctx = ctx, .local_id = i};
    return i;
  }

  // Enqueue an op at simulated time `at` (ms after kT0), as a process does: advance, then push.
  void t_push(uint32_t stream, double at_ms, SimOp op) {
    advance(*g, kT0 + static_cast<uint64_t>(at_ms * kMs));
    g->rings[stream][g->streams[stream].tail++ % kStreamRing] = op;
    advance(*g, g->now_ns);
  }

  void t_kernel(uint32_t stream, double at_ms, double ms, double demand = 1.0) {
    auto ns = static_cast<uint64_t>(ms * kMs);
    t_push(stream, at_ms,
           {.kind = OpKind::kKernel,
            .value = ns,
            .remaining_ns = static_cast<double>(ns),
            .demand = demand});
  }

  // A kernel of `blocks` SM-sized blocks, `ms` long alone (mps: sim_mps_model.h).
  void t_blocks(uint32_t stream, double at_ms, double ms, uint32_t blocks) {
    auto ns = static_cast<uint64_t>(ms * kMs);
    t_push(stream, at_ms,
           {.kind = OpKind::kKernel,
            .value = ns,
            .remaining_ns = static_cast<double>(ns),
            .demand = 1.0,
            .blocks = blocks});
  }

  // Run the simulation until nothing is left to happen.
  void t_drain() {
    for (uint64_t next; (next = next_event(*g)) != kNever;) advance(*g, next);
  }

  const SimOp& t_op(uint32_t stream, uint32_t i) const { return g->rings[stream][i]; }
  double t_start(uint32_t stream, uint32_t i) const {
    return static_cast<double>(t_op(stream, i).start_ns - kT0) / kMs;
  }
  double t_end(uint32_t stream, uint32_t i) const {
    return static_cast<double>(t_op(stream, i).end_ns - kT0) / kMs;
  }

  std::unique_ptr<SimShared> g;
};

}  // namespace fikit_test
