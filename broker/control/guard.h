// The control thread's exception boundary. A handler of one connection's event (a message, its
// end, its process's exit) runs through Guard::run: whatever it throws (a bug that tenant input
// reaches, memory exhausted) is caught there, so that the caller drops that one connection and
// the broker carries on. The catch is logged at most once a second, with the number of others
// caught since, so a client that triggers it in a loop cannot flood the log.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>

#include "control/rate_counter.h"

namespace fikit::broker {

class Guard {
 public:
  // Run f. Return false if it threw (logged as "<what> of pid <pid>").
  bool run(const char* what, pid_t pid, const std::function<void()>& f) noexcept;
  uint64_t caught() const { return caught_.total(); }

 private:
  RateCounter caught_;
};

}  // namespace fikit::broker
