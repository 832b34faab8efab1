// The broker's log: one line per message, written with a single write(2) to stderr, which is the
// log file once the broker is daemonized (log_open redirects it). Safe from any thread. A line
// repeated more than 20 times in 5 s (digits aside) is suppressed for the rest of those 5 s and
// the number suppressed is logged afterwards. Under systemd each line starts with journald's
// priority ("<3>" error, "<4>" warn, "<6>" info, "<7>" debug).
#pragma once

#include <fikit/result.h>

#include <string>

namespace fikit::broker {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// What to do when the log's directory cannot be created.
inline constexpr const char* kLogDirHint = "run as root, or give --log in a directory you own";

// Send stdout and stderr to `path` (appending), or leave them alone if path is empty. The file is
// opened in a directory only the broker's uid can write (created if missing), never through a
// symlink (safe_fs.h); a refusal says why.
Status log_open(const std::string& path);
// Reopen the log file (after rotation, on SIGHUP). Return 0 or -errno; no-op without a file.
int log_reopen();
void log_set_level(LogLevel level);
// Put journald's "<N>" priority in front of every line (under systemd).
void log_set_journal(bool on);
// True if systemd runs us with the journal on stderr (JOURNAL_STREAM naming our stderr) or waits
// for our readiness (NOTIFY_SOCKET).
bool log_journal_detected();
// Write the counts of suppressed repeats now (before stopping, and for tests).
void log_flush_suppressed();

void log_msg(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace fikit::broker

#define FIKIT_LOG_DEBUG(...) \
  ::fikit::broker::log_msg(::fikit::broker::LogLevel::kDebug, __VA_ARGS__)
#define FIKIT_LOG_INFO(...) ::fikit::broker::log_msg(::fikit::broker::LogLevel::kInfo, __VA_ARGS__)
#define FIKIT_LOG_WARN(...) ::fikit::broker::log_msg(::fikit::broker::LogLevel::kWarn, __VA_ARGS__)
#define FIKIT_LOG_ERROR(...) \
  ::fikit::broker::log_msg(::fikit::broker::LogLevel::kError, __VA_ARGS__)
