// `fikit-broker start`: in the foreground, or daemonized (fork, setsid, fork, output to the log)
// with a readiness pipe, so that the command returns only once the broker listens (exit 0) or has
// failed (its error printed, exit 1). Under systemd (Type=notify) the broker also sends READY=1
// once it listens and STOPPING=1 when it stops (notify.h); run it with --foreground there: its log
// goes to stderr with journald priority prefixes.
#pragma once

#include "options.h"

namespace fikit::broker {

// Create (if missing) and check the run directory, the socket's and the profile directory: each
// owned by the broker's uid and writable by it alone (safe_fs.h), else a refusal that says why.
Status prepare_dirs(const Options& o);

// Return the exit code of `fikit-broker start`.
int start_foreground(const Options& o);
int start_daemon(const Options& o);

}  // namespace fikit::broker
