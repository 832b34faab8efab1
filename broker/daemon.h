// `fikit-broker start`: in the foreground, or daemonized (fork, setsid, fork, output to the log)
// with a readiness pipe, so that the command returns only once the broker listens (exit 0) or has
// failed (its error printed, exit 1).
#pragma once

#include "options.h"

namespace fikit::broker {

// Return the exit code of `fikit-broker start`.
int start_foreground(const Options& o);
int start_daemon(const Options& o);

}  // namespace fikit::broker
