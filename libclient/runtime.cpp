#include "runtime.h"

#include <fikit/util.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "config.h"
#include "counters.h"
#include "gpu_attrib.h"
#include "hook_table.h"
#include "log.h"

namespace fikit::client {

std::atomic<int> g_phase{static_cast<int>(Phase::kIdle)};

namespace {

constexpr int kRetryMs = 500;
constexpr size_t kMonitorStack = 256 * 1024;

std::atomic<uint32_t> g_generation{0};
std::atomic<int> g_wake_fd{-1};        // eventfd: wakes the monitor (a new session, or a reconnect)
std::atomic<bool> g_reconnect{false};  // the C API asked to re-register every session
pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;

// Per GPU slot: its session, whether the GPU was ever launched on (the monitor keeps it
// registered), and whether a thread is registering it now.
std::atomic<Session*> g_sessions[kGpuSlots];
std::atomic<bool> g_wanted[kGpuSlots];
std::atomic<bool> g_registering[kGpuSlots];
std::atomic<Session*> g_test_session{nullptr};

uint16_t next_generation() noexcept {
  return static_cast<uint16_t>(g_generation.fetch_add(1, std::memory_order_relaxed) + 1);
}

void wake_monitor() noexcept {
  int wake = g_wake_fd.load(std::memory_order_relaxed);
  if (wake < 0) return;
  uint64_t one = 1;
  ssize_t ignored = write(wake, &one, sizeof(one));
  (void)ignored;
}

// Register GPU slot `slot` unless another thread is at it. Return its session or nullptr.
Session* register_slot(int slot, LogLevel fail_level) noexcept {
  bool expected = false;
  if (!g_registering[slot].compare_exchange_strong(expected, true, std::memory_order_acq_rel))
    return nullptr;
  Session* s = g_sessions[slot].load(std::memory_order_acquire);
  if (!s) {
    Config cfg = config_get();
    s = cfg.priority_valid ? session_connect(cfg, slot, next_generation(), fail_level) : nullptr;
    if (s) {
      // Release pairs with session_of_slot()'s acquire load: the session is fully built.
      g_sessions[slot].store(s, std::memory_order_release);
      count(g_counters.reconnects);
    }
  }
  g_registering[slot].store(false, std::memory_order_release);
  return s;
}

// Drop the session of `slot`: waiters fail open, the broker sees the tenant leave.
void drop_session(int slot) noexcept {
  Session* s = g_sessions[slot].exchange(nullptr, std::memory_order_acq_rel);
  if (!s) return;
  session_mark_dead(s);
  close(s->fd);  // only the monitor closes session sockets, so the number cannot be reused under us
  s->fd = -1;
}

// True if the connection `fd` ended (readable: no broker message is defined after the reply).
bool hung_up(const pollfd& p) noexcept {
  if (p.revents & (POLLHUP | POLLERR | POLLRDHUP | POLLNVAL)) return true;
  if (!(p.revents & POLLIN)) return false;
  char buf[256];
  ssize_t n = recv(p.fd, buf, sizeof(buf), MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
}

// The monitor: one poll over the wake fd and every session's connection. A lost connection is
// dropped (its launches fail open) and re-registered, and so is a GPU whose registration failed,
// every kRetryMs.
void* monitor_main(void*) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);  // signals belong to the application's threads
  for (;;) {
    pollfd p[1 + kGpuSlots];
    int slot_at[1 + kGpuSlots];
    int n = 1;
    bool missing = false;
    p[0] = {g_wake_fd.load(std::memory_order_relaxed), POLLIN, 0};
    for (int i = 0; i < kGpuSlots; i++) {
      Session* s = g_sessions[i].load(std::memory_order_acquire);
      if (s) {
        p[n] = {s->fd, POLLIN | POLLRDHUP, 0};
        slot_at[n++] = i;
      } else {
        missing |= g_wanted[i].load(std::memory_order_acquire);
      }
    }
    int r = poll(p, static_cast<nfds_t>(n), missing ? kRetryMs : -1);
    if (r < 0 && errno != EINTR) r = 0;
    if (r < 0) continue;
    if (p[0].revents & POLLIN) {
      uint64_t v;
      ssize_t ignored = read(p[0].fd, &v, sizeof(v));
      (void)ignored;
    }
    bool reconnect = g_reconnect.exchange(false, std::memory_order_acq_rel);
    if (reconnect) {
      FIKIT_LOG_INFO("re-registering with the broker (configuration changed)");
      // Every slot's session, not only those polled: one registered after this poll set was
      // built (the monitor may not have run since) must re-register too.
      for (int i = 0; i < kGpuSlots; i++) drop_session(i);
    }
    for (int k = 1; k < n && !reconnect; k++) {
      if (hung_up(p[k])) {
        Session* s = g_sessions[slot_at[k]].load(std::memory_order_acquire);
        FIKIT_LOG_WARN(
            "lost the connection to the broker (tenant %u): launches run unmanaged; "
            "reconnecting every %d ms",
            s ? s->tenant_id : 0, kRetryMs);
        drop_session(slot_at[k]);
      }
    }
    for (int i = 0; i < kGpuSlots; i++)
      if (g_wanted[i].load(std::memory_order_acquire) &&
          !g_sessions[i].load(std::memory_order_acquire))
        register_slot(i, LogLevel::kDebug);
  }
  return nullptr;
}

void start_monitor() noexcept {
  int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    FIKIT_LOG_WARN("failed to create the monitor's eventfd: %s; the client will not reconnect",
                   strerror(errno));
    return;
  }
  g_wake_fd.store(wake, std::memory_order_relaxed);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, kMonitorStack);
  pthread_t tid;
  int err = pthread_create(&tid, &attr, monitor_main, nullptr);
  pthread_attr_destroy(&attr);
  if (err) {
    FIKIT_LOG_WARN("failed to start the monitor thread: %s; the client will not reconnect",
                   strerror(err));
    return;
  }
  pthread_setname_np(tid, "fikit-monitor");
}

// In the child of fork: the parent's tenancy and monitor thread are not ours. Start afresh on the
// next hook call. (Only async-signal-safe calls here.)
void on_fork_child() noexcept {
  for (int i = 0; i < kGpuSlots; i++) {
    Session* s = g_sessions[i].exchange(nullptr, std::memory_order_acq_rel);
    if (s) {
      s->dead.store(true, std::memory_order_relaxed);  // our private copy of the session
      if (s->fd >= 0) close(s->fd);
    }
    g_wanted[i].store(false, std::memory_order_relaxed);
    g_registering[i].store(false, std::memory_order_relaxed);
  }
  int wake = g_wake_fd.exchange(-1, std::memory_order_relaxed);
  if (wake >= 0) close(wake);
  int phase = g_phase.load(std::memory_order_relaxed);
  if (phase == static_cast<int>(Phase::kStarted) || phase == static_cast<int>(Phase::kStarting))
    g_phase.store(static_cast<int>(Phase::kIdle), std::memory_order_release);
}

void register_atfork() noexcept { pthread_atfork(nullptr, nullptr, on_fork_child); }

__attribute__((destructor)) void report_at_exit() {
  uint64_t launches = g_counters.launches.load(std::memory_order_relaxed);
  if (!launches || !log_enabled(LogLevel::kInfo)) return;
  auto get = [](const std::atomic<uint64_t>& c) {
    return static_cast<unsigned long long>(c.load(std::memory_order_relaxed));
  };
  FIKIT_LOG_INFO(
      "launches %llu, passed through %llu, dropped %llu, LP waits %llu, LP in bursts %llu, "
      "markers %llu, drains %llu, registrations %llu",
      static_cast<unsigned long long>(launches), get(g_counters.passed_through),
      get(g_counters.dropped), get(g_counters.lp_waits), get(g_counters.lp_burst),
      get(g_counters.markers), get(g_counters.drains), get(g_counters.reconnects));
}

}  // namespace

void start_slow() noexcept {
  int expected = static_cast<int>(Phase::kIdle);
  if (!g_phase.compare_exchange_strong(expected, static_cast<int>(Phase::kStarting),
                                       std::memory_order_acq_rel))
    return;  // started, starting elsewhere (fail open meanwhile) or unmanaged
  config_load_env();
  Config cfg = config_get();
  if (!cfg.priority_valid) {
    g_phase.store(static_cast<int>(Phase::kUnmanaged), std::memory_order_release);
    return;
  }
  pthread_once(&g_atfork_once, register_atfork);
  hook_table_resolve();
  start_monitor();
  g_phase.store(static_cast<int>(Phase::kStarted), std::memory_order_release);
}

Session* session_of_slot(int slot) noexcept {
  if (Session* t = g_test_session.load(std::memory_order_acquire)) return t;
  if (slot < 0 || slot >= kGpuSlots) return nullptr;
  return g_sessions[slot].load(std::memory_order_acquire);
}

Session* session_for_current_gpu() noexcept {
  ensure_started();
  if (Session* t = g_test_session.load(std::memory_order_acquire)) return t;
  if (g_phase.load(std::memory_order_acquire) != static_cast<int>(Phase::kStarted)) return nullptr;
  int slot = current_gpu_slot();
  if (slot < 0) return nullptr;
  if (Session* s = g_sessions[slot].load(std::memory_order_acquire)) return s;
  // First launch on this GPU: register now (once; a failure is retried by the monitor).
  if (g_wanted[slot].exchange(true, std::memory_order_acq_rel)) return nullptr;
  Session* s = register_slot(slot, LogLevel::kWarn);
  wake_monitor();  // it watches the new connection (or retries)
  return s;
}

Session* session_by_generation(uint16_t generation) noexcept {
  if (Session* t = g_test_session.load(std::memory_order_acquire))
    return t->generation == generation ? t : nullptr;
  for (int i = 0; i < kGpuSlots; i++) {
    Session* s = g_sessions[i].load(std::memory_order_acquire);
    if (s && s->generation == generation) return s;
  }
  return nullptr;
}

bool any_session_usable() noexcept {
  if (session_usable(g_test_session.load(std::memory_order_acquire))) return true;
  for (int i = 0; i < kGpuSlots; i++)
    if (session_usable(g_sessions[i].load(std::memory_order_acquire))) return true;
  return false;
}

void request_reconnect() noexcept {
  int phase = static_cast<int>(Phase::kUnmanaged);
  // Unmanaged because the environment's priority was invalid: the next hook call starts afresh.
  if (g_phase.compare_exchange_strong(phase, static_cast<int>(Phase::kIdle),
                                      std::memory_order_acq_rel))
    return;
  if (phase != static_cast<int>(Phase::kStarted)) return;  // not started: start reads the config
  g_reconnect.store(true, std::memory_order_release);
  wake_monitor();
}

void runtime_use_session_for_test(Session* s) noexcept {
  g_test_session.store(s, std::memory_order_release);
  g_phase.store(static_cast<int>(Phase::kStarted), std::memory_order_release);
}

}  // namespace fikit::client
