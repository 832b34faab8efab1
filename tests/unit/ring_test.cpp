// Submission ring: single-thread semantics, validation, and two-thread / multi-producer /
// two-process stress with sequence checks.
#include <fikit/ring.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <thread>
#include <vector>

namespace fikit {
namespace {

// A zeroed, initialised segment in shared anonymous memory (visible across fork).
struct t_SharedSegment {
  Segment* seg;
  t_SharedSegment() {
    void* p =
        mmap(nullptr, sizeof(Segment), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(p, MAP_FAILED);
    seg = static_cast<Segment*>(p);
    segment_init(seg, 7, getpid(), kPriorityLow, "ring-test");
  }
  ~t_SharedSegment() { munmap(seg, sizeof(Segment)); }
  SubmitRing* ring() { return &seg->ring; }
};

EntryFields t_fields(uint64_t key) {
  return EntryFields{EntryKind::kHpLaunch, 3, 0, 0, key, 1000 + key};
}

TEST(Ring, EmptyThenOneEntry) {
  t_SharedSegment s;
  EntryCopy c{};
  EXPECT_EQ(ring__peek(s.ring(), 0, &c), PeekResult::kEmpty);
  uint32_t pos = 99;
  ASSERT_TRUE(ring__push(s.ring(), t_fields(42), &pos));
  EXPECT_EQ(pos, 0u);
  ASSERT_EQ(ring__peek(s.ring(), 0, &c), PeekResult::kReady);
  EXPECT_EQ(c.position, 0u);
  EXPECT_EQ(c.kernel_key, 42u);
  EXPECT_EQ(c.stream_slot, 3u);
  EXPECT_EQ(c.t_ns, 1042u);
  EXPECT_EQ(c.kind, static_cast<uint16_t>(EntryKind::kHpLaunch));
  ring__consume(s.ring(), 1);
  EXPECT_EQ(ring__peek(s.ring(), 1, &c), PeekResult::kEmpty);
}

TEST(Ring, FullRingRefusesAndRecoversAfterConsume) {
  t_SharedSegment s;
  uint32_t pos;
  for (uint32_t i = 0; i < kRingEntries; i++)
    ASSERT_TRUE(ring__push(s.ring(), t_fields(i + 1), &pos));
  EXPECT_FALSE(ring__push(s.ring(), t_fields(1), &pos));
  EntryCopy c;
  ASSERT_EQ(ring__peek(s.ring(), 0, &c), PeekResult::kReady);
  ring__consume(s.ring(), 1);
  ASSERT_TRUE(ring__push(s.ring(), t_fields(777), &pos));
  EXPECT_EQ(pos, kRingEntries);
  // The reused slot holds the new lap's entry, not the old one.
  ASSERT_EQ(ring__peek(s.ring(), kRingEntries, &c), PeekResult::kReady);
  EXPECT_EQ(c.kernel_key, 777u);
}

TEST(Ring, CorruptCommitIsDetected) {
  t_SharedSegment s;
  uint32_t pos;
  ASSERT_TRUE(ring__push(s.ring(), t_fields(1), &pos));
  s.ring()->entries[0].commit.store(12345);  // a client scribbling on its ring
  EntryCopy c;
  EXPECT_EQ(ring__peek(s.ring(), 0, &c), PeekResult::kCorrupt);
  // An entry published for a later lap at this slot is out of order: corrupt too.
  s.ring()->entries[0].commit.store(kRingEntries + 1);
  EXPECT_EQ(ring__peek(s.ring(), 0, &c), PeekResult::kCorrupt);
}

TEST(Ring, EntryCheckRejectsMalformedFields) {
  EntryCopy e{0, static_cast<uint16_t>(EntryKind::kLpRequest), 0, 0, 0, 1, 1};
  EXPECT_EQ(entry__check(e), nullptr);
  e.kind = 0;
  EXPECT_NE(entry__check(e), nullptr);
  e.kind = kEntryKindMax + 1;
  EXPECT_NE(entry__check(e), nullptr);
  e.kind = static_cast<uint16_t>(EntryKind::kHpLaunch);
  e.stream_slot = kStreamSlots;
  EXPECT_NE(entry__check(e), nullptr);
  e.stream_slot = 0;
  e.flags = 1u << 31;
  EXPECT_NE(entry__check(e), nullptr);
}

TEST(Ring, PositionOrderWraps) {
  EXPECT_TRUE(pos_at_or_after(5, 5));
  EXPECT_TRUE(pos_at_or_after(6, 5));
  EXPECT_FALSE(pos_at_or_after(4, 5));
  EXPECT_TRUE(pos_at_or_after(2, 0xfffffff0u));  // after wrap-around
  EXPECT_FALSE(pos_at_or_after(0xfffffff0u, 2));
}

// Consume `total` entries, checking that each producer's keys arrive in order, with no loss or
// duplicate. Keys are (producer << 32) | sequence, sequence from 1.
void t_consume_and_check(SubmitRing* ring, uint32_t producers, uint64_t per_producer) {
  std::vector<uint64_t> next(producers, 1);
  uint64_t total = producers * per_producer;
  uint32_t head = 0;
  for (uint64_t got = 0; got < total;) {
    EntryCopy c;
    PeekResult r = ring__peek(ring, head, &c);
    ASSERT_NE(r, PeekResult::kCorrupt) << "at position " << head;
    if (r == PeekResult::kEmpty) {
      std::this_thread::yield();
      continue;
    }
    uint32_t producer = static_cast<uint32_t>(c.kernel_key >> 32);
    uint64_t seq = c.kernel_key & 0xffffffffu;
    ASSERT_LT(producer, producers);
    ASSERT_EQ(seq, next[producer]) << "producer " << producer << " out of order or lost an entry";
    ASSERT_EQ(c.position, head);
    next[producer]++;
    ring__consume(ring, ++head);
    got++;
  }
  for (uint32_t p = 0; p < producers; p++) EXPECT_EQ(next[p], per_producer + 1);
}

void t_produce(SubmitRing* ring, uint32_t producer, uint64_t count) {
  for (uint64_t i = 1; i <= count; i++) {
    uint32_t pos;
    while (!ring__push(ring, t_fields((uint64_t{producer} << 32) | i), &pos))
      std::this_thread::yield();
  }
}

TEST(RingStress, TwoThreads) {
  t_SharedSegment s;
  constexpr uint64_t kCount = 500000;
  std::thread producer(t_produce, s.ring(), 0, kCount);
  t_consume_and_check(s.ring(), 1, kCount);
  producer.join();
}

TEST(RingStress, FourProducerThreads) {
  t_SharedSegment s;
  constexpr uint32_t kProducers = 4;
  constexpr uint64_t kCount = 100000;
  std::vector<std::thread> threads;
  for (uint32_t p = 0; p < kProducers; p++) threads.emplace_back(t_produce, s.ring(), p, kCount);
  t_consume_and_check(s.ring(), kProducers, kCount);
  for (auto& t : threads) t.join();
}

TEST(RingStress, TwoProcesses) {
  t_SharedSegment s;
  constexpr uint64_t kCount = 300000;
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    t_produce(s.ring(), 0, kCount);
    _exit(0);
  }
  t_consume_and_check(s.ring(), 1, kCount);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(Segment, CheckAcceptsOwnAndRejectsForeign) {
  t_SharedSegment s;
  EXPECT_EQ(segment_check(s.seg, sizeof(Segment)), nullptr);
  EXPECT_NE(segment_check(s.seg, sizeof(Segment) - 1), nullptr);
  s.seg->hdr.abi_major = kAbiMajor + 1;
  EXPECT_NE(segment_check(s.seg, sizeof(Segment)), nullptr);
  s.seg->hdr.abi_major = kAbiMajor;
  s.seg->hdr.magic = 0;
  EXPECT_NE(segment_check(s.seg, sizeof(Segment)), nullptr);
  EXPECT_STREQ(s.seg->hdr.name, "ring-test");
}

}  // namespace
}  // namespace fikit
