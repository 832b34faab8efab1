// Policy `none`: grant every request at once.
//
// The default-sharing baseline measured through the same code path as the other policies: rings
// are consumed, launches tracked and grants published exactly as under `priority` or `fikit`, so a
// comparison isolates the decision, not the machinery. It ignores priorities and every bound,
// PolicyConfig.max_lp_in_flight included: LP launches reach the driver as soon as they are asked
// for, as they would without fikit.
#include "policy/policy.h"

namespace fikit::broker {
namespace {

void none_dispatch(void*, SchedulerApi& sched, uint64_t) {
  for (uint32_t i = 0; i < sched.tenant_count(); i++)
    while (sched.grant(i)) {
    }
}

}  // namespace

extern const PolicyOps kNonePolicy = {
    .name = "none",
    .description = "grant every launch at once (default sharing, the baseline)",
    .dispatch = none_dispatch,
};

}  // namespace fikit::broker
