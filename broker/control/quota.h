// What one uid may hold of the broker's shared capacity (issue 16), so that one user cannot take
// it from another: registered tenants, and connections that have not yet sent their first
// message. Each has a limit per uid and a total. A registration over its uid's limit (or the
// total) is refused with a text that says which limit and what to do. A new connection over its
// uid's limit (or the total) takes the place of that uid's (or anyone's) oldest silent connection
// if one has been silent for kQuietNs; otherwise the new one is closed. A client that connects in
// a loop thus displaces only its own earlier connections, and a fresh request (status, a
// registration) still gets through. Queued work is bounded per tenant by its ring (kRingEntries)
// and the scheduler's per-tenant bound, so per uid by tenants_per_uid times that.
#pragma once

#include <fikit/result.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace fikit::broker {

struct Quotas {
  uint32_t tenants_per_uid = 256;
  uint32_t tenants_total = 1024;
  uint32_t silent_per_uid = 32;  // connections that have sent nothing yet
  uint32_t silent_total = 512;
};

// A silent connection younger than this is never displaced: its first message may be on its way.
inline constexpr uint64_t kQuietNs = 100'000'000;

// Return a refusal if `uid`, which has `of_uid` tenants (of `total`), may not register another.
Status check_tenant_quota(const Quotas& q, uid_t uid, size_t of_uid, size_t total);

}  // namespace fikit::broker
