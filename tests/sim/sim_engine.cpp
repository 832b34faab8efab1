// The simulated GPU's time model: event-driven simulation from the last simulated time to now.
#include "sim/sim_engine.h"

#include <algorithm>
#include <cmath>

#include "sim/sim_mps_model.h"
#include "sim/sim_ops.h"

namespace fikit::sim {
namespace {

constexpr double kDoneNs = 0.5;  // a kernel with less work left than this is done

// Return true if the kernels of context `ctx` may run now (timeslice; mps: sim_mps_model.cpp).
bool may_run(const SimShared& g, int32_t ctx) { return g.switch_to < 0 && g.active_ctx == ctx; }

// Return true if stream i's head is a kernel that runs now.
bool running(const SimShared& g, uint32_t i) {
  return head_is_kernel(g, i) && may_run(g, g.streams[i].ctx);
}

// The running kernels' demands summed, at least 1: each progresses at rate 1/load.
double load(const SimShared& g) {
  double sum = 0;
  for (uint32_t i = 0; i < g.stream_hwm; i++)
    if (running(g, i)) sum += head(g, i).demand;
  return std::max(1.0, sum);
}

// Mark which contexts have a kernel waiting or running at a stream head.
void busy_contexts(const SimShared& g, bool busy[kMaxContexts]) {
  std::fill(busy, busy + kMaxContexts, false);
  for (uint32_t i = 0; i < g.stream_hwm; i++) {
    int32_t c = g.streams[i].ctx;
    if (head_is_kernel(g, i) && c >= 0 && static_cast<uint32_t>(c) < kMaxContexts) busy[c] = true;
  }
}

// The next busy context after the active one, round robin, or -1.
int32_t next_busy(const SimShared& g, const bool busy[kMaxContexts]) {
  for (uint32_t k = 1; k <= kMaxContexts; k++) {
    int32_t c = static_cast<int32_t>((g.active_ctx + k) % kMaxContexts);
    if (c != g.active_ctx && busy[c]) return c;
  }
  return -1;
}

// The event named by an op's id, or nullptr if it was destroyed since (stale serial).
SimEvent* event_of(SimShared& g, uint64_t id) {
  uint64_t slot = id & 0xffffffffu;
  if (slot >= kMaxEvents) return nullptr;
  SimEvent& e = g.events[slot];
  return e.in_use && e.serial == static_cast<uint32_t>(id >> 32) ? &e : nullptr;
}

// Complete the zero-time ops at the stream heads. Return true if any completed.
bool settle_ops(SimShared& g, uint64_t t) {
  bool any = false;
  for (uint32_t i = 0; i < g.stream_hwm; i++) {
    while (stream_busy(g.streams[i])) {
      SimOp& op = head(g, i);
      if (op.kind == OpKind::kKernel) break;
      SimEvent* e = op.kind == OpKind::kEventWait || op.kind == OpKind::kEventRecord
                        ? event_of(g, op.arg)
                        : nullptr;
      if (op.kind == OpKind::kEventWait && e && e->done < op.value) break;
      if (op.kind == OpKind::kEventRecord && e && e->done < op.value) {
        e->done = op.value;
        e->time_ns = t;
      }
      complete(g, i, t);
      any = true;
    }
  }
  return any;
}

// Timeslice decisions at time t (see the header).
void schedule(SimShared& g, uint64_t t) {
  if (g.mode != Mode::kTimeslice) return;
  if (g.switch_to >= 0) {
    if (t < g.switch_end_ns) return;
    g.active_ctx = g.switch_to;
    g.switch_to = -1;
    g.slice_start_ns = t;
  }
  bool busy[kMaxContexts];
  busy_contexts(g, busy);
  int32_t next = next_busy(g, busy);
  bool clock = g.slice_clock && g.timeslice_ns;
  if (next < 0) {  // uncontended: the slice starts counting when contention begins, or, on a
                   // slice clock, when the running context got busy
    if (!clock || g.active_ctx < 0 || !busy[g.active_ctx]) g.slice_start_ns = t;
    return;
  }
  // Contention that begins past the end of a slice lands in the current one of the slice clock
  // (under contention the expiry is an event, so it is seen exactly at slice_start + slice).
  if (clock && t > g.slice_start_ns + g.timeslice_ns)
    g.slice_start_ns += (t - g.slice_start_ns) / g.timeslice_ns * g.timeslice_ns;
  if (g.active_ctx < 0) {  // nothing loaded: no switch to pay
    g.active_ctx = next;
    g.slice_start_ns = t;
    return;
  }
  if (busy[g.active_ctx] && t < g.slice_start_ns + g.timeslice_ns) return;
  g.context_switches++;
  g.switch_to = next;
  g.switch_end_ns = t + g.switch_ns;
  if (g.switch_ns == 0) {
    g.active_ctx = next;
    g.switch_to = -1;
    g.slice_start_ns = t;
  }
}

void settle(SimShared& g, uint64_t t) {
  while (settle_ops(g, t)) {
  }
  if (g.mode == Mode::kMps)
    mps_dispatch(g, t);
  else
    schedule(g, t);
}

uint64_t next_event_at(const SimShared& g, uint64_t t) {
  if (g.mode == Mode::kMps) return mps_next_event(g, t);
  uint64_t next = kNever;
  double scale = load(g);
  for (uint32_t i = 0; i < g.stream_hwm; i++)
    if (running(g, i))
      next = std::min(next, t + static_cast<uint64_t>(std::ceil(head(g, i).remaining_ns * scale)));
  if (g.switch_to >= 0) return std::min(next, g.switch_end_ns);
  bool busy[kMaxContexts];
  busy_contexts(g, busy);
  if (g.active_ctx >= 0 && busy[g.active_ctx] && next_busy(g, busy) >= 0)
    next = std::min(next, std::max(t, g.slice_start_ns + g.timeslice_ns));
  return next;
}

// Run the running kernels from t0 to t1 (no event in between) and complete those that finish.
void run_kernels(SimShared& g, uint64_t t0, uint64_t t1) {
  if (g.mode == Mode::kMps) return mps_run(g, t0, t1);
  double progress = static_cast<double>(t1 - t0) / load(g);
  for (uint32_t i = 0; i < g.stream_hwm; i++) {
    if (!running(g, i)) continue;
    SimOp& op = head(g, i);
    if (op.start_ns == 0) op.start_ns = t0;
    op.remaining_ns -= progress;
    if (op.remaining_ns <= kDoneNs) complete(g, i, t1);
  }
}

}  // namespace

void advance(SimShared& g, uint64_t now) {
  uint64_t t = g.now_ns;
  now = std::max(now, t);
  for (;;) {
    settle(g, t);
    uint64_t next = std::min(next_event_at(g, t), now);
    run_kernels(g, t, next);
    t = next;
    if (t >= now) break;
  }
  settle(g, now);
  g.now_ns = now;
}

uint64_t next_event(const SimShared& g) { return next_event_at(g, g.now_ns); }

}  // namespace fikit::sim
