#include "control/quota.h"

#include <string>

namespace fikit::broker {

Status check_tenant_quota(const Quotas& q, uid_t uid, size_t of_uid, size_t total) {
  if (of_uid >= q.tenants_per_uid)
    return Status(StatusCode::kUnavailable,
                  "uid " + std::to_string(uid) + " already has " + std::to_string(of_uid) +
                      " tenants, the most one uid may register: end some of them, then retry");
  if (total >= q.tenants_total)
    return Status(StatusCode::kUnavailable,
                  "the broker already serves " + std::to_string(total) +
                      " tenants, the most it takes: retry when some have ended");
  return Status();
}

}  // namespace fikit::broker
