// The broker process: endpoint (socket + lock), scheduler thread, control loop, orderly stop.
#pragma once

#include <fikit/result.h>

#include <functional>

#include "options.h"

namespace fikit::broker {

// Run the broker until a stop request or SIGTERM/SIGINT. `ready` is called exactly once: with OK
// once the socket listens, or with why the broker could not start. Return the exit code (0 after
// a clean stop). On stop every segment is set kClosed and its waiters woken (clients fail open at
// once), then segments, socket and lock file are removed.
int run_broker(const Options& o, const std::function<void(const Status&)>& ready);

}  // namespace fikit::broker
