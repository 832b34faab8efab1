// Log lines: "2026-01-31 12:00:00.123 fikit-broker[42] WARN message", with "<4>" in front for
// journald. Repeats are counted per line with its digits left out ("tenant 7" and "tenant 8" are
// one line), in windows of kWindowNs: past kBurst in a window a line is suppressed, and the count
// is written once the window is over and that line or any other is next written (or on
// log_flush_suppressed).
#include "base/log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "base/safe_fs.h"

namespace fikit::broker {
namespace {

constexpr uint64_t kWindowNs = 5'000'000'000;
constexpr uint32_t kBurst = 20;
constexpr size_t kTracked = 128;

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<bool> g_journal{false};

// One repeated line: its key (a hash of the text without digits) and this window's counts.
struct Repeat {
  uint64_t key = 0;
  uint64_t window_start_ns = 0;
  uint32_t written = 0;     // in this window
  uint64_t suppressed = 0;  // since the last report
  char sample[96] = {};     // the first suppressed line, for the report
};

std::mutex g_repeat_mu;
Repeat g_repeats[kTracked];
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

void log_set_journal(bool on) { g_journal.store(on); }

bool log_journal_detected() {
  const char* notify = getenv("NOTIFY_SOCKET");
  if (notify && *notify) return true;
  // JOURNAL_STREAM is "<dev>:<inode>" of the journal's stream: it counts only if that is still
  // our stderr (not, say, a terminal of a shell started by a service).
  const char* stream = getenv("JOURNAL_STREAM");
  unsigned long long dev = 0, ino = 0;
  struct stat st;
  return stream && sscanf(stream, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
         st.st_dev == dev && st.st_ino == ino;
}

namespace {

int syslog_priority(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return 7;
    case LogLevel::kInfo:
      return 6;
    case LogLevel::kWarn:
      return 4;
    case LogLevel::kError:
      return 3;
  }
  return 6;
}

uint64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(ts.tv_nsec);
}

// FNV-1a of the text without its digits, never 0.
uint64_t repeat_key(const char* text) {
  uint64_t h = 1469598103934665603ull;
  for (const char* p = text; *p; p++) {
    if (*p >= '0' && *p <= '9') continue;
    h = (h ^ static_cast<unsigned char>(*p)) * 1099511628211ull;
  }
  return h ? h : 1;
}

// Write one finished line (prefix, timestamp, level, text) with a single write(2).
void write_line(LogLevel level, const char* text) {
  char line[4096];  // a policy stats line (JSON) may be 2 KB
  size_t n = 0;
  if (g_journal.load(std::memory_order_relaxed))
    n = static_cast<size_t>(snprintf(line, sizeof(line), "<%d>", syslog_priority(level)));
  timeval tv;
  gettimeofday(&tv, nullptr);
  tm t;
  localtime_r(&tv.tv_sec, &t);
  n += strftime(line + n, sizeof(line) - n, "%Y-%m-%d %H:%M:%S", &t);
  int m = snprintf(line + n, sizeof(line) - n, ".%03ld fikit-broker[%d] %s %s",
                   static_cast<long>(tv.tv_usec / 1000), getpid(), level_name(level), text);
  n = m < 0 ? n : std::min(sizeof(line) - 2, n + static_cast<size_t>(m));
  line[n++] = '\n';
  // One write per line: lines from both threads never interleave.
  ssize_t w = write(STDERR_FILENO, line, n);
  (void)w;
}

// Report the suppressed lines of windows that are over (all of them if `all`). Holds g_repeat_mu.
void report_suppressed(uint64_t now, bool all) {
  for (Repeat& r : g_repeats) {
    if (r.suppressed == 0 || (!all && now - r.window_start_ns < kWindowNs)) continue;
    char text[256];
    snprintf(text, sizeof(text), "suppressed %llu more line(s) like: %s",
             static_cast<unsigned long long>(r.suppressed), r.sample);
    write_line(LogLevel::kWarn, text);
    r.suppressed = 0;
  }
}

// Return true if the line `text` may be written now; count it as suppressed otherwise.
bool admit(const char* text) {
  uint64_t key = repeat_key(text), now = mono_ns();
  std::lock_guard<std::mutex> lock(g_repeat_mu);
  Repeat* slot = nullptr;
  Repeat* oldest = &g_repeats[0];
  for (Repeat& r : g_repeats) {
    if (r.key == key) {
      slot = &r;
      break;
    }
    if (r.window_start_ns < oldest->window_start_ns) oldest = &r;
  }
  if (!slot) {
    if (oldest->suppressed) report_suppressed(now, true);  // never lose a count
    *oldest = Repeat();
    oldest->key = key;
    oldest->window_start_ns = now;
    slot = oldest;
  }
  if (now - slot->window_start_ns >= kWindowNs) {
    slot->window_start_ns = now;
    slot->written = 0;
  }
  if (slot->written >= kBurst) {
    if (slot->suppressed++ == 0) {
      size_t n = std::min(strlen(text), sizeof(slot->sample) - 1);
      memcpy(slot->sample, text, n);
      slot->sample[n] = '\0';
    }
    return false;
  }
  slot->written++;
  report_suppressed(now, false);
  return true;
}

}  // namespace

void log_flush_suppressed() {
  std::lock_guard<std::mutex> lock(g_repeat_mu);
  report_suppressed(mono_ns(), true);
}

void log_msg(LogLevel level, const char* fmt, ...) {
  if (static_cast<int>(level) < g_level.load(std::memory_order_relaxed)) return;
  int saved_errno = errno;
  char text[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof(text), fmt, ap);
  va_end(ap);
  if (admit(text)) write_line(level, text);
  errno = saved_errno;
}

}  // namespace fikit::broker
