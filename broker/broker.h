// The broker process: endpoint (socket + lock), scheduler thread, control loop, orderly stop.
#pragma once

#include <fikit/result.h>

#include <functional>
#include <string>
#include <vector>

#include "options.h"

namespace fikit::broker {

// What `ready` gets: OK once the socket listens (with the degraded modes, degraded.h), or why the
// broker could not start.
using ReadyFn = std::function<void(const Status&, const std::vector<std::string>& degraded)>;

// Run the broker until a stop request or SIGTERM/SIGINT. `ready` is called exactly once. Return the
// exit code (0 after a clean stop). On stop every segment is set kClosed and its waiters woken
// (clients fail open at once), then segments, socket and lock file are removed.
int run_broker(const Options& o, const ReadyFn& ready);

}  // namespace fikit::broker
