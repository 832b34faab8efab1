// Ring push/pop cost: one thread pushing and popping (no contention), and a producer thread against
// a consumer.
#include <benchmark/benchmark.h>
#include <fikit/ring.h>

#include <atomic>
#include <memory>
#include <thread>

namespace fikit {
namespace {

std::unique_ptr<Segment> t_segment() {
  auto seg = std::make_unique<Segment>();
  segment_init(seg.get(), 1, 1, kPriorityHigh, "bench");
  return seg;
}

const EntryFields kFields{EntryKind::kHpLaunch, 0, 0, 0, 42, 1};

void BM_RingPushPop(benchmark::State& state) {
  auto seg = t_segment();
  SubmitRing* ring = &seg->ring;
  uint32_t head = 0, pos;
  EntryCopy c;
  for (auto _ : state) {
    ring__push(ring, kFields, &pos);
    benchmark::DoNotOptimize(ring__peek(ring, head, &c));
    ring__consume(ring, ++head);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RingPushPop);

// Push cost seen by a producer while another thread consumes as fast as it can.
void BM_RingPushContended(benchmark::State& state) {
  auto seg = t_segment();
  SubmitRing* ring = &seg->ring;
  std::atomic<bool> stop{false};
  std::thread consumer([&] {
    uint32_t head = 0;
    EntryCopy c;
    while (!stop.load(std::memory_order_relaxed)) {
      if (ring__peek(ring, head, &c) == PeekResult::kReady) ring__consume(ring, ++head);
    }
  });
  uint32_t pos;
  for (auto _ : state) {
    while (!ring__push(ring, kFields, &pos)) {
    }
  }
  stop = true;
  consumer.join();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RingPushContended);

}  // namespace
}  // namespace fikit
