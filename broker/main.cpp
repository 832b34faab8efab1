// fikit-broker: start, stop or query the fikit broker. See `fikit-broker --help`.
#include <cstdio>

#include "base/log.h"
#include "commands.h"
#include "daemon.h"
#include "options.h"
#include "profile_command.h"

int main(int argc, char** argv) {
  using namespace fikit::broker;
  Result<Options> o = parse_options(argc, argv);
  if (!o.ok()) {
    fprintf(stderr, "fikit-broker: %s\nTry 'fikit-broker --help' for more information.\n",
            o.status().message().c_str());
    return 2;
  }
  log_set_level(o->log_level);
  switch (o->command) {
    case Command::kHelp:
      fputs(o->help_text.c_str(), stdout);
      return 0;
    case Command::kStart:
      return o->foreground ? start_foreground(*o) : start_daemon(*o);
    case Command::kStop:
      return stop_command(*o);
    case Command::kStatus:
      return status_command(*o);
    case Command::kProfile:
      return profile_command(*o);
  }
  return 2;
}
