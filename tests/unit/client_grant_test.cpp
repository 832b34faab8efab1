// The launch paths against an in-process segment, with a thread playing the broker: HP records and
// sampled markers, LP request/grant/launch/marker bookkeeping, aborts, and every way an LP waiter
// fails open (tenant closed, session dead, stale heartbeat). Driver calls go to fakes.
#include <fikit/ring.h>
#include <fikit/util.h>
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include "counters.h"
#include "drain.h"
#include "hook_table.h"
#include "launch_path.h"
#include "runtime.h"
#include "stream_slots.h"

namespace fikit::client {
namespace {

// ---- fake driver ----
struct t_Marker {
  CUstream stream;
  CUdeviceptr addr;
  uint64_t value;
};
std::vector<t_Marker> t_markers;
std::atomic<int> t_capture_status{CU_STREAM_CAPTURE_STATUS_NONE};

CUresult t_write_value64(CUstream s, CUdeviceptr a, cuuint64_t v, unsigned int) {
  t_markers.push_back({s, a, v});
  return CUDA_SUCCESS;
}
CUresult t_ctx_get_current(CUcontext* c) {
  *c = reinterpret_cast<CUcontext>(0x1);
  return CUDA_SUCCESS;
}
CUresult t_register(void*, size_t, unsigned int) { return CUDA_SUCCESS; }
CUresult t_device_pointer(CUdeviceptr* d, void* p, unsigned int) {
  *d = reinterpret_cast<CUdeviceptr>(p);
  return CUDA_SUCCESS;
}
CUresult t_is_capturing(CUstream, CUstreamCaptureStatus* st) {
  *st = static_cast<CUstreamCaptureStatus>(t_capture_status.load());
  return CUDA_SUCCESS;
}
CUresult t_func_get_name(const char** name, CUfunction) {
  *name = "my_kernel";
  return CUDA_SUCCESS;
}
const DriverOps t_ops = {t_func_get_name, nullptr,          t_is_capturing,    t_write_value64,
                         t_register,      t_device_pointer, t_ctx_get_current, nullptr,
                         nullptr,         nullptr};

// ---- fake launches ----
struct t_Launch {
  std::atomic<int> calls{0};
  CUresult result = CUDA_SUCCESS;
  const BrokerWords* broker = nullptr;
  uint32_t granted_at_issue = 0;
  const Segment* seg = nullptr;  // set: what the broker could see during the driver call
  uint64_t issuing_at_issue = 0;
  uint32_t doorbell_at_issue = 0;
};
CUresult t_issue(const void* p) noexcept {
  auto* l = const_cast<t_Launch*>(static_cast<const t_Launch*>(p));
  if (l->broker) l->granted_at_issue = l->broker->granted.load();
  if (l->seg) {
    l->issuing_at_issue = l->seg->client.hp_issuing_ns.load();
    l->doorbell_at_issue = l->seg->broker.doorbell.load();
  }
  l->calls++;
  return l->result;
}

struct t_Tenant {
  Segment* seg;
  Session* s;
  explicit t_Tenant(uint32_t priority) {
    void* p =
        mmap(nullptr, sizeof(Segment), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(p, MAP_FAILED);
    seg = static_cast<Segment*>(p);
    segment_init(seg, 3, getpid(), priority, "grant-test");
    seg->broker.state.store(static_cast<uint32_t>(TenantState::kActive));
    seg->broker.heartbeat_ns.store(now_ns());
    s = session_create(seg, sizeof(Segment), -1, 1);
  }
  ~t_Tenant() { munmap(seg, sizeof(Segment)); }

  // All published entries, in order.
  std::vector<EntryCopy> entries() const {
    std::vector<EntryCopy> out;
    EntryCopy c;
    for (uint32_t h = 0; ring__peek(&seg->ring, h, &c) == PeekResult::kReady; h++) out.push_back(c);
    return out;
  }
};

class LaunchPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    driver_override_for_test(&t_ops);
    t_markers.clear();
    t_capture_status = CU_STREAM_CAPTURE_STATUS_NONE;
  }
  void TearDown() override { driver_override_for_test(nullptr); }

  LaunchDesc desc(uintptr_t stream) {
    return LaunchDesc{reinterpret_cast<CUstream>(stream),
                      false,
                      reinterpret_cast<CUfunction>(0x99),
                      0,
                      {8, 1, 1},
                      {256, 1, 1},
                      0};
  }
};

// Wait (with a generous deadline) until `cond` holds.
bool t_eventually(const std::function<bool()>& cond) {
  uint64_t deadline = now_ns() + 20'000'000'000ull;
  while (!cond()) {
    if (now_ns() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

TEST_F(LaunchPathTest, HpLaunchesThenRecordsAndSamplesMarkers) {
  t_Tenant t(kPriorityHigh);
  t.seg->broker.hp_marker_every.store(2);
  t_Launch l;
  LaunchDesc d = desc(0);
  for (int i = 0; i < 3; i++) EXPECT_EQ(hp_launch(t.s, d, {77, 0}, t_issue, &l), CUDA_SUCCESS);
  EXPECT_EQ(l.calls.load(), 3);
  auto e = t.entries();
  ASSERT_EQ(e.size(), 3u);
  for (uint32_t i = 0; i < 3; i++) {
    EXPECT_EQ(e[i].kind, static_cast<uint16_t>(EntryKind::kHpLaunch));
    EXPECT_EQ(e[i].kernel_key, 77u);
    EXPECT_EQ(e[i].stream_slot, 0);
    EXPECT_NE(e[i].t_ns, 0u);
  }
  EXPECT_EQ(e[0].flags, 0u);
  EXPECT_EQ(e[1].flags, kFlagMarker);  // the 2nd launch of 1 in 2
  EXPECT_EQ(e[2].flags, 0u);
  ASSERT_EQ(t_markers.size(), 1u);
  EXPECT_EQ(t_markers[0].addr, reinterpret_cast<CUdeviceptr>(&t.seg->slots[0].gpu_done));
  EXPECT_EQ(t_markers[0].value, 2u);  // position 1 + 1
  EXPECT_EQ(t.s->issued[0].load(), 3u);
}

TEST_F(LaunchPathTest, HpWakesASleepingBrokerOnlyOnABacklog) {
  t_Tenant t(kPriorityHigh);
  t_Launch l;
  t.seg->broker.broker_sleeping.store(1);
  for (uint32_t i = 0; i < kRingEntries / 8; i++) hp_launch(t.s, desc(0), {1, 0}, t_issue, &l);
  EXPECT_EQ(t.seg->broker.doorbell.load(), 0u);  // a short backlog waits for the broker's timeout
  for (uint32_t i = 0; i < kRingEntries / 4; i++) hp_launch(t.s, desc(0), {1, 0}, t_issue, &l);
  EXPECT_GT(t.seg->broker.doorbell.load(), 0u);  // a long one wakes it before the ring fills
  t.seg->broker.broker_sleeping.store(0);
  uint32_t rung = t.seg->broker.doorbell.load();
  hp_launch(t.s, desc(0), {1, 0}, t_issue, &l);
  EXPECT_EQ(t.seg->broker.doorbell.load(), rung);  // an awake broker is not rung
  EXPECT_EQ(t.seg->client.dropped.load(), 0u);
}

// ABI 2.3: the launch that starts an HP request (the first after a drain) rings a sleeping
// broker, so that it sees the HP back at once; the launches after it do not.
TEST_F(LaunchPathTest, HpRequestsFirstLaunchRingsASleepingBroker) {
  t_Tenant t(kPriorityHigh);
  t_Launch l;
  BrokerWords& b = t.seg->broker;
  b.broker_sleeping.store(1);
  hp_launch(t.s, desc(0), {1, 0}, t_issue, &l);
  EXPECT_EQ(b.doorbell.load(), 0u);  // no drain yet
  drain_slot(t.s, 0, t.s->issued[0].load(), false);
  uint32_t rung = b.doorbell.load();  // the drain rings a sleeping broker itself (2.2)
  hp_launch(t.s, desc(0), {1, 0}, t_issue, &l);
  EXPECT_EQ(b.doorbell.load(), rung + 1);
  hp_launch(t.s, desc(0), {1, 0}, t_issue, &l);
  EXPECT_EQ(b.doorbell.load(), rung + 1);
  b.broker_sleeping.store(0);  // an awake broker is not rung, and the request stays started
  drain_slot(t.s, 0, t.s->issued[0].load(), false);
  hp_launch(t.s, desc(0), {1, 0}, t_issue, &l);
  b.broker_sleeping.store(1);
  hp_launch(t.s, desc(0), {1, 0}, t_issue, &l);
  EXPECT_EQ(b.doorbell.load(), rung + 1);
}

// ABI 2.4: the broker can tell the HP is busy while its driver call runs (a graph launch can take
// milliseconds to return, the GPU running its first kernels all the while), and a request's first
// launch wakes a sleeping broker before that call.
TEST_F(LaunchPathTest, HpLaunchIsAnnouncedBeforeItsDriverCall) {
  t_Tenant t(kPriorityHigh);
  t_Launch l;
  l.seg = t.seg;
  BrokerWords& b = t.seg->broker;
  hp_launch(t.s, desc(0), {1, 0}, t_issue, &l);  // a request ...
  b.broker_sleeping.store(1);
  drain_slot(t.s, 0, t.s->issued[0].load(), false);  // ... drained
  uint32_t rung = b.doorbell.load();
  uint64_t before = now_ns();
  ASSERT_EQ(hp_launch(t.s, desc(0), {1, 0}, t_issue, &l), CUDA_SUCCESS);
  EXPECT_GE(l.issuing_at_issue, before) << "announced before the driver call";
  EXPECT_EQ(l.doorbell_at_issue, rung + 1) << "the sleeping broker woken before the call";
  std::vector<EntryCopy> e = t.entries();
  ASSERT_EQ(e.size(), 2u);
  EXPECT_GE(e[1].t_ns, l.issuing_at_issue) << "its record covers the announcement";
  l.result = CUDA_ERROR_INVALID_VALUE;
  EXPECT_EQ(hp_launch(t.s, desc(0), {1, 0}, t_issue, &l), CUDA_ERROR_INVALID_VALUE);
  EXPECT_GT(l.issuing_at_issue, 0u);
  EXPECT_EQ(t.seg->client.hp_issuing_ns.load(), 0u) << "a failed call is withdrawn";
}

TEST_F(LaunchPathTest, HpFailedLaunchIsNotRecorded) {
  t_Tenant t(kPriorityHigh);
  t_Launch l;
  l.result = CUDA_ERROR_INVALID_VALUE;
  EXPECT_EQ(hp_launch(t.s, desc(0), {1, 0}, t_issue, &l), CUDA_ERROR_INVALID_VALUE);
  EXPECT_TRUE(t.entries().empty());
}

TEST_F(LaunchPathTest, HpFullRingDropsAndCounts) {
  t_Tenant t(kPriorityHigh);
  t.seg->ring.tail.store(kRingEntries);  // head 0: full
  t_Launch l;
  uint64_t dropped = g_counters.dropped.load();
  EXPECT_EQ(hp_launch(t.s, desc(0), {1, 0}, t_issue, &l), CUDA_SUCCESS);
  EXPECT_EQ(l.calls.load(), 1);
  EXPECT_EQ(t.seg->client.dropped.load(), 1u);
  EXPECT_EQ(g_counters.dropped.load(), dropped + 1);
}

// Plays the broker: grants every LP request it sees, as the real one would.
void t_grant_all(t_Tenant* t, int requests) {
  uint32_t head = 0;
  EntryCopy c;
  for (int seen = 0; seen < requests;) {
    if (ring__peek(&t->seg->ring, head, &c) != PeekResult::kReady) {
      std::this_thread::yield();
      continue;
    }
    head++;
    if (c.kind != static_cast<uint16_t>(EntryKind::kLpRequest)) continue;
    seen++;
    BrokerWords& b = t->seg->broker;
    b.heartbeat_ns.store(now_ns());
    b.granted.store(c.position + 1, std::memory_order_release);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (b.waiters.load()) futex_wake(&b.granted, INT32_MAX);
  }
}

TEST_F(LaunchPathTest, LpWaitsForTheGrantThenLaunchesWithAMarker) {
  t_Tenant t(kPriorityLow);
  t_Launch l;
  l.broker = &t.seg->broker;
  std::thread broker(t_grant_all, &t, 2);
  LaunchDesc d = desc(0x5000);
  uint16_t slot = stream_slots().slot_for(d.stream, false);
  EXPECT_EQ(lp_launch(t.s, d, {42, slot}, t_issue, &l), CUDA_SUCCESS);
  EXPECT_EQ(l.granted_at_issue, 1u);  // issued only once position 0 was granted
  EXPECT_EQ(lp_launch(t.s, d, {42, slot}, t_issue, &l), CUDA_SUCCESS);
  broker.join();
  EXPECT_EQ(l.calls.load(), 2);
  auto e = t.entries();
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(e[0].kind, static_cast<uint16_t>(EntryKind::kLpRequest));
  EXPECT_EQ(e[0].stream_slot, slot);
  EXPECT_EQ(e[1].kind, static_cast<uint16_t>(EntryKind::kLpLaunched));
  EXPECT_EQ(e[1].ref, 0u);
  EXPECT_EQ(e[1].flags, kFlagMarker);
  EXPECT_EQ(e[3].ref, e[2].position);
  ASSERT_EQ(t_markers.size(), 2u);
  EXPECT_EQ(t_markers[0].addr, reinterpret_cast<CUdeviceptr>(&t.seg->slots[slot].gpu_done));
  EXPECT_EQ(t_markers[0].value, 1u);
  EXPECT_EQ(t_markers[1].value, e[2].position + 1);
  EXPECT_EQ(t_markers[0].stream, d.stream);
  EXPECT_EQ(t.s->issued[slot].load(), e[2].position + 1);
}

TEST_F(LaunchPathTest, LpFailedLaunchAbortsItsGrant) {
  t_Tenant t(kPriorityLow);
  t_Launch l;
  l.result = CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES;
  std::thread broker(t_grant_all, &t, 1);
  EXPECT_EQ(lp_launch(t.s, desc(0), {5, 0}, t_issue, &l), CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES);
  broker.join();
  auto e = t.entries();
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[1].kind, static_cast<uint16_t>(EntryKind::kLpAbort));
  EXPECT_EQ(e[1].ref, e[0].position);
  EXPECT_TRUE(t_markers.empty());
  EXPECT_EQ(t.s->issued[0].load(), 0u);
}

// Inside the broker's burst an LP launch is its own grant: no wait, no doorbell, kFlagBurst on
// the request; past burst_end, or once the deadline passed, it asks and waits as before.
TEST_F(LaunchPathTest, LpLaunchesAtOnceInsideABurstAndWakesNobody) {
  t_Tenant t(kPriorityLow);
  t_Launch l;
  l.broker = &t.seg->broker;
  BrokerWords& b = t.seg->broker;
  b.broker_sleeping.store(1);
  b.burst_end.store(4);  // positions 0..3: two launches (request, launched)
  b.burst_until_ns.store(now_ns() + 60'000'000'000ull);
  uint64_t bursts = g_counters.lp_burst.load();
  for (int i = 0; i < 2; i++) EXPECT_EQ(lp_launch(t.s, desc(0), {9, 0}, t_issue, &l), CUDA_SUCCESS);
  EXPECT_EQ(l.calls.load(), 2);
  EXPECT_EQ(l.granted_at_issue, 0u);  // never granted: the burst let them in
  EXPECT_EQ(b.doorbell.load(), 0u);
  EXPECT_EQ(g_counters.lp_burst.load(), bursts + 2);
  auto e = t.entries();
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(e[0].flags & kFlagBurst, kFlagBurst);
  EXPECT_EQ(e[1].kind, static_cast<uint16_t>(EntryKind::kLpLaunched));
  EXPECT_EQ(e[1].flags & kFlagBurst, 0u);  // only requests carry it
  EXPECT_EQ(e[2].flags & kFlagBurst, kFlagBurst);
  // Position 4 is past the burst: it waits for its grant and rings the sleeping broker (which
  // also "grants" the two burst requests it reads first, long launched).
  std::thread broker(t_grant_all, &t, 5);
  EXPECT_EQ(lp_launch(t.s, desc(0), {9, 0}, t_issue, &l), CUDA_SUCCESS);
  EXPECT_EQ(l.granted_at_issue, 5u);
  EXPECT_GT(b.doorbell.load(), 0u);
  EXPECT_EQ(t.entries()[4].flags & kFlagBurst, 0u);
  // A burst whose deadline passed lets nothing in, whatever its positions.
  b.burst_end.store(100);
  b.burst_until_ns.store(now_ns() - 1);
  EXPECT_EQ(lp_launch(t.s, desc(0), {9, 0}, t_issue, &l), CUDA_SUCCESS);
  EXPECT_EQ(l.granted_at_issue, 7u);
  b.burst_until_ns.store(0);  // closed
  EXPECT_EQ(lp_launch(t.s, desc(0), {9, 0}, t_issue, &l), CUDA_SUCCESS);
  broker.join();
  EXPECT_EQ(l.granted_at_issue, 9u);
  EXPECT_EQ(g_counters.lp_burst.load(), bursts + 2);
}

TEST_F(LaunchPathTest, LpWaiterFailsOpenWhenTheTenantIsClosed) {
  t_Tenant t(kPriorityLow);
  t_Launch l;
  uint64_t passed = g_counters.passed_through.load();
  std::thread broker([&] {
    // Keep the heartbeat fresh until the waiter sleeps, then close the tenant.
    ASSERT_TRUE(t_eventually([&] {
      t.seg->broker.heartbeat_ns.store(now_ns());
      return t.seg->broker.waiters.load() > 0;
    }));
    t.seg->broker.state.store(static_cast<uint32_t>(TenantState::kClosed));
    futex_wake(&t.seg->broker.granted, INT32_MAX);
  });
  EXPECT_EQ(lp_launch(t.s, desc(0), {5, 0}, t_issue, &l), CUDA_SUCCESS);
  broker.join();
  EXPECT_EQ(l.calls.load(), 1);
  EXPECT_EQ(t.seg->broker.granted.load(), 0u);  // launched without a grant
  EXPECT_EQ(g_counters.passed_through.load(), passed + 1);
  EXPECT_EQ(t.seg->client.passed_through.load(), 1u);
  auto e = t.entries();
  ASSERT_EQ(e.size(), 1u);  // the request only: no kLpLaunched for an ungranted launch
}

TEST_F(LaunchPathTest, LpWaiterFailsOpenWhenTheSessionDies) {
  t_Tenant t(kPriorityLow);
  std::thread monitor([&] {
    ASSERT_TRUE(t_eventually([&] {
      t.seg->broker.heartbeat_ns.store(now_ns());
      return t.seg->broker.waiters.load() > 0;
    }));
    session_mark_dead(t.s);
  });
  EXPECT_EQ(wait_for_grant(t.s, 0, 60'000'000'000ull), WaitResult::kFailOpen);
  monitor.join();
}

TEST_F(LaunchPathTest, StaleHeartbeatFailsOpenAndLatches) {
  t_Tenant t(kPriorityLow);
  t.seg->broker.heartbeat_ns.store(now_ns() - 5'000'000'000ull);  // a hung broker
  EXPECT_EQ(wait_for_grant(t.s, 0, 1'000'000), WaitResult::kFailOpen);
  // The broker is still silent: later LP launches do not wait (and push nothing).
  t_Launch l;
  size_t before = t.entries().size();
  EXPECT_EQ(lp_launch(t.s, desc(0), {5, 0}, t_issue, &l), CUDA_SUCCESS);
  EXPECT_EQ(l.calls.load(), 1);
  EXPECT_EQ(t.entries().size(), before);
  // Once it beats again, LP launches ask for grants again.
  t.seg->broker.heartbeat_ns.store(now_ns());
  std::thread broker(t_grant_all, &t, 1);
  EXPECT_EQ(lp_launch(t.s, desc(0), {5, 0}, t_issue, &l), CUDA_SUCCESS);
  broker.join();
  EXPECT_EQ(t.entries().back().kind, static_cast<uint16_t>(EntryKind::kLpLaunched));
}

TEST_F(LaunchPathTest, BeatingBrokerKeepsTheWaiterWaiting) {
  t_Tenant t(kPriorityLow);
  constexpr uint64_t kTimeout = 300'000'000;
  std::thread broker([&] {
    // Beat for longer than the waiter's timeout after it went to sleep, then grant.
    uint64_t asleep = 0;
    ASSERT_TRUE(t_eventually([&] {
      uint64_t now = now_ns();
      t.seg->broker.heartbeat_ns.store(now);
      if (!asleep && t.seg->broker.waiters.load() > 0) asleep = now;
      return asleep && now - asleep > 3 * kTimeout;
    }));
    t.seg->broker.granted.store(1);
    futex_wake(&t.seg->broker.granted, INT32_MAX);
  });
  EXPECT_EQ(wait_for_grant(t.s, 0, kTimeout), WaitResult::kGranted);
  broker.join();
}

TEST_F(LaunchPathTest, GatedLaunchPublishesKeyNameAndPassesCapturesThrough) {
  t_Tenant t(kPriorityHigh);
  runtime_use_session_for_test(t.s);
  t_Launch l;
  LaunchDesc d = desc(0);
  EXPECT_EQ(launch_gated(d, t_issue, &l), CUDA_SUCCESS);
  uint64_t key = kernel_key(hash_name("my_kernel"), d.grid, d.block);
  ASSERT_EQ(t.entries().size(), 1u);
  EXPECT_EQ(t.entries()[0].kernel_key, key);
  ASSERT_EQ(t.seg->names.claimed.load(), 1u);
  EXPECT_EQ(t.seg->names.entries[0].kernel_key.load(), key);
  EXPECT_STREQ(t.seg->names.entries[0].name, "my_kernel");

  g_active_captures = 1;
  t_capture_status = CU_STREAM_CAPTURE_STATUS_ACTIVE;
  EXPECT_EQ(launch_gated(d, t_issue, &l), CUDA_SUCCESS);
  EXPECT_EQ(t.entries().size(), 1u);  // nothing pushed for a captured launch
  EXPECT_EQ(t.seg->client.passed_through.load(), 1u);
  t_capture_status = CU_STREAM_CAPTURE_STATUS_NONE;  // another stream captures: this one is managed
  EXPECT_EQ(launch_gated(d, t_issue, &l), CUDA_SUCCESS);
  EXPECT_EQ(t.entries().size(), 2u);
  g_active_captures = 0;

  t.seg->broker.state.store(static_cast<uint32_t>(TenantState::kFaulty));
  EXPECT_EQ(launch_gated(d, t_issue, &l), CUDA_SUCCESS);  // faulty: fail open
  EXPECT_EQ(t.entries().size(), 2u);
  EXPECT_EQ(l.calls.load(), 4);
  EXPECT_EQ(t.seg->client.launches.load(), 4u);
  runtime_use_session_for_test(nullptr);
}

TEST_F(LaunchPathTest, GraphLaunchUsesTheGraphKey) {
  t_Tenant t(kPriorityHigh);
  runtime_use_session_for_test(t.s);
  t_Launch l;
  LaunchDesc d{nullptr, true, nullptr, 0xfeed, {}, {}, kFlagGraph};
  EXPECT_EQ(launch_gated(d, t_issue, &l), CUDA_SUCCESS);
  auto e = t.entries();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].kernel_key, graph_key(0xfeed));
  EXPECT_EQ(e[0].flags, kFlagGraph);
  EXPECT_EQ(e[0].stream_slot, kPerThreadSlot);
  EXPECT_STREQ(t.seg->names.entries[0].name, "graph@0xfeed");
  runtime_use_session_for_test(nullptr);
}

}  // namespace
}  // namespace fikit::client
