#include "config.h"

#include <errno.h>
#include <fikit/protocol.h>
#include <fikit/tenant_name.h>
#include <fikit/util.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "log.h"

namespace fikit::client {
namespace {

pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
Config g_config;
bool g_env_loaded = false;
bool g_priority_explicit = false;  // set by the C API: wins over FIKIT_PRIORITY
bool g_name_explicit = false;
std::atomic<uint64_t> g_broker_timeout_ns{kDefaultBrokerTimeoutMs * 1000000ull};

void copy_name(char* dst, size_t cap, const char* src) noexcept {
  size_t n = strnlen(src, cap - 1);
  memcpy(dst, src, n);
  dst[n] = '\0';
}

uint64_t parse_timeout_ms(const char* s) noexcept {
  if (!s || !*s) return kDefaultBrokerTimeoutMs;
  char* end = nullptr;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || v == 0) {
    FIKIT_LOG_WARN("invalid FIKIT_BROKER_TIMEOUT_MS '%s' (want milliseconds > 0): using %llu", s,
                   static_cast<unsigned long long>(kDefaultBrokerTimeoutMs));
    return kDefaultBrokerTimeoutMs;
  }
  return v;
}

void load_priority_locked() noexcept {
  const char* p = getenv("FIKIT_PRIORITY");
  if (!p || !*p) {
    g_config.priority = kPriorityHigh;  // client.h: default high
    g_config.priority_valid = true;
    return;
  }
  int level = priority_parse(p);
  if (level < 0) {
    // Always shown (even with FIKIT_LOG=off): the user asked for scheduling and does not get it.
    char msg[256];
    int n = snprintf(msg, sizeof(msg),
                     "fikit[%d]: error: invalid FIKIT_PRIORITY '%.40s' (want high, normal, low or "
                     "0..%u): this process runs unmanaged\n",
                     static_cast<int>(getpid()), p, kPriorityLevels - 1);
    if (n > 0) {
      ssize_t ignored = write(STDERR_FILENO, msg, static_cast<size_t>(n));
      (void)ignored;
    }
    g_config.priority_valid = false;
    return;
  }
  g_config.priority = static_cast<uint32_t>(level);
  g_config.priority_valid = true;
}

}  // namespace

void config_load_env() noexcept {
  pthread_mutex_lock(&g_mu);
  if (!g_env_loaded) {
    g_env_loaded = true;
    if (!g_priority_explicit) load_priority_locked();
    if (!g_name_explicit) {
      // The program's file name may be any bytes (Latin-1 "caf\xe9"): the broker accepts only
      // printable UTF-8, so send that instead of being refused.
      const char* t = getenv("FIKIT_TENANT");
      tenant_name__sanitize(g_config.name, sizeof(g_config.name),
                            t && *t ? t : program_invocation_short_name);
    }
    const char* b = getenv("FIKIT_HP_BUDGET");
    for (size_t i = 0; i < sizeof(g_config.hp_budget); i++) {
      g_config.hp_budget[i] = b ? b[i] : '\0';
      if (!g_config.hp_budget[i]) break;
    }
    const char* s = getenv("FIKIT_SOCKET");
    copy_name(g_config.socket_path, sizeof(g_config.socket_path), s && *s ? s : kDefaultSocket);
    g_broker_timeout_ns.store(parse_timeout_ms(getenv("FIKIT_BROKER_TIMEOUT_MS")) * 1000000ull,
                              std::memory_order_relaxed);
  }
  pthread_mutex_unlock(&g_mu);
}

Config config_get() noexcept {
  pthread_mutex_lock(&g_mu);
  Config c = g_config;
  pthread_mutex_unlock(&g_mu);
  return c;
}

int config_set_priority(const char* priority) noexcept {
  int level = priority_parse(priority);
  if (level < 0) return -EINVAL;
  pthread_mutex_lock(&g_mu);
  g_config.priority = static_cast<uint32_t>(level);
  g_config.priority_valid = true;
  g_priority_explicit = true;
  pthread_mutex_unlock(&g_mu);
  return 0;
}

int config_set_name(const char* name) noexcept {
  size_t bad_at = 0;
  if (!name || !*name || strlen(name) >= kNameLen || tenant_name__check(name, kNameLen, &bad_at))
    return -EINVAL;
  pthread_mutex_lock(&g_mu);
  copy_name(g_config.name, sizeof(g_config.name), name);
  g_name_explicit = true;
  pthread_mutex_unlock(&g_mu);
  return 0;
}

uint64_t config_broker_timeout_ns() noexcept {
  return g_broker_timeout_ns.load(std::memory_order_relaxed);
}

}  // namespace fikit::client
