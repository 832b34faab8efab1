/* fikit client C API, for programs that link libfikit.so instead of (or as well as) LD_PRELOADing
 * it.
 *
 * Without any call, the library reads FIKIT_PRIORITY (high|normal|low|0..7, default high) and
 * FIKIT_TENANT (default: the program name) and FIKIT_SOCKET (default /run/fikit/broker.sock) at the
 * first CUDA call. Calls made before the first launch take effect for the whole process; later
 * calls reconnect. */
#ifndef FIKIT_CLIENT_H
#define FIKIT_CLIENT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Set this process's priority: "high", "normal", "low" or "0".."7" (0 highest). Return 0 or
 * -EINVAL. */
int fikit_set_priority(const char* priority);

/* Set the tenant name shown by the broker and used for its saved profile (1 to 31 bytes of
 * printable UTF-8). 0 or -EINVAL. */
int fikit_set_tenant_name(const char* name);

/* Tell the broker this task is idle for about `idle_ns` (e.g. until its next request): a gap signal
 * the library cannot see by itself. Return 0, or -ENOTCONN when no broker is connected. */
int fikit_hint_idle(uint64_t idle_ns);

/* Return 1 if the library is connected to a broker and scheduling launches, 0 if it runs fail-open.
 */
int fikit_connected(void);

/* Counters of this process (for tests and tools). */
struct fikit_client_stats {
  uint64_t launches;       /* launches intercepted */
  uint64_t passed_through; /* launched without the broker (fail open, stream capture) */
  uint64_t dropped;        /* HP records lost to a full ring */
  uint64_t lp_waits;       /* LP launches that waited for a grant */
  uint64_t reconnects;     /* successful (re)registrations */
};
void fikit_get_stats(struct fikit_client_stats* out);

#ifdef __cplusplus
}
#endif

#endif /* FIKIT_CLIENT_H */
