// Stream slots (default streams, hashed slots, overflow, concurrent insertion), the event table,
// and drains (host_done raised monotonically to the snapshot taken before a sync).
#include <fikit/abi.h>
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <set>
#include <thread>
#include <vector>

#include "drain.h"
#include "event_table.h"
#include "stream_slots.h"

namespace fikit::client {
namespace {

CUstream t_stream(uintptr_t v) { return reinterpret_cast<CUstream>(v); }

TEST(StreamSlots, DefaultStreams) {
  StreamSlots t;
  EXPECT_EQ(t.slot_for(nullptr, false), kLegacySlot);
  EXPECT_EQ(t.slot_for(nullptr, true), kPerThreadSlot);
  EXPECT_EQ(t.slot_for(CU_STREAM_LEGACY, false), kLegacySlot);
  EXPECT_EQ(t.slot_for(CU_STREAM_LEGACY, true), kLegacySlot);
  EXPECT_EQ(t.slot_for(CU_STREAM_PER_THREAD, false), kPerThreadSlot);
  EXPECT_EQ(t.slot_for(CU_STREAM_PER_THREAD, true), kPerThreadSlot);
  EXPECT_EQ(t.find(nullptr, true), kPerThreadSlot);
}

TEST(StreamSlots, StreamsGetDistinctStableSlots) {
  StreamSlots t;
  EXPECT_EQ(t.find(t_stream(0x5000), false), -1);
  std::set<uint16_t> used;
  for (uintptr_t i = 1; i <= 20; i++) {
    uint16_t slot = t.slot_for(t_stream(i * 0x1000), false);
    EXPECT_GE(slot, kFirstHashedSlot);
    EXPECT_LT(slot, kOverflowSlot);
    EXPECT_TRUE(used.insert(slot).second) << "slot reused: " << slot;
    EXPECT_EQ(t.slot_for(t_stream(i * 0x1000), true), slot);  // ptsz: same handle, same slot
    EXPECT_EQ(t.find(t_stream(i * 0x1000), false), slot);
  }
}

TEST(StreamSlots, OverflowSharesTheLastSlot) {
  StreamSlots t;
  const uint32_t hashed = kOverflowSlot - kFirstHashedSlot;
  std::set<uint16_t> used;
  for (uintptr_t i = 1; i <= hashed; i++) used.insert(t.slot_for(t_stream(i * 0x100), false));
  EXPECT_EQ(used.size(), hashed);
  EXPECT_EQ(used.count(kOverflowSlot), 0u);
  EXPECT_EQ(t.slot_for(t_stream(0xdead00), false), kOverflowSlot);
  EXPECT_EQ(t.slot_for(t_stream(0xbeef00), false), kOverflowSlot);
  EXPECT_EQ(t.find(t_stream(0xbeef00), false), kOverflowSlot);
  uint16_t first = t.slot_for(t_stream(0x100), false);  // streams seen before keep their slot
  EXPECT_NE(first, kOverflowSlot);
  EXPECT_EQ(used.count(first), 1u);
}

TEST(StreamSlots, ConcurrentInsertionAgrees) {
  StreamSlots t;
  constexpr int kThreads = 6;
  constexpr uintptr_t kStreams = 40;
  std::vector<std::vector<uint16_t>> got(kThreads, std::vector<uint16_t>(kStreams));
  std::vector<std::thread> threads;
  for (int th = 0; th < kThreads; th++) {
    threads.emplace_back([th, &t, &got] {
      std::vector<uintptr_t> order(kStreams);
      for (uintptr_t i = 0; i < kStreams; i++) order[i] = i;
      std::rotate(order.begin(), order.begin() + (th * 7) % kStreams, order.end());
      for (uintptr_t i : order) got[th][i] = t.slot_for(t_stream((i + 1) * 0x40), th % 2);
    });
  }
  for (auto& x : threads) x.join();
  std::set<uint16_t> distinct;
  for (uintptr_t i = 0; i < kStreams; i++) {
    for (int th = 1; th < kThreads; th++) EXPECT_EQ(got[th][i], got[0][i]) << i;
    distinct.insert(got[0][i]);
  }
  EXPECT_EQ(distinct.size(), kStreams);  // 40 < 61 hashed slots: no sharing
}

TEST(EventTable, RecordFindAndOverwrite) {
  EventTable t;
  CUevent e = reinterpret_cast<CUevent>(0x7000);
  EventMark m{};
  EXPECT_FALSE(t.find(e, &m));
  t.record(e, {5, 2, 17});
  ASSERT_TRUE(t.find(e, &m));
  EXPECT_EQ(m.slot, 5);
  EXPECT_EQ(m.generation, 2);
  EXPECT_EQ(m.issued, 17u);
  t.record(e, {0, 3, 0});  // re-recorded on an untracked stream
  ASSERT_TRUE(t.find(e, &m));
  EXPECT_EQ(m.generation, 3);
  EXPECT_EQ(m.issued, 0u);
  EXPECT_FALSE(t.find(reinterpret_cast<CUevent>(0x7040), &m));
}

struct t_Session {
  Segment* seg;
  Session* s;
  t_Session() {
    void* p =
        mmap(nullptr, sizeof(Segment), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(p, MAP_FAILED);
    seg = static_cast<Segment*>(p);
    segment_init(seg, 1, getpid(), kPriorityHigh, "slots-test");
    s = session_create(seg, sizeof(Segment), -1, 1);
  }
  ~t_Session() { munmap(seg, sizeof(Segment)); }
};

TEST(Drain, RaisesHostDoneToTheSnapshotOnly) {
  t_Session t;
  uint16_t slot = 4;
  EXPECT_EQ(issued_snapshot(t.s, slot), 0u);
  note_issued(t.s, slot, 9);
  note_issued(t.s, slot, 7);  // a racing older launch must not lower it
  uint32_t snap = issued_snapshot(t.s, slot);
  EXPECT_EQ(snap, 10u);
  note_issued(t.s, slot, 12);  // issued after the snapshot: not drained by this sync
  drain_slot(t.s, slot, snap);
  EXPECT_EQ(t.seg->slots[slot].host_done.load(), 10u);
  EXPECT_NE(t.seg->slots[slot].host_done_ns.load(), 0u);
  drain_slot(t.s, slot, 3);  // an older snapshot never lowers it
  EXPECT_EQ(t.seg->slots[slot].host_done.load(), 10u);
  drain_slot(t.s, slot, issued_snapshot(t.s, slot));
  EXPECT_EQ(t.seg->slots[slot].host_done.load(), 13u);
  EXPECT_EQ(t.seg->client.syncs.load(), 2u);
}

// A drain ends an HP request: it rings the doorbell of a broker that said it sleeps, and only
// then (a broker awake sees it in its next round; a system call per sync would be waste).
TEST(Drain, RingsTheDoorbellOnlyOfASleepingBroker) {
  t_Session t;
  note_issued(t.s, 1, 0);
  drain_slot(t.s, 1, issued_snapshot(t.s, 1));
  EXPECT_EQ(t.seg->broker.doorbell.load(), 0u);
  t.seg->broker.broker_sleeping.store(1);
  note_issued(t.s, 1, 1);
  drain_slot(t.s, 1, issued_snapshot(t.s, 1));
  EXPECT_EQ(t.seg->broker.doorbell.load(), 1u);
  drain_slot(t.s, 1, issued_snapshot(t.s, 1));  // nothing new drained: no ring
  EXPECT_EQ(t.seg->broker.doorbell.load(), 1u);
}

TEST(Drain, OverflowSlotOnlyDrainsForTheWholeContext) {
  t_Session t;
  note_issued(t.s, kOverflowSlot, 4);
  drain_slot(t.s, kOverflowSlot, issued_snapshot(t.s, kOverflowSlot));
  EXPECT_EQ(t.seg->slots[kOverflowSlot].host_done.load(), 0u);
  drain_slot(t.s, kOverflowSlot, issued_snapshot(t.s, kOverflowSlot), /*whole_context=*/true);
  EXPECT_EQ(t.seg->slots[kOverflowSlot].host_done.load(), 5u);
}

TEST(Drain, DeadSessionAndNoSessionPublishNothing) {
  t_Session t;
  note_issued(t.s, 2, 0);
  drain_slot(nullptr, 2, 1);
  t.s->dead.store(true);
  drain_slot(t.s, 2, issued_snapshot(t.s, 2));
  EXPECT_EQ(t.seg->slots[2].host_done.load(), 0u);
}

}  // namespace
}  // namespace fikit::client
