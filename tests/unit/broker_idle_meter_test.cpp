// The HP idleness meter (broker/sched/idle_meter.h) on an in-process segment: records pushed as
// the client would and handed to the meter as the scheduler core does when it consumes them,
// completion words written by hand, rounds at chosen times. Exact numbers.
#include <fikit/ring.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "sched/idle_meter.h"
#include "t_segment.h"

namespace fikit::broker {
namespace {

using nlohmann::json;

// One tenant's segment (t_segment.h), with ring and completion helpers.
struct t_Tenant : t_Segment {
  explicit t_Tenant(uint32_t priority, uint32_t id = 1) : t_Segment(id, priority, "t") {}

  // Tell `m` of this tenant; its records go to `m` from now on.
  void join(IdleMeter& m) {
    meter = &m;
    m.add(desc);
  }
  // An HP launch record at t_ns on `slot`, consumed at once; returns its position.
  uint32_t launch(uint64_t t_ns, uint16_t slot = 0) {
    uint32_t pos = 0;
    EXPECT_TRUE(
        ring__push(&seg->ring, {EntryKind::kHpLaunch, slot, 0, kFlagMarker, 7, t_ns}, &pos));
    if (meter) meter->on_hp_record(desc->id, slot, pos, t_ns);
    return pos;
  }
  void marker(uint32_t pos, uint16_t slot = 0) { seg->slots[slot].gpu_done.store(pos + 1); }
  void drain(uint32_t pos, uint64_t at_ns, uint16_t slot = 0) {
    seg->slots[slot].host_done.store(pos + 1);
    seg->slots[slot].host_done_ns.store(at_ns);
  }

  IdleMeter* meter = nullptr;
};

json summary(const IdleMeter& m) { return json::parse(m.summary_json()); }

TEST(IdleMeter, MeasuresTrueIdleRecognitionAndLateness) {
  t_Tenant t(kPriorityHigh);
  IdleMeter m(1);
  t.join(m);
  EXPECT_TRUE(m.active());
  EXPECT_EQ(t.seg->broker.hp_marker_every.load(), 1u);
  // Gap 1 (long): the kernel ends at 2 us (marker seen), the host drains at 2.5 us, the next
  // launch comes at 100 us.
  uint32_t a = t.launch(1'000);
  m.poll(1'100);
  t.marker(a);
  m.poll(2'000);
  t.drain(a, 2'500);
  m.poll(2'600);
  uint32_t b = t.launch(100'000);
  m.poll(100'100);
  // Gap 2 (short, never drained): marker seen at 101 us, next launch at 102 us.
  t.marker(b);
  m.poll(101'000);
  t.launch(102'000);
  m.poll(102'100);
  json s = summary(m);
  EXPECT_EQ(s["gaps"], 2);
  EXPECT_DOUBLE_EQ(s["idle_ms"].get<double>(), (98'000 + 1'000) / 1e6);
  EXPECT_EQ(s["drained_gaps"], 1);
  EXPECT_DOUBLE_EQ(s["recognized_ms"].get<double>(), 97'500 / 1e6);
  EXPECT_DOUBLE_EQ(s["recognized_share"].get<double>(), 97'500.0 / 99'000);
  EXPECT_DOUBLE_EQ(s["late_p50_us"].get<double>(), 0.5);
  EXPECT_EQ(s["long_gaps"], 1);
  EXPECT_DOUBLE_EQ(s["long_recognized_share"].get<double>(), 97'500.0 / 98'000);
  EXPECT_EQ(s["marker_every"], 1);
  // The histogram: 0.5 us falls in [0.5, 0.59) us, bucket 2; its edges come along.
  ASSERT_EQ(s["late_hist"].size(), kLateBuckets);
  EXPECT_EQ(s["late_hist"][2], 1);
  EXPECT_DOUBLE_EQ(s["late_hist_edges_us"][1].get<double>(), 0.5);
  EXPECT_GT(s["late_hist_edges_us"][2].get<double>(), 0.5);
  EXPECT_EQ(s["late_hist_edges_us"].size(), kLateBuckets - 1);
  m.remove(1);
  EXPECT_FALSE(m.active());
  EXPECT_EQ(summary(m)["gaps"], 2);  // the total outlives the tenant
}

TEST(IdleMeter, DrainBeforeTheMarkerIsSeenIsEarlyNotLate) {
  t_Tenant t(kPriorityHigh);
  IdleMeter m(1);
  t.join(m);
  uint32_t a = t.launch(1'000);
  m.poll(1'100);
  t.drain(a, 5'000);
  t.marker(a);
  m.poll(6'000);  // both seen in one round: the host's time is earlier than the round's
  t.launch(20'000);
  m.poll(20'100);
  json s = summary(m);
  EXPECT_EQ(s["gaps"], 1);
  EXPECT_DOUBLE_EQ(s["late_p50_us"].get<double>(), -1.0);
  EXPECT_EQ(s["late_hist"][0], 1);  // early
  EXPECT_DOUBLE_EQ(s["recognized_share"].get<double>(), 1.0);
}

TEST(IdleMeter, WaitsForEveryStreamAndForTheDrainTime) {
  t_Tenant t(kPriorityHigh);
  IdleMeter m(1);
  t.join(m);
  uint32_t a = t.launch(1'000, 0);
  uint32_t b = t.launch(1'500, 3);
  t.marker(a, 0);
  m.poll(2'000);  // slot 3 still runs: not idle
  t.marker(b, 3);
  m.poll(3'000);  // idle from here
  t.drain(a, 3'100, 0);
  // Slot 3's position is drained, but its time word still holds an older time: not yet.
  t.seg->slots[3].host_done.store(b + 1);
  t.seg->slots[3].host_done_ns.store(500);
  m.poll(3'200);
  t.seg->slots[3].host_done_ns.store(3'300);
  m.poll(3'400);
  t.launch(10'000, 0);
  m.poll(10'100);
  json s = summary(m);
  EXPECT_EQ(s["gaps"], 1);
  EXPECT_DOUBLE_EQ(s["idle_ms"].get<double>(), 7'000 / 1e6);
  EXPECT_DOUBLE_EQ(s["recognized_ms"].get<double>(), 6'700 / 1e6);
  EXPECT_DOUBLE_EQ(s["late_p50_us"].get<double>(), 0.3);
}

TEST(IdleMeter, IgnoresLowerPrioritiesAndKeepsItsMarkerRate) {
  t_Tenant lp(kPriorityLow, 2);
  t_Tenant hp(kPriorityHigh, 3);
  IdleMeter m(4);
  lp.join(m);
  EXPECT_FALSE(m.active());
  EXPECT_EQ(lp.seg->broker.hp_marker_every.load(), 0u);
  hp.join(m);
  EXPECT_EQ(hp.seg->broker.hp_marker_every.load(), 4u);
  hp.seg->broker.hp_marker_every.store(16);  // a policy sampling more sparsely
  m.poll(1'000);
  EXPECT_EQ(hp.seg->broker.hp_marker_every.load(), 4u);
  hp.seg->broker.hp_marker_every.store(2);  // or more densely: kept
  m.poll(2'000);
  EXPECT_EQ(hp.seg->broker.hp_marker_every.load(), 2u);
}

TEST(IdleMeter, OffMeasuresNothing) {
  t_Tenant t(kPriorityHigh);
  IdleMeter m(0);
  t.join(m);
  EXPECT_FALSE(m.active());
  EXPECT_EQ(t.seg->broker.hp_marker_every.load(), 0u);
  EXPECT_EQ(summary(m)["gaps"], 0);
  EXPECT_TRUE(summary(m)["recognized_share"].is_null());
}

}  // namespace
}  // namespace fikit::broker
