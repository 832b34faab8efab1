// The C API of include/fikit/client.h.
#include <errno.h>
#include <fikit/ring.h>
#include <fikit/util.h>

#include "config.h"
#include "counters.h"
#include "runtime.h"
#include "session.h"

#pragma GCC visibility push(default)
#include <fikit/client.h>
#pragma GCC visibility pop

using namespace fikit;
using namespace fikit::client;

extern "C" {

int fikit_set_priority(const char* priority) {
  int r = config_set_priority(priority);
  if (r == 0) request_reconnect();
  return r;
}

int fikit_set_tenant_name(const char* name) {
  int r = config_set_name(name);
  if (r == 0) request_reconnect();
  return r;
}

int fikit_hint_idle(uint64_t idle_ns) {
  Session* s = session_for_current_gpu();
  if (!session_usable(s)) return -ENOTCONN;
  uint32_t pos;
  if (!ring__push(&s->seg->ring, {EntryKind::kHintIdle, 0, 0, 0, idle_ns, now_ns()}, &pos))
    return -EAGAIN;
  return 0;
}

int fikit_connected(void) { return any_session_usable() ? 1 : 0; }

void fikit_get_stats(struct fikit_client_stats* out) {
  if (!out) return;
  auto get = [](const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  out->launches = get(g_counters.launches);
  out->passed_through = get(g_counters.passed_through);
  out->dropped = get(g_counters.dropped);
  out->lp_waits = get(g_counters.lp_waits);
  out->reconnects = get(g_counters.reconnects);
}

}  // extern "C"
