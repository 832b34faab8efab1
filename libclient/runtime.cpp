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
#include "hook_table.h"
#include "log.h"

namespace fikit::client {

std::atomic<int> g_phase{static_cast<int>(Phase::kIdle)};
std::atomic<Session*> g_current{nullptr};

namespace {

constexpr int kRetryMs = 500;
constexpr size_t kMonitorStack = 256 * 1024;

std::atomic<uint32_t> g_generation{0};
std::atomic<int> g_wake_fd{-1};  // eventfd: the C API asks the monitor to re-register
pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;

uint16_t next_generation() noexcept {
  return static_cast<uint16_t>(g_generation.fetch_add(1, std::memory_order_relaxed) + 1);
}

void publish(Session* s) noexcept {
  // Release pairs with current_session()'s acquire load: the session is fully built.
  g_current.store(s, std::memory_order_release);
  count(g_counters.reconnects);
}

enum class Wake { kHangup, kRequest, kTimeout };

// Wait until the connection `fd` ends (fd >= 0), a reconnect is requested, or `timeout_ms` passes
// (-1: no timeout). Only the monitor thread reads from the sockets and the wake fd.
Wake wait_event(int fd, int timeout_ms) noexcept {
  for (;;) {
    pollfd p[2] = {{g_wake_fd.load(std::memory_order_relaxed), POLLIN, 0},
                   {fd, POLLIN | POLLRDHUP, 0}};
    int r = poll(p, fd >= 0 ? 2 : 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return r == 0 ? Wake::kTimeout : Wake::kHangup;
    if (p[0].revents & POLLIN) {
      uint64_t v;
      ssize_t ignored = read(p[0].fd, &v, sizeof(v));
      (void)ignored;
      return Wake::kRequest;
    }
    if (fd < 0) continue;
    if (p[1].revents & (POLLHUP | POLLERR | POLLRDHUP | POLLNVAL)) return Wake::kHangup;
    if (p[1].revents & POLLIN) {
      char buf[256];  // no broker message is defined after the reply: read and ignore
      ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return Wake::kHangup;
    }
  }
}

// Drop `s`: waiters fail open, the broker sees the tenant leave.
void drop_session(Session* s) noexcept {
  session_mark_dead(s);
  Session* expected = s;
  g_current.compare_exchange_strong(expected, nullptr, std::memory_order_acq_rel);
  close(s->fd);  // only the monitor closes session sockets, so the number cannot be reused under us
  s->fd = -1;
}

void* monitor_main(void*) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);  // signals belong to the application's threads
  for (;;) {
    Session* s = current_session();
    if (s) {
      Wake w = wait_event(s->fd, -1);
      if (w == Wake::kRequest)
        FIKIT_LOG_INFO("re-registering with the broker (configuration changed)");
      else
        FIKIT_LOG_WARN(
            "lost the connection to the broker (tenant %u): launches run unmanaged; "
            "reconnecting every %d ms",
            s->tenant_id, kRetryMs);
      drop_session(s);
    }
    Config cfg = config_get();
    Session* n =
        cfg.priority_valid ? session_connect(cfg, next_generation(), LogLevel::kDebug) : nullptr;
    if (n) {
      publish(n);
      continue;
    }
    wait_event(-1, kRetryMs);
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
  Session* s = g_current.exchange(nullptr, std::memory_order_acq_rel);
  if (s) {
    s->dead.store(true, std::memory_order_relaxed);  // our private copy of the session
    if (s->fd >= 0) close(s->fd);
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
      "launches %llu, passed through %llu, dropped %llu, LP waits %llu, markers %llu, "
      "drains %llu, registrations %llu",
      static_cast<unsigned long long>(launches), get(g_counters.passed_through),
      get(g_counters.dropped), get(g_counters.lp_waits), get(g_counters.markers),
      get(g_counters.drains), get(g_counters.reconnects));
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
  Session* s = session_connect(cfg, next_generation(), LogLevel::kWarn);
  if (s) publish(s);
  start_monitor();
  g_phase.store(static_cast<int>(Phase::kStarted), std::memory_order_release);
}

void request_reconnect() noexcept {
  int phase = static_cast<int>(Phase::kUnmanaged);
  // Unmanaged because the environment's priority was invalid: the next hook call starts afresh.
  if (g_phase.compare_exchange_strong(phase, static_cast<int>(Phase::kIdle),
                                      std::memory_order_acq_rel))
    return;
  if (phase != static_cast<int>(Phase::kStarted)) return;  // not started: start reads the config
  int wake = g_wake_fd.load(std::memory_order_relaxed);
  if (wake >= 0) {
    uint64_t one = 1;
    ssize_t ignored = write(wake, &one, sizeof(one));
    (void)ignored;
  }
}

void runtime_use_session_for_test(Session* s) noexcept {
  g_current.store(s, std::memory_order_release);
  g_phase.store(static_cast<int>(Phase::kStarted), std::memory_order_release);
}

}  // namespace fikit::client
