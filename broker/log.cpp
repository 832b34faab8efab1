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

#include "safe_fs.h"

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

// Open `path` for appending, in a directory only we can write and never through a symlink, and
// make it fd 1 and 2.
Status redirect_to(const std::string& path) {
  Result<DirFd> dir =
      open_owned_dir(dir_of(path), {.create = true, .mode = 0755, .hint = kLogDirHint});
  if (!dir.ok()) return dir.status();
  int fd = open_owned_file(*dir, base_of(path), O_WRONLY | O_APPEND, 0640);
  if (fd == -ELOOP || fd == -EPERM || fd == -EINVAL)
    return Status(StatusCode::kPermissionDenied,
                  "refusing the log file " + path +
                      ": it is a symlink, another user's file, has other hard links or is not a "
                      "regular file: remove it or give another --log");
  if (fd < 0) return Status::from_errno(-fd, "open log file " + path);
  Status s;
  if (dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
    s = Status::from_errno(errno, "redirect output to " + path);
  close(fd);
  return s;
}

}  // namespace

Status log_open(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_path_mu);
  if (path.empty()) return Status();
  Status s = redirect_to(path);
  if (s.ok()) g_path = path;
  return s;
}

int log_reopen() {
  std::lock_guard<std::mutex> lock(g_path_mu);
  if (g_path.empty()) return 0;
  Status s = redirect_to(g_path);
  if (s.ok()) return 0;
  log_msg(LogLevel::kError, "%s", s.message().c_str());
  return s.code() == StatusCode::kPermissionDenied ? -EPERM : -EIO;
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
