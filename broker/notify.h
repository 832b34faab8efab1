// systemd's readiness protocol, written by hand (no libsystemd): a datagram of "KEY=VALUE" lines
// to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or an abstract name starting with '@').
// notify_init() reads and unsets the variable, so that the programs the broker starts (the MPS
// daemon, fikit-calibrate) do not speak for it; without it every call is a no-op. See
// sd_notify(3) and https://systemd.io/NOTIFY/ (the protocol is stable and documented there).
#pragma once

#include <string>

namespace fikit::broker {

// Take $NOTIFY_SOCKET (once; later calls keep the first). Return true if it was set.
bool notify_init();
// Send `state` ("READY=1\nSTATUS=..."). Return 0, or -errno (-ENOTCONN without a socket).
int notify_send(const std::string& state);

// READY=1 with MAINPID and STATUS; STOPPING=1 with STATUS; STATUS alone.
int notify_ready(const std::string& status);
int notify_stopping(const std::string& status);
int notify_status(const std::string& status);

}  // namespace fikit::broker
