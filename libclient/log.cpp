#include "log.h"

#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace fikit::client {
namespace {

std::atomic<int> g_level{-1};

LogLevel parse_level(const char* s) noexcept {
  if (!s || !*s) return LogLevel::kWarn;
  if (!strcmp(s, "debug")) return LogLevel::kDebug;
  if (!strcmp(s, "info")) return LogLevel::kInfo;
  if (!strcmp(s, "warn")) return LogLevel::kWarn;
  if (!strcmp(s, "error")) return LogLevel::kError;
  if (!strcmp(s, "off")) return LogLevel::kOff;
  return LogLevel::kWarn;
}

const char* level_name(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warning";
    case LogLevel::kError:
      return "error";
    case LogLevel::kOff:
      break;
  }
  return "";
}

}  // namespace

LogLevel log_level() noexcept {
  int level = g_level.load(std::memory_order_relaxed);
  if (level < 0) {
    // Racing first callers compute the same value: no lock needed.
    level = static_cast<int>(parse_level(getenv("FIKIT_LOG")));
    g_level.store(level, std::memory_order_relaxed);
  }
  return static_cast<LogLevel>(level);
}

void log_print(LogLevel level, const char* fmt, ...) noexcept {
  if (!log_enabled(level)) return;
  char line[512];
  int n = snprintf(line, sizeof(line), "fikit[%d]: %s: ", static_cast<int>(getpid()),
                   level_name(level));
  if (n < 0) return;
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof(line) - static_cast<size_t>(n), fmt, ap);
  va_end(ap);
  size_t len = static_cast<size_t>(n) + (m < 0 ? 0 : static_cast<size_t>(m));
  if (len > sizeof(line) - 2) len = sizeof(line) - 2;
  line[len++] = '\n';
  ssize_t ignored = write(STDERR_FILENO, line, len);
  (void)ignored;
}

}  // namespace fikit::client
