#include "sched/domains.h"

#include <algorithm>

namespace fikit::broker {

SchedCore& Domains::domain(uint32_t gpu) {
  if (cores_.size() <= gpu) cores_.resize(gpu + 1);
  if (!cores_[gpu]) {
    PolicyConfig cfg = gpu < per_gpu_.size() ? per_gpu_[gpu] : cfg_;
    cfg.gpu = gpu;
    cores_[gpu] = std::make_unique<SchedCore>(ops_, cfg);
    cores_[gpu]->set_idle_meter(meter_);
  }
  return *cores_[gpu];
}

void Domains::set_config(uint32_t gpu, const PolicyConfig& cfg) {
  while (per_gpu_.size() <= gpu) per_gpu_.push_back(cfg_);
  per_gpu_[gpu] = cfg;
}

void Domains::add(std::shared_ptr<const TenantDesc> desc, uint64_t now_ns) {
  uint32_t gpu = desc->gpu;
  domain(gpu).add(std::move(desc), now_ns);
}

bool Domains::remove(uint32_t id) {
  for (auto& c : cores_)
    if (c && c->remove(id)) return true;
  return false;
}

uint32_t Domains::poll(uint64_t now_ns) {
  uint32_t events = 0;
  for (auto& c : cores_)
    if (c) events += c->poll(now_ns);
  return events;
}

bool Domains::busy() const {
  return std::any_of(cores_.begin(), cores_.end(), [](auto& c) { return c && c->busy(); });
}

uint64_t Domains::wake_at_ns() const {
  uint64_t at = 0;
  for (auto& c : cores_)
    if (c && c->wake_at_ns() != 0 && (at == 0 || c->wake_at_ns() < at)) at = c->wake_at_ns();
  return at;
}

uint64_t Domains::quiet_until_ns() const {
  uint64_t at = 0;
  for (auto& c : cores_) {
    if (!c || !c->busy()) continue;
    uint64_t q = c->quiet_until_ns();
    if (q == 0) return 0;
    if (at == 0 || q < at) at = q;
  }
  return at;
}

void Domains::set_sleeping(bool sleeping) {
  for (auto& c : cores_)
    if (c) c->set_sleeping(sleeping);
}

size_t Domains::doorbells(struct futex_waitv* out, size_t max) const {
  size_t n = 0;
  for (auto& c : cores_)
    if (c && n < max) n += c->doorbells(out + n, max - n);
  return n;
}

bool Domains::rings_ready() const {
  return std::any_of(cores_.begin(), cores_.end(), [](auto& c) { return c && c->rings_ready(); });
}

size_t Domains::active_count() const {
  size_t n = 0;
  for (auto& c : cores_)
    if (c) n += c->active_count();
  return n;
}

std::vector<TenantStatus> Domains::status() const {
  std::vector<TenantStatus> out;
  for (auto& c : cores_)
    if (c) {
      std::vector<TenantStatus> s = c->status();
      out.insert(out.end(), std::make_move_iterator(s.begin()), std::make_move_iterator(s.end()));
    }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.id < b.id; });
  return out;
}

std::vector<TenantStatus> Domains::take_departed() {
  std::vector<TenantStatus> out;
  for (auto& c : cores_)
    if (c) {
      std::vector<TenantStatus> s = c->take_departed();
      out.insert(out.end(), std::make_move_iterator(s.begin()), std::make_move_iterator(s.end()));
    }
  return out;
}

void Domains::set_idle_meter(IdleMeter* meter) {
  meter_ = meter;
  for (auto& c : cores_)
    if (c) c->set_idle_meter(meter);
}

}  // namespace fikit::broker
