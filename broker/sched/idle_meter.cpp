#include "sched/idle_meter.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/log.h"

namespace fikit::broker {
namespace {

constexpr size_t kMaxSamples = 1 << 16;
// A drain whose time word still predates the launch it covers is read again next round; after
// this long the round's time stands in.
constexpr uint64_t kStaleDrainNs = 1'000'000;

bool covers(uint32_t done, uint32_t position) {
  return done != 0 && pos_at_or_after(done, position + 1);
}

double ms(uint64_t ns) { return static_cast<double>(ns) / 1e6; }

// Upper edge of histogram bucket i >= 1, in microseconds.
double bucket_edge_us(size_t i) { return 0.5 * std::exp2(static_cast<double>(i - 1) / 4); }

size_t bucket_of(int64_t late_ns) {
  if (late_ns < 0) return 0;
  double us = static_cast<double>(late_ns) / 1e3;
  size_t i = 1;
  while (i + 1 < kLateBuckets && us >= bucket_edge_us(i)) i++;
  return i;
}

// share = part / whole, or null when there is no whole.
nlohmann::json share(uint64_t part, uint64_t whole) {
  if (whole == 0) return nullptr;
  return static_cast<double>(part) / static_cast<double>(whole);
}

}  // namespace

void IdleAccount::add(uint64_t idle_ns, bool drained, uint64_t recognized_ns, int64_t late_ns) {
  bool long_gap = idle_ns >= kLongGapNs;
  gaps_++;
  idle_ns_ += idle_ns;
  long_gaps_ += long_gap;
  long_idle_ns_ += long_gap ? idle_ns : 0;
  if (!drained) return;
  drained_++;
  recognized_ns_ += recognized_ns;
  long_drained_ += long_gap;
  long_recognized_ns_ += long_gap ? recognized_ns : 0;
  hist_[bucket_of(late_ns)]++;
  if (late_.size() < kMaxSamples)
    late_.push_back(late_ns);
  else
    late_[late_next_++ % kMaxSamples] = late_ns;
}

double IdleAccount::late_us(double q) const {
  if (late_.empty()) return 0;
  std::vector<int64_t> v = late_;
  size_t rank = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(rank), v.end());
  return static_cast<double>(v[rank]) / 1e3;
}

std::string IdleAccount::json(uint32_t marker_every) const {
  nlohmann::json j{{"marker_every", marker_every},
                   {"gaps", gaps_},
                   {"idle_ms", ms(idle_ns_)},
                   {"drained_gaps", drained_},
                   {"recognized_ms", ms(recognized_ns_)},
                   {"recognized_share", share(recognized_ns_, idle_ns_)},
                   {"drained_share", share(drained_, gaps_)},
                   {"late_samples", late_.size()},
                   {"late_p50_us", late_us(0.5)},
                   {"late_p90_us", late_us(0.9)},
                   {"late_p99_us", late_us(0.99)},
                   {"long_gap_us", kLongGapNs / 1000},
                   {"long_gaps", long_gaps_},
                   {"long_idle_ms", ms(long_idle_ns_)},
                   {"long_drained_gaps", long_drained_},
                   {"long_recognized_ms", ms(long_recognized_ns_)},
                   {"long_recognized_share", share(long_recognized_ns_, long_idle_ns_)},
                   {"lost_records", lost_records_},
                   {"late_hist", hist_}};
  nlohmann::json edges = nlohmann::json::array({0.0});
  for (size_t i = 1; i + 1 < kLateBuckets; i++) edges.push_back(bucket_edge_us(i));
  j["late_hist_edges_us"] = std::move(edges);
  return j.dump();
}

std::string IdleAccount::line() const {
  char buf[320];
  auto pct = [](uint64_t a, uint64_t b) { return b ? 100.0 * static_cast<double>(a) / b : 0.0; };
  snprintf(buf, sizeof(buf),
           "%llu gaps, %.1f ms idle, %.1f%% recognized (%llu drained); lateness p50 %.1f us, "
           "p99 %.1f us; gaps >= %llu us: %llu, %.1f%% recognized",
           static_cast<unsigned long long>(gaps_), ms(idle_ns_), pct(recognized_ns_, idle_ns_),
           static_cast<unsigned long long>(drained_), late_us(0.5), late_us(0.99),
           static_cast<unsigned long long>(kLongGapNs / 1000),
           static_cast<unsigned long long>(long_gaps_), pct(long_recognized_ns_, long_idle_ns_));
  return buf;
}

void IdleMeter::add(const std::shared_ptr<const TenantDesc>& d) {
  if (d->priority != kPriorityHigh || every_ == 0) return;
  auto t = std::make_unique<Tenant>();
  t->desc = d;
  t->dropped_seen = d->seg->client.dropped.load(std::memory_order_relaxed);
  d->seg->broker.hp_marker_every.store(every_, std::memory_order_relaxed);
  FIKIT_LOG_INFO("tenant %u (pid %d): HP idleness measured, a marker after 1 in %u launches", d->id,
                 d->pid, every_);
  tenants_.push_back(std::move(t));
}

void IdleMeter::remove(uint32_t id) {
  auto it = std::find_if(tenants_.begin(), tenants_.end(),
                         [id](const auto& t) { return t->desc->id == id; });
  if (it == tenants_.end()) return;
  count_dropped(**it);
  const TenantDesc& d = *(*it)->desc;
  FIKIT_LOG_INFO("tenant %u (pid %d, \"%s\") HP idleness: %s", d.id, d.pid, d.name.c_str(),
                 (*it)->account.line().c_str());
  tenants_.erase(it);
}

void IdleMeter::on_hp_record(uint32_t id, uint16_t slot, uint32_t position, uint64_t t_ns) {
  for (auto& t : tenants_)
    if (t->desc->id == id && slot < kStreamSlots) return on_launch(*t, slot, position, t_ns);
}

void IdleMeter::poll(uint64_t now_ns) {
  for (auto& t : tenants_) {
    // A policy may sample HP launches more sparsely: measuring needs at least our rate.
    std::atomic<uint32_t>& every = t->desc->seg->broker.hp_marker_every;
    uint32_t cur = every.load(std::memory_order_relaxed);
    if (cur == 0 || cur > every_) every.store(every_, std::memory_order_relaxed);
    count_dropped(*t);
    check_markers(*t, now_ns);
    check_drains(*t, now_ns);
  }
}

// Records the client dropped (full ring) never reach the core: their gaps are unmeasurable.
void IdleMeter::count_dropped(Tenant& t) {
  uint64_t dropped = t.desc->seg->client.dropped.load(std::memory_order_relaxed);
  if (dropped <= t.dropped_seen) return;
  uint64_t lost = dropped - t.dropped_seen;
  t.dropped_seen = dropped;
  t.account.merge_lost(lost);
  std::lock_guard<std::mutex> lock(mu_);
  total_.merge_lost(lost);
}

void IdleMeter::on_launch(Tenant& t, uint16_t slot, uint32_t position, uint64_t t_ns) {
  close_gap(t, t_ns);
  t.slots[slot] = Slot{position, t_ns};
  t.gpu_pending |= uint64_t{1} << slot;
  t.host_pending |= uint64_t{1} << slot;
  t.busy = t.draining = true;
  t.idle_since_ns = t.drain_ns = t.drain_latest_ns = 0;
}

void IdleMeter::close_gap(Tenant& t, uint64_t end_ns) {
  if (t.idle_since_ns == 0 || end_ns <= t.idle_since_ns) return;
  uint64_t idle = end_ns - t.idle_since_ns;
  bool drained = t.drain_ns != 0 && t.drain_ns < end_ns;
  uint64_t recognized = drained ? end_ns - std::max(t.drain_ns, t.idle_since_ns) : 0;
  int64_t late = drained ? static_cast<int64_t>(t.drain_ns - t.idle_since_ns) : 0;
  t.account.add(idle, drained, recognized, late);
  std::lock_guard<std::mutex> lock(mu_);
  total_.add(idle, drained, recognized, late);
}

void IdleMeter::check_markers(Tenant& t, uint64_t now_ns) {
  Segment* seg = t.desc->seg;
  for (uint64_t bits = t.gpu_pending; bits != 0; bits &= bits - 1) {
    uint32_t i = static_cast<uint32_t>(__builtin_ctzll(bits));
    // Acquire pairs with the marker's write (made visible by the driver); 32 bits keep the
    // free-running position order.
    uint32_t gpu = static_cast<uint32_t>(seg->slots[i].gpu_done.load(std::memory_order_acquire));
    if (covers(gpu, t.slots[i].last_pos)) t.gpu_pending &= ~(uint64_t{1} << i);
  }
  if (t.gpu_pending == 0 && t.busy) {
    t.busy = false;
    t.idle_since_ns = now_ns;
  }
}

void IdleMeter::check_drains(Tenant& t, uint64_t now_ns) {
  Segment* seg = t.desc->seg;
  for (uint64_t bits = t.host_pending; bits != 0; bits &= bits - 1) {
    uint32_t i = static_cast<uint32_t>(__builtin_ctzll(bits));
    StreamSlot& s = seg->slots[i];
    // Acquire pairs with the client's release store of host_done; its time follows it.
    if (!covers(s.host_done.load(std::memory_order_acquire), t.slots[i].last_pos)) continue;
    uint64_t at = s.host_done_ns.load(std::memory_order_acquire);
    if (at < t.slots[i].last_t_ns) {
      if (now_ns < t.slots[i].last_t_ns + kStaleDrainNs) continue;  // its time is on its way
      at = now_ns;
    }
    t.host_pending &= ~(uint64_t{1} << i);
    t.drain_latest_ns = std::max(t.drain_latest_ns, at);
  }
  if (t.host_pending == 0 && t.draining) {
    t.draining = false;
    t.drain_ns = t.drain_latest_ns;
  }
}

std::string IdleMeter::summary_json() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_.json(every_);
}

std::string IdleMeter::summary_line() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_.line();
}

}  // namespace fikit::broker
