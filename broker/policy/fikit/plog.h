// Logging of the fikit policy: through PolicyConfig::log (the broker's log) when the scheduler
// set it, else to stderr, so that the policy library depends on no broker code.
#pragma once

#include "policy/policy.h"

namespace fikit::broker::fikit_policy {

inline constexpr int kLogInfo = 1;
inline constexpr int kLogWarn = 2;
inline constexpr int kLogError = 3;

// Format and log one line (no trailing newline needed).
void plog(const PolicyConfig& cfg, int level, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));

}  // namespace fikit::broker::fikit_policy
