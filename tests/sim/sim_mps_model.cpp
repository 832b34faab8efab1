// The simulated GPU's MPS time model (see sim_mps_model.h): SM-sized blocks in waves, dispatched
// by client priority as SMs free up, capped per process, slowed by co-running kernels.
#include "sim/sim_mps_model.h"

#include <algorithm>
#include <cmath>

#include "sim/sim_ops.h"

namespace fikit::sim {
namespace {

constexpr double kDoneNs = 0.5;  // a block with less work left than this has retired

uint32_t kernel_blocks(const SimShared& g, const SimOp& op) {
  if (op.blocks) return op.blocks;
  // Ops made without a block count (tests, old pushers): one wave on `demand` of the SMs.
  return std::max<uint32_t>(1, static_cast<uint32_t>(std::lround(op.demand * g.sms)));
}

// Full-speed work of each block of `op`.
double block_ns(const SimShared& g, const SimOp& op) {
  return static_cast<double>(op.value) / mps_waves(kernel_blocks(g, op), g.sms);
}

// A cohort still describes resident blocks of its stream's head kernel (dropped work, a
// destroyed stream or a dead process invalidate it: its SMs are free again).
bool cohort_valid(const SimShared& g, const SimCohort& c) {
  if (c.stream >= kMaxStreams) return false;
  const SimStream& s = g.streams[c.stream];
  if (!s.in_use || s.exec != c.exec || !head_is_kernel(g, c.stream)) return false;
  return head(g, c.stream).resident >= c.blocks;
}

int32_t proc_of(const SimShared& g, uint32_t stream) {
  int32_t p = g.streams[stream].proc;
  return p >= 0 && static_cast<uint32_t>(p) < kMaxProcs ? p : -1;
}

// SMs held now: in all, per stream (its head kernel) and per process.
struct Held {
  uint32_t total = 0;
  uint32_t stream[kMaxStreams] = {};
  uint32_t proc[kMaxProcs] = {};
};

uint32_t used(const SimShared& g) { return std::min(g.cohorts_used, kMaxCohorts); }

void count_held(const SimShared& g, Held* h) {
  for (uint32_t k = 0; k < used(g); k++) {
    const SimCohort& c = g.cohorts[k];
    if (!cohort_valid(g, c)) continue;
    h->total += c.blocks;
    h->stream[c.stream] += c.blocks;
    if (int32_t p = proc_of(g, c.stream); p >= 0) h->proc[p] += c.blocks;
  }
}

uint32_t slots(const SimShared& g) { return g.sms * std::max<uint32_t>(1, g.mps_slots); }

// Rate at which a block of stream i's kernel progresses: SMs holding more than one block share
// their cycles evenly (blocks taken as spread evenly over the SMs), and co-running kernels slow
// each other by the bandwidth factor times the share of the SMs the others hold.
double rate(const SimShared& g, const Held& h, uint32_t i) {
  double sms = std::max<uint32_t>(1, g.sms);
  double shared = std::min(1.0, sms / std::max<double>(1, h.total));
  double others = std::min(1.0, static_cast<double>(h.total - h.stream[i]) / sms);
  return shared / (1.0 + g.mps_bw * others);
}

// SMs process p may still take under its active-thread cap.
uint32_t cap_left(const SimShared& g, const Held& h, int32_t p) {
  if (p < 0 || !g.procs[p].mps_sm_cap) return g.sms;
  uint32_t cap = g.procs[p].mps_sm_cap;
  return cap > h.proc[p] ? cap - h.proc[p] : 0;
}

uint32_t prio_of(const SimShared& g, uint32_t stream) {
  int32_t p = proc_of(g, stream);
  return p >= 0 ? std::min<uint32_t>(g.procs[p].mps_priority, 1) : 0;
}

// The blocks stream i's head kernel could take now (not counting free slots): at most one per
// SM, and within its process's cap.
uint32_t wants(const SimShared& g, const Held& h, uint32_t i) {
  if (!head_is_kernel(g, i)) return 0;
  const SimOp& op = head(g, i);
  uint32_t left = kernel_blocks(g, op) - std::min(op.dispatched, kernel_blocks(g, op));
  uint32_t sm_room = g.sms - std::min(g.sms, h.stream[i]);
  return std::min({left, sm_room, cap_left(g, h, proc_of(g, i))});
}

SimCohort* new_cohort(SimShared& g) {
  if (g.cohorts_used >= kMaxCohorts) return nullptr;
  return &g.cohorts[g.cohorts_used++];
}

// Free cohort k: the last one takes its place (the array stays dense).
void drop_cohort(SimShared& g, uint32_t k) {
  g.cohorts[k] = g.cohorts[--g.cohorts_used];
  g.cohorts[g.cohorts_used] = SimCohort{};
}

}  // namespace

void mps_dispatch(SimShared& g, uint64_t t) {
  g.cohorts_used = used(g);
  for (uint32_t k = g.cohorts_used; k-- > 0;)
    if (!cohort_valid(g, g.cohorts[k])) drop_cohort(g, k);
  for (uint32_t i = 0; i < g.stream_hwm; i++) {
    if (!head_is_kernel(g, i)) continue;
    SimOp& op = head(g, i);
    if (!op.ready_seq) op.ready_seq = ++g.mps_seq;
  }
  Held h;
  count_held(g, &h);
  for (uint32_t prio = 0; prio <= 1 && h.total < slots(g); prio++) {
    // This level's waiting kernels in the order they reached their heads.
    uint32_t order[kMaxStreams], want[kMaxStreams] = {}, give[kMaxStreams] = {};
    uint32_t waiting = 0;
    for (uint32_t i = 0; i < g.stream_hwm; i++)
      if (prio_of(g, i) == prio && (want[i] = wants(g, h, i)) > 0) order[waiting++] = i;
    std::sort(order, order + waiting,
              [&g](uint32_t x, uint32_t y) { return head(g, x).ready_seq < head(g, y).ready_seq; });
    // Water-filling: the free SMs are split evenly among them (the earliest get the odd ones);
    // a kernel that wants less leaves the rest to the others.
    uint32_t free = slots(g) - h.total;
    for (bool given = true; free > 0 && given;) {
      given = false;
      uint32_t open = 0;
      for (uint32_t k = 0; k < waiting; k++) open += want[order[k]] > give[order[k]];
      if (!open) break;
      uint32_t share = std::max<uint32_t>(1, free / open);
      for (uint32_t k = 0; k < waiting && free > 0; k++) {
        uint32_t i = order[k];
        uint32_t n = std::min({share, want[i] - give[i], free});
        give[i] += n;
        free -= n;
        given |= n > 0;
      }
    }
    for (uint32_t k = 0; k < waiting; k++) {
      uint32_t i = order[k];
      int32_t p = proc_of(g, i);
      uint32_t n = std::min(give[i], cap_left(g, h, p));  // streams of one process share a cap
      SimCohort* c = n ? new_cohort(g) : nullptr;
      if (!c) continue;
      SimOp& op = head(g, i);
      *c = SimCohort{
          .stream = i, .exec = g.streams[i].exec, .blocks = n, .remaining_ns = block_ns(g, op)};
      if (op.start_ns == 0) op.start_ns = t;
      op.dispatched += n;
      op.resident += n;
      h.total += n;
      h.stream[i] += n;
      if (p >= 0) h.proc[p] += n;
    }
  }
}

uint64_t mps_next_event(const SimShared& g, uint64_t t) {
  Held h;
  count_held(g, &h);
  uint64_t next = kNever;
  for (uint32_t k = 0; k < used(g); k++) {
    const SimCohort& c = g.cohorts[k];
    if (!cohort_valid(g, c)) continue;
    double left = std::max(0.0, c.remaining_ns) / rate(g, h, c.stream);
    next = std::min(next, t + static_cast<uint64_t>(std::ceil(left)));
  }
  return next;
}

void mps_run(SimShared& g, uint64_t t0, uint64_t t1) {
  Held h;
  count_held(g, &h);  // rates hold from t0 to t1: nothing retires in between
  double dt = static_cast<double>(t1 - t0);
  g.cohorts_used = used(g);
  for (uint32_t k = g.cohorts_used; k-- > 0;) {  // backwards: drop_cohort moves the last one
    SimCohort& c = g.cohorts[k];
    if (!cohort_valid(g, c)) {
      drop_cohort(g, k);
      continue;
    }
    c.remaining_ns -= dt * rate(g, h, c.stream);
    if (c.remaining_ns > kDoneNs) continue;
    SimOp& op = head(g, c.stream);
    op.resident -= c.blocks;
    uint32_t stream = c.stream;
    drop_cohort(g, k);
    if (op.resident == 0 && op.dispatched >= kernel_blocks(g, op)) complete(g, stream, t1);
  }
}

}  // namespace fikit::sim
