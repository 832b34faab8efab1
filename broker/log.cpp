// Log lines: "2026-01-31 12:00:00.123 fikit-broker[42] WARN message".
#include "log.h"

#include <fcntl.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <mutex>

namespace fikit::broker {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::mutex g_path_mu;
std::string g_path;

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarn:
      return "WARN";
    case LogLevel::kError:
      return "ERROR";
  }
  return "?";
}

// Open `path` for appending and make it fd 1 and 2. Return 0 or -errno.
int redirect_to(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return -errno;
  int err = 0;
  if (dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0) err = -errno;
  close(fd);
  return err;
}

}  // namespace

int log_open(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_path_mu);
  if (path.empty()) return 0;
  int err = redirect_to(path);
  if (err == 0) g_path = path;
  return err;
}

int log_reopen() {
  std::lock_guard<std::mutex> lock(g_path_mu);
  return g_path.empty() ? 0 : redirect_to(g_path);
}

void log_set_level(LogLevel level) { g_level.store(static_cast<int>(level)); }

void log_msg(LogLevel level, const char* fmt, ...) {
  if (static_cast<int>(level) < g_level.load(std::memory_order_relaxed)) return;
  int saved_errno = errno;
  char line[1024];
  timeval tv;
  gettimeofday(&tv, nullptr);
  tm t;
  localtime_r(&tv.tv_sec, &t);
  size_t n = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &t);
  n += snprintf(line + n, sizeof(line) - n, ".%03ld fikit-broker[%d] %s ",
                static_cast<long>(tv.tv_usec / 1000), getpid(), level_name(level));
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
  va_end(ap);
  n = m < 0 ? n : std::min(sizeof(line) - 2, n + static_cast<size_t>(m));
  line[n++] = '\n';
  // One write per line: lines from both threads never interleave.
  ssize_t w = write(STDERR_FILENO, line, n);
  (void)w;
  errno = saved_errno;
}

}  // namespace fikit::broker
