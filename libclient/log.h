// Client logging: one line per message on stderr, written with a single write(2) so that lines from
// several threads do not interleave. The level comes from FIKIT_LOG (debug|info|warn|error|off,
// default warn) and is read once. Never called on the hot path (launch and sync hooks).
#pragma once

#include <cstdint>

namespace fikit::client {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

// The level from FIKIT_LOG, read on the first call.
LogLevel log_level() noexcept;

// Return true if messages of `level` are printed.
inline bool log_enabled(LogLevel level) noexcept {
  return static_cast<int>(level) >= static_cast<int>(log_level());
}

// Print "fikit[pid]: <level>: <message>" if `level` is enabled.
void log_print(LogLevel level, const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3)));

}  // namespace fikit::client

#define FIKIT_LOG_DEBUG(...) \
  ::fikit::client::log_print(::fikit::client::LogLevel::kDebug, __VA_ARGS__)
#define FIKIT_LOG_INFO(...) \
  ::fikit::client::log_print(::fikit::client::LogLevel::kInfo, __VA_ARGS__)
#define FIKIT_LOG_WARN(...) \
  ::fikit::client::log_print(::fikit::client::LogLevel::kWarn, __VA_ARGS__)
#define FIKIT_LOG_ERROR(...) \
  ::fikit::client::log_print(::fikit::client::LogLevel::kError, __VA_ARGS__)
