// Policy log lines, routed to the broker's log or stderr.
#include "policy/fikit/plog.h"

#include <cstdarg>
#include <cstdio>

namespace fikit::broker::fikit_policy {

void plog(const PolicyConfig& cfg, int level, const char* fmt, ...) {
  char line[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  if (cfg.log)
    cfg.log(level, line);
  else
    std::fprintf(stderr, "fikit: %s\n", line);
}

}  // namespace fikit::broker::fikit_policy
