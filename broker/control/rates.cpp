#include "control/rates.h"

namespace fikit::broker {
namespace {

constexpr uint64_t kMinWindowNs = 1'000'000'000;
constexpr uint64_t kKeepNs = 60'000'000'000;

double per_s(uint64_t now, uint64_t then, double dt_s) {
  return dt_s > 0 && now >= then ? static_cast<double>(now - then) / dt_s : 0.0;
}

}  // namespace

std::unordered_map<uint32_t, TenantRate> TenantRates::update(
    const std::vector<TenantStatus>& tenants, uint64_t now_ns) {
  // The newest sample at least kMinWindowNs old.
  const Sample* base = nullptr;
  for (auto it = samples_.rbegin(); it != samples_.rend(); ++it)
    if (it->t_ns + kMinWindowNs <= now_ns) {
      base = &*it;
      break;
    }
  std::unordered_map<uint32_t, TenantRate> out;
  for (const TenantStatus& t : tenants) {
    uint64_t since = t.admitted_ns;
    Counts then;
    if (base && base->t_ns >= t.admitted_ns) {
      if (auto it = base->by_id.find(t.id); it != base->by_id.end()) {
        since = base->t_ns;
        then = it->second;
      }
    }
    const double dt = since < now_ns ? static_cast<double>(now_ns - since) * 1e-9 : 0.0;
    out[t.id] = {per_s(t.launches, then.launches, dt), per_s(t.granted, then.granted, dt), dt};
  }
  if (samples_.empty() || samples_.back().t_ns + kMinWindowNs <= now_ns) {
    Sample s{now_ns, {}};
    for (const TenantStatus& t : tenants) s.by_id[t.id] = {t.launches, t.granted};
    samples_.push_back(std::move(s));
  }
  while (samples_.size() > 1 && samples_.front().t_ns + kKeepNs < now_ns) samples_.pop_front();
  return out;
}

}  // namespace fikit::broker
