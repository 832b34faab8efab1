// `fikit-broker profile list|show|export|import [NAME]`: the fikit policy's saved kernel
// profiles (broker/policy/fikit/profile.h), read and written without a running broker.
#pragma once

#include "options.h"

namespace fikit::broker {

// Parse `profile ACTION [NAME] [--profile-dir DIR] [--file FILE]` (argv[1] is "profile") on top
// of `o` (its defaults). A usage error is kInvalidArgument with its message.
Result<Options> parse_profile_options(int argc, char** argv, Options o);

// Run it. Return the exit code: 0, or 1 with the reason on stderr.
int profile_command(const Options& o);

}  // namespace fikit::broker
