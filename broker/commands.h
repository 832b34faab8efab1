// `fikit-broker stop` and `fikit-broker status`: one request over the control socket.
#pragma once

#include "options.h"

namespace fikit::broker {

// Return the command's exit code (0, or 1 with the reason printed on stderr).
int stop_command(const Options& o);
int status_command(const Options& o);

}  // namespace fikit::broker
