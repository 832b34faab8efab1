// A latency histogram with fixed buckets, in the Prometheus way (upper bounds in base units for
// the metrics' `le`): cheap to add to on the scheduler thread, copied into status documents.
#pragma once

#include <array>
#include <cstdint>

namespace fikit::broker {

struct LatencyHistogram {
  // Upper bounds in ns: 10 us to 1 s; above the last: the +Inf bucket.
  static constexpr std::array<uint64_t, 15> kUpperNs = {
      10'000,     25'000,     50'000,      100'000,     250'000,
      500'000,    1'000'000,  2'500'000,   5'000'000,   10'000'000,
      25'000'000, 50'000'000, 100'000'000, 250'000'000, 1'000'000'000};
  std::array<uint64_t, kUpperNs.size() + 1> counts{};  // per bucket, not cumulative
  uint64_t count = 0;
  uint64_t sum_ns = 0;

  void add(uint64_t ns) {
    size_t i = 0;
    while (i < kUpperNs.size() && ns > kUpperNs[i]) i++;
    counts[i]++;
    count++;
    sum_ns += ns;
  }
};

}  // namespace fikit::broker
