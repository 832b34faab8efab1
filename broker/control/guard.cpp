#include "control/guard.h"

#include <fikit/util.h>

#include <exception>

#include "log.h"

namespace fikit::broker {
namespace {

constexpr uint64_t kLogEveryNs = 1'000'000'000;

}  // namespace

bool Guard::run(const char* what, pid_t pid, const std::function<void()>& f) noexcept {
  const char* why = nullptr;
  try {
    f();
    return true;
  } catch (const std::exception& e) {
    why = e.what();
  } catch (...) {
    why = "unknown exception";
  }
  caught_++;
  unlogged_++;
  uint64_t now = now_ns();
  if (last_log_ns_ == 0 || now - last_log_ns_ >= kLogEveryNs) {
    FIKIT_LOG_ERROR(
        "failed to handle the %s of pid %d: %s; dropped that connection (%llu such failures "
        "since the last line)",
        what, static_cast<int>(pid), why, static_cast<unsigned long long>(unlogged_));
    unlogged_ = 0;
    last_log_ns_ = now;
  }
  return false;
}

}  // namespace fikit::broker
