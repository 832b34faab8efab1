// Fair shares among the LP tenants of one level: decayed GPU time granted, order, debt.
#include "policy/fikit/share.h"

#include <cmath>

namespace fikit::broker::fikit_policy {

double share_recent(const TenantData& td, uint64_t now_ns) {
  if (td.served_ns == 0 || now_ns <= td.served_at_ns) return td.served_ns;
  double halves = static_cast<double>(now_ns - td.served_at_ns) / kShareHalfLifeNs;
  return td.served_ns * std::exp2(-halves);
}

void share_charge(TenantData& td, uint64_t ns, uint64_t now_ns) {
  td.served_ns = share_recent(td, now_ns) + static_cast<double>(ns);
  td.served_at_ns = now_ns;
}

void share_order(std::vector<TenantView*>& level, uint64_t now_ns) {
  // Insertion sort, stable: a level has a few tenants, and dispatch allocates nothing.
  for (size_t i = 1; i < level.size(); i++) {
    TenantView* v = level[i];
    double key = share_recent(*v->td, now_ns);
    size_t j = i;
    for (; j > 0 && share_recent(*level[j - 1]->td, now_ns) > key; j--) level[j] = level[j - 1];
    level[j] = v;
  }
}

bool share_owed(const std::vector<TenantView*>& level, uint64_t now_ns) {
  if (level.size() < 2) return false;
  double total = 0;
  for (const TenantView* v : level) total += share_recent(*v->td, now_ns);
  double equal = total / static_cast<double>(level.size());
  return equal > 0 && 2 * share_recent(*level[0]->td, now_ns) < equal;
}

}  // namespace fikit::broker::fikit_policy
