#include "control/fd_limit.h"

#include <cerrno>

namespace fikit::broker {

long raise_fd_limit() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) return -errno;
  if (r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &r) != 0) return -errno;
  }
  return static_cast<long>(r.rlim_cur);
}

bool accept_error_is_exhaustion(int err) {
  return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

}  // namespace fikit::broker
