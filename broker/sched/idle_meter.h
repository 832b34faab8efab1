// HP idleness accuracy (--hp-marker-every N): how much of the HP tenants' true GPU idle time the
// broker recognizes as drained, and how late.
//
// The broker asks every HP tenant for a completion marker after 1 in N launches (N = 1 for every
// launch; each costs ~2 us of GPU time on the HP stream, so this is a measurement mode). On the
// scheduler thread the core hands the meter each HP record it consumes (on_hp_record); after each
// round the meter reads the stream slots' completion words, and splits the HP timeline into gaps:
//   true idle start  the round that sees the markers cover every launch issued so far;
//   drain seen       host_done_ns when the host's synchronizing calls covered them all;
//   gap end          the next HP launch (its record's t_ns).
// A gap's recognized time is end - max(drain, idle start) (0 if no drain came before the end);
// its lateness is drain - idle start (negative when the host saw the end before the meter saw
// the marker). While an HP tenant is measured the scheduler keeps polling (one core), so marker
// times are exact to a round (microseconds). With N > 1 only gaps after a marked launch count:
// a sample of the gaps.
#pragma once

#include <fikit/abi.h>

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sched/tenant.h"

namespace fikit::broker {

inline constexpr uint64_t kLongGapNs = 50'000;  // gaps this long are reported apart (fillable)
// Lateness histogram: bucket 0 counts negative lateness; bucket i >= 1 lateness below
// 0.5 us * 2^((i - 1) / 4) (four buckets per octave, up to ~220 ms); the last one the rest.
// Cumulative, so that two status snapshots give the lateness of the time between them. JSON:
// late_hist (counts) and late_hist_edges_us (edge i: upper edge of bucket i; 0 for bucket 0).
inline constexpr size_t kLateBuckets = 78;

// Gaps and their recognition, with the latest lateness samples.
class IdleAccount {
 public:
  void add(uint64_t idle_ns, bool drained, uint64_t recognized_ns, int64_t late_ns);
  // n HP records the meter never saw (dropped by the client: its ring was full).
  void merge_lost(uint64_t n) { lost_records_ += n; }
  // The summary as a JSON object (keys in docs: gaps, idle_ms, recognized_share, late_p50_us...).
  std::string json(uint32_t marker_every) const;
  // One line for the log.
  std::string line() const;
  uint64_t gaps() const { return gaps_; }

 private:
  double late_us(double q) const;

  uint64_t gaps_ = 0, idle_ns_ = 0, drained_ = 0, recognized_ns_ = 0;
  uint64_t long_gaps_ = 0, long_idle_ns_ = 0, long_drained_ = 0, long_recognized_ns_ = 0;
  uint64_t lost_records_ = 0;
  std::array<uint64_t, kLateBuckets> hist_{};
  std::vector<int64_t> late_;  // ring of the latest kMaxSamples lateness values
  size_t late_next_ = 0;
};

class IdleMeter {
 public:
  explicit IdleMeter(uint32_t marker_every) : every_(marker_every) {}
  uint32_t marker_every() const { return every_; }

  // Scheduler thread. add() ignores tenants below the highest priority and sets their marker
  // sampling; remove() logs the tenant's account.
  void add(const std::shared_ptr<const TenantDesc>& d);
  void remove(uint32_t id);
  // The core consumed HP record `position` of tenant `id` (ignored for tenants not measured).
  void on_hp_record(uint32_t id, uint16_t slot, uint32_t position, uint64_t t_ns);
  void poll(uint64_t now_ns);
  // True while an HP tenant is measured: the scheduler then polls without sleeping.
  bool active() const { return !tenants_.empty(); }

  // Any thread: the account over every HP tenant so far.
  std::string summary_json() const;
  std::string summary_line() const;

 private:
  struct Slot {
    uint32_t last_pos = 0;  // latest HP launch on this slot
    uint64_t last_t_ns = 0;
  };
  struct Tenant {
    std::shared_ptr<const TenantDesc> desc;
    uint64_t dropped_seen = 0;   // ClientCounters::dropped already counted lost
    uint64_t gpu_pending = 0;    // slots whose latest launch no marker covers yet
    uint64_t host_pending = 0;   // slots whose latest launch no drain covers yet
    bool busy = false;           // launched since the last idle start
    bool draining = false;       // launched since the last drain
    uint64_t idle_since_ns = 0;  // true idle start of the open gap (0: none)
    uint64_t drain_ns = 0;       // drain of the open gap (0: none)
    uint64_t drain_latest_ns = 0;
    std::array<Slot, kStreamSlots> slots{};
    IdleAccount account;
  };

  void count_dropped(Tenant& t);
  void on_launch(Tenant& t, uint16_t slot, uint32_t position, uint64_t t_ns);
  void close_gap(Tenant& t, uint64_t end_ns);
  void check_markers(Tenant& t, uint64_t now_ns);
  void check_drains(Tenant& t, uint64_t now_ns);

  const uint32_t every_;
  std::vector<std::unique_ptr<Tenant>> tenants_;
  mutable std::mutex mu_;  // guards total_
  IdleAccount total_;
};

}  // namespace fikit::broker
