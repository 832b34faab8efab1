#include "control/guard.h"

#include <fikit/util.h>

#include <cstdio>
#include <exception>

#include "base/log.h"

namespace fikit::broker {

bool Guard::run(const char* what, pid_t pid, const std::function<void()>& f) noexcept {
  char why[160];  // copied: the exception is gone after its catch block
  try {
    f();
    return true;
  } catch (const std::exception& e) {
    snprintf(why, sizeof(why), "%s", e.what());
  } catch (...) {
    snprintf(why, sizeof(why), "unknown exception");
  }
  if (uint64_t n = caught_.count(now_ns()))
    FIKIT_LOG_ERROR(
        "failed to handle the %s of pid %d: %s; dropped that connection (%llu such failures "
        "since the last line)",
        what, static_cast<int>(pid), why, static_cast<unsigned long long>(n));
  return false;
}

}  // namespace fikit::broker
