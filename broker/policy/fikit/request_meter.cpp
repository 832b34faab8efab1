// Online HP request latency.
#include "policy/fikit/request_meter.h"

#include <algorithm>

namespace fikit::broker::fikit_policy {

template <uint32_t N>
uint64_t SampleWindow<N>::quantile(double q) const {
  if (size_ == 0) return 0;
  std::array<uint64_t, N> v;
  std::copy(ring_.begin(), ring_.begin() + size_, v.begin());
  auto rank = static_cast<uint32_t>(q * static_cast<double>(size_ - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + rank, v.begin() + size_);
  return v[rank];
}

template class SampleWindow<RequestMeter::kWindow>;
template class SampleWindow<128>;

void RequestMeter::on_submit(uint64_t t_ns, bool lp_busy, uint64_t key) {
  if (open_) {
    launches_++;
    return;
  }
  open_ = true;
  first_key_ = key;
  launches_ = 1;
  overlapped_ = lp_busy;
  start_ns_ = t_ns;
}

bool RequestMeter::on_drain(uint64_t t_ns, uint64_t* latency_ns, bool* overlapped) {
  if (!open_) return false;
  open_ = false;
  last_end_ns_ = t_ns;
  // A drain seen before the record's client time (clocks of two processes, a stale drain time):
  // no sample.
  if (t_ns <= start_ns_) return false;
  *latency_ns = t_ns - start_ns_;
  kind_ = first_key_ ^ (static_cast<uint64_t>(std::min(launches_, 64u)) * 0x9e3779b97f4a7c15ULL);
  *overlapped = overlapped_;
  count_++;
  sum_ns_ += *latency_ns;
  size_t b = 0;
  while (b < kBoundsUs.size() && *latency_ns > kBoundsUs[b] * 1000) b++;
  buckets_[b]++;
  recent_.add(*latency_ns);
  if (recent_.size() >= kLowMinSamples) low_ns_ = recent_.quantile(0.05);
  fastest_ns_ = fastest_ns_ ? std::min(fastest_ns_, *latency_ns) : *latency_ns;
  return true;
}

}  // namespace fikit::broker::fikit_policy
