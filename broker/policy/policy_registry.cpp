// The list of scheduling policies. A new policy is a new file (broker/policy/<name>.cpp defining
// `const PolicyOps k<Name>Policy`) plus one X(...) row below; the first row is the default.
#include <cstring>

#include "policy/policy.h"

#define FIKIT_POLICIES(X) \
  X(kFikitPolicy)         \
  X(kPriorityPolicy)      \
  X(kNonePolicy)          \
  X(kOraclePolicy)

namespace fikit::broker {

#define FIKIT_DECLARE_POLICY(ops) extern const PolicyOps ops;
FIKIT_POLICIES(FIKIT_DECLARE_POLICY)
#undef FIKIT_DECLARE_POLICY

namespace {

#define FIKIT_LIST_POLICY(ops) &ops,
const PolicyOps* const kPolicies[] = {FIKIT_POLICIES(FIKIT_LIST_POLICY) nullptr};
#undef FIKIT_LIST_POLICY

}  // namespace

const PolicyOps* const* policy_list() { return kPolicies; }

const PolicyOps* policy_find(const char* name) {
  for (const PolicyOps* const* p = kPolicies; *p; p++)
    if (name && strcmp((*p)->name, name) == 0) return *p;
  return nullptr;
}

}  // namespace fikit::broker
