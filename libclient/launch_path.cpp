#include "launch_path.h"

#include <fikit/ring.h>
#include <unistd.h>

#include <cstddef>

#include "config.h"
#include "counters.h"
#include "drain.h"
#include "hook_table.h"
#include "kernel_ident.h"
#include "runtime.h"
#include "stream_slots.h"

namespace fikit::client {

namespace {

constexpr uint64_t kSpinNs = 20000;          // spin this long before sleeping on `granted`
constexpr uint64_t kFutexSliceNs = 2000000;  // re-check liveness at least this often
constexpr int kPushAttempts = 4096;          // LP bookkeeping entries: retry a full ring briefly
// HP records ring a sleeping broker's doorbell only once this many are unconsumed: a broker with no
// LP work dozes up to ~100 ms, and waking it on every HP launch would cost a system call each.
constexpr uint32_t kHpWakeBacklog = kRingEntries / 4;

// Wake the broker's scheduler if it sleeps on the doorbell.
void wake_broker(BrokerWords& b) noexcept {
  // Full fence: our ring commit must be visible before we read broker_sleeping, pairing with the
  // broker's "store sleeping; fence; re-check rings" (no lost wake-up).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (b.broker_sleeping.load(std::memory_order_relaxed)) {
    b.doorbell.fetch_add(1, std::memory_order_release);
    futex_wake(&b.doorbell, 1);
  }
}

// Push an LP bookkeeping entry, retrying briefly on a full ring; count it dropped if that fails.
// `wake`: ring a sleeping broker (not inside a burst: the broker reads those when it looks).
void push_reliably(Session* s, const EntryFields& f, bool wake) noexcept {
  for (int i = 0; i < kPushAttempts; i++) {
    uint32_t pos;
    if (ring__push(&s->seg->ring, f, &pos)) {
      if (wake) wake_broker(s->seg->broker);
      return;
    }
    if (!session_usable(s)) break;
    cpu_relax();
  }
  s->seg->client.dropped.fetch_add(1, std::memory_order_relaxed);
  count(g_counters.dropped);
}

// Enqueue "gpu_done[slot] = position + 1" on d's stream. Return true if enqueued.
bool enqueue_marker(Session* s, const LaunchDesc& d, uint16_t slot, uint32_t position) noexcept {
  auto write_value64 = driver().stream_write_value64;
  if (!write_value64) return false;
  CUdeviceptr addr =
      static_cast<CUdeviceptr>(s->slots_dev.load(std::memory_order_relaxed) +
                               slot * sizeof(StreamSlot) + offsetof(StreamSlot, gpu_done));
  uint32_t value = position + 1;
  if (write_value64(named_stream(d.stream, d.per_thread), addr, value,
                    CU_STREAM_WRITE_VALUE_DEFAULT) != CUDA_SUCCESS)
    return false;
  s->seg->client.markers.fetch_add(1, std::memory_order_relaxed);
  count(g_counters.markers);
  return true;
}

// Return true if the broker's LP burst (ABI 2.3) lets the request at `position` launch at once.
bool in_burst(const BrokerWords& b, uint32_t position, uint64_t now) noexcept {
  // Acquire pairs with the broker's release store of burst_until_ns, made after burst_end.
  uint64_t until = b.burst_until_ns.load(std::memory_order_acquire);
  if (until == 0 || now >= until) return false;
  return pos_at_or_after(b.burst_end.load(std::memory_order_relaxed), position + 1);
}

[[gnu::cold, gnu::noinline]] bool map_gpu_slow(Session* s) noexcept {
  uint32_t expected = static_cast<uint32_t>(GpuMap::kNone);
  if (!s->gpu_map.compare_exchange_strong(expected, static_cast<uint32_t>(GpuMap::kBusy)))
    return false;  // another thread is at it, or it failed for good
  const DriverOps& drv = driver();
  CUcontext ctx = nullptr;
  if (!drv.ctx_get_current || !drv.mem_host_register || !drv.mem_host_get_device_pointer) {
    s->gpu_map.store(static_cast<uint32_t>(GpuMap::kFailed), std::memory_order_release);
    FIKIT_LOG_WARN(
        "the driver lacks cuMemHostRegister/cuMemHostGetDevicePointer: no completion "
        "markers");
    return false;
  }
  if (drv.ctx_get_current(&ctx) != CUDA_SUCCESS || !ctx) {
    s->gpu_map.store(static_cast<uint32_t>(GpuMap::kNone), std::memory_order_release);
    return false;  // no context yet: try again on a later launch
  }
  void* page = s->seg->slots;
  size_t bytes = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  if (bytes < sizeof(s->seg->slots)) bytes = sizeof(s->seg->slots);
  CUresult r = drv.mem_host_register(page, bytes,
                                     CU_MEMHOSTREGISTER_DEVICEMAP | CU_MEMHOSTREGISTER_PORTABLE);
  CUdeviceptr dptr = 0;
  if (r == CUDA_SUCCESS || r == CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED)
    r = drv.mem_host_get_device_pointer(&dptr, page, 0);
  if (r != CUDA_SUCCESS) {
    s->gpu_error.store(static_cast<int>(r), std::memory_order_relaxed);
    s->gpu_map.store(static_cast<uint32_t>(GpuMap::kFailed), std::memory_order_release);
    FIKIT_LOG_WARN(
        "failed to register the completion-marker page with the GPU: CUresult %d; LP "
        "launches run without markers",
        static_cast<int>(r));
    return false;
  }
  s->slots_dev.store(static_cast<uint64_t>(dptr), std::memory_order_relaxed);
  // Release pairs with the acquire load in ensure_gpu_mapped: slots_dev is set.
  s->gpu_map.store(static_cast<uint32_t>(GpuMap::kMapped), std::memory_order_release);
  return true;
}

}  // namespace

bool ensure_gpu_mapped(Session* s) noexcept {
  uint32_t state = s->gpu_map.load(std::memory_order_acquire);
  if (state == static_cast<uint32_t>(GpuMap::kMapped)) return true;
  if (state != static_cast<uint32_t>(GpuMap::kNone)) return false;  // busy, or failed for good
  // Registering host memory during a stream capture can invalidate the capture.
  if (g_active_captures.load(std::memory_order_acquire) > 0) return false;
  return map_gpu_slow(s);
}

CUresult pass_through(Session* s, IssueFn issue, const void* args) noexcept {
  count(g_counters.passed_through);
  if (s) s->seg->client.passed_through.fetch_add(1, std::memory_order_relaxed);
  return issue(args);
}

LaunchKey identify(Session* s, const LaunchDesc& d) noexcept {
  LaunchKey k;
  k.slot = stream_slots().slot_for(d.stream, d.per_thread);
  char scratch[kKeyNameLen];
  const char* name;
  if (d.flags & kFlagGraph) {
    k.key = graph_key(d.graph);
    graph_name(d.graph, scratch);
    name = scratch;
  } else {
    KernelName n = kernel_names().lookup(d.fn, resolve_name_with_driver, scratch);
    k.key = kernel_key(n.hash, d.grid, d.block);
    name = n.name;
  }
  publish_key_name(&s->seg->names, &s->published, k.key, name);
  return k;
}

CUresult hp_launch(Session* s, const LaunchDesc& d, LaunchKey k, IssueFn issue,
                   const void* args) noexcept {
  Segment* seg = s->seg;
  uint32_t every = seg->broker.hp_marker_every.load(std::memory_order_relaxed);
  bool want_marker =
      every && (s->hp_launches.fetch_add(1, std::memory_order_relaxed) + 1) % every == 0;
  if (want_marker) want_marker = ensure_gpu_mapped(s);
  BrokerWords& b = seg->broker;
  // Announced before the driver call: the GPU starts on the work while the call may take long to
  // return (a graph launch: milliseconds measured on the simulated driver), and LP work the
  // broker lets in meanwhile runs beside it.
  seg->client.hp_issuing_ns.store(now_ns(), std::memory_order_relaxed);
  // The first launch after a drain starts a request: a sleeping broker must see it at once (LP
  // work it let into the gap, bursts above all, runs on until it does). The fence in
  // wake_broker orders the store above before it looks whether the broker sleeps.
  if (s->drained.load(std::memory_order_relaxed) &&
      s->drained.exchange(false, std::memory_order_relaxed))
    wake_broker(b);
  CUresult r = issue(args);
  if (r != CUDA_SUCCESS) {
    seg->client.hp_issuing_ns.store(0, std::memory_order_relaxed);
    return r;
  }
  uint32_t pos;
  if (!ring__reserve(&seg->ring, &pos)) {
    seg->client.dropped.fetch_add(1, std::memory_order_relaxed);
    count(g_counters.dropped);
    return r;
  }
  uint32_t flags = d.flags;
  if (want_marker && enqueue_marker(s, d, k.slot, pos)) flags |= kFlagMarker;
  ring__commit(&seg->ring, pos, {EntryKind::kHpLaunch, k.slot, 0, flags, k.key, now_ns()});
  note_issued(s, k.slot, pos);
  // No fence: a missed wake-up only delays the records until the next launch looks again.
  if (ring__pending(&seg->ring, pos) >= kHpWakeBacklog &&
      b.broker_sleeping.load(std::memory_order_relaxed)) {
    b.doorbell.fetch_add(1, std::memory_order_release);
    futex_wake(&b.doorbell, 1);
  }
  return r;
}

WaitResult wait_for_grant(Session* s, uint32_t position, uint64_t timeout_ns) noexcept {
  BrokerWords& b = s->seg->broker;
  const uint32_t target = position + 1;
  // Acquire pairs with the broker's release store of granted.
  if (pos_at_or_after(b.granted.load(std::memory_order_acquire), target))
    return WaitResult::kGranted;
  count(g_counters.lp_waits);
  const uint64_t start = now_ns();
  for (uint32_t i = 1;; i++) {
    if (pos_at_or_after(b.granted.load(std::memory_order_acquire), target))
      return WaitResult::kGranted;
    if ((i & 63) == 0 && now_ns() - start > kSpinNs) break;
    cpu_relax();
  }
  for (;;) {
    if (!session_usable(s)) return WaitResult::kFailOpen;
    uint64_t now = now_ns();
    uint64_t beat = b.heartbeat_ns.load(std::memory_order_acquire);
    // A broker that slept may not have beaten for a while: count from our request at the latest.
    uint64_t since = beat > start ? beat : start;
    if (now > since && now - since > timeout_ns) {
      s->stale_heartbeat.store(beat ? beat : 1, std::memory_order_relaxed);
      return WaitResult::kFailOpen;
    }
    b.waiters.fetch_add(1, std::memory_order_seq_cst);
    // Full fence: waiters is visible before we re-read granted, pairing with the broker's
    // "store granted; fence; read waiters" (no lost wake-up).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    uint32_t seen = b.granted.load(std::memory_order_acquire);
    if (!pos_at_or_after(seen, target)) futex_wait(&b.granted, seen, kFutexSliceNs);
    b.waiters.fetch_sub(1, std::memory_order_seq_cst);
    if (pos_at_or_after(b.granted.load(std::memory_order_acquire), target))
      return WaitResult::kGranted;
  }
}

CUresult lp_launch(Session* s, const LaunchDesc& d, LaunchKey k, IssueFn issue,
                   const void* args) noexcept {
  Segment* seg = s->seg;
  BrokerWords& b = seg->broker;
  // The broker was found hung and has not beaten since: do not wait for it again.
  uint64_t stale = s->stale_heartbeat.load(std::memory_order_relaxed);
  if (stale) {
    uint64_t beat = b.heartbeat_ns.load(std::memory_order_acquire);
    if (beat == stale || (stale == 1 && beat == 0)) return pass_through(s, issue, args);
    s->stale_heartbeat.store(0, std::memory_order_relaxed);
  }
  bool can_mark = ensure_gpu_mapped(s);  // before the request: registering may take a while
  uint32_t pos;
  if (!ring__reserve(&seg->ring, &pos)) return pass_through(s, issue, args);
  const uint64_t asked = now_ns();
  // Inside the broker's burst the request is its own grant: launch at once, wake nobody.
  const bool burst = in_burst(b, pos, asked);
  ring__commit(
      &seg->ring, pos,
      {EntryKind::kLpRequest, k.slot, 0, d.flags | (burst ? kFlagBurst : 0), k.key, asked});
  if (burst) {
    count(g_counters.lp_burst);
  } else {
    wake_broker(b);
    if (wait_for_grant(s, pos, config_broker_timeout_ns()) != WaitResult::kGranted)
      return pass_through(s, issue, args);
  }
  CUresult r = issue(args);
  if (r != CUDA_SUCCESS) {
    push_reliably(s, {EntryKind::kLpAbort, k.slot, pos, d.flags, k.key, now_ns()}, !burst);
    return r;
  }
  uint32_t flags = d.flags;
  if (can_mark && enqueue_marker(s, d, k.slot, pos)) flags |= kFlagMarker;
  push_reliably(s, {EntryKind::kLpLaunched, k.slot, pos, flags, k.key, now_ns()}, !burst);
  note_issued(s, k.slot, pos);
  return r;
}

CUresult launch_gated(const LaunchDesc& d, IssueFn issue, const void* args) noexcept {
  count(g_counters.launches);
  Session* s = session_for_current_gpu();
  if (s) s->seg->client.launches.fetch_add(1, std::memory_order_relaxed);
  if (!session_usable(s) || may_be_capturing(d.stream, d.per_thread))
    return pass_through(s, issue, args);
  LaunchKey k = identify(s, d);
  if (s->priority == kPriorityHigh) return hp_launch(s, d, k, issue, args);
  return lp_launch(s, d, k, issue, args);
}

}  // namespace fikit::client
