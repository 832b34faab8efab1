// Process-local counters (fikit_get_stats). Relaxed atomics: statistics, not synchronisation.
#pragma once

#include <atomic>
#include <cstdint>

namespace fikit::client {

struct ProcessCounters {
  std::atomic<uint64_t> launches{0};        // launches intercepted
  std::atomic<uint64_t> passed_through{0};  // launched without the broker
  std::atomic<uint64_t> dropped{0};         // HP records lost to a full ring
  std::atomic<uint64_t> lp_waits{0};        // LP launches that waited for a grant
  std::atomic<uint64_t> lp_burst{0};        // LP launches made at once inside a broker burst
  std::atomic<uint64_t> reconnects{0};      // successful (re)registrations
  std::atomic<uint64_t> markers{0};         // completion markers enqueued
  std::atomic<uint64_t> drains{0};          // drains published
};

inline constinit ProcessCounters g_counters;

inline void count(std::atomic<uint64_t>& c) noexcept { c.fetch_add(1, std::memory_order_relaxed); }

}  // namespace fikit::client
