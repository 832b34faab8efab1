// Launch and grant rates of each tenant for `status`: its counts now against the newest earlier
// status sample at least 1 s old (samples are kept for a minute), or since it registered when
// there is none. Under `watch fikit-broker status` the rates are over the refresh interval; a
// first status shows the average since each tenant registered. Control thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <unordered_map>
#include <vector>

#include "sched/tenant.h"

namespace fikit::broker {

struct TenantRate {
  double launches_per_s = 0;
  double grants_per_s = 0;
  double window_s = 0;  // what the rates are over
};

class TenantRates {
 public:
  // The rates of `tenants` at now_ns; the sample is kept for later calls.
  std::unordered_map<uint32_t, TenantRate> update(const std::vector<TenantStatus>& tenants,
                                                  uint64_t now_ns);

 private:
  struct Counts {
    uint64_t launches = 0;
    uint64_t granted = 0;
  };
  struct Sample {
    uint64_t t_ns = 0;
    std::unordered_map<uint32_t, Counts> by_id;
  };
  std::deque<Sample> samples_;  // oldest first, at least kMinWindowNs apart
};

}  // namespace fikit::broker
