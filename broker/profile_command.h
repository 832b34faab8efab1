// `fikit-broker profile list|show|export|import [NAME]`: the fikit policy's saved kernel
// profiles (broker/policy/fikit/profile.h), read and written without a running broker. Its
// command line is parsed with the others' (options.h).
#pragma once

#include "options.h"

namespace fikit::broker {

// Run it. Return the exit code: 0, or 1 with the reason on stderr.
int profile_command(const Options& o);

}  // namespace fikit::broker
