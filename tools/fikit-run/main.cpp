// fikit-run: start a program as a fikit tenant. Preloads libfikit.so and passes the priority, the
// tenant name and the broker socket through the environment (FIKIT_PRIORITY, FIKIT_TENANT,
// FIKIT_SOCKET), joins the broker's MPS daemon if it runs one (CUDA_MPS_PIPE_DIRECTORY,
// mps_join.h), then execs the program. Nothing is run when an argument is invalid (exit 2).
#include <fikit/abi.h>
#include <fikit/protocol.h>
#include <fikit/tenant_name.h>
#include <fikit/util.h>
#include <fikit/version.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "mps_join.h"

namespace {

constexpr int kExitUsage = 2;
constexpr int kExitExecFailed = 127;

constexpr const char kDescription[] =
    "usage: fikit-run --priority LEVEL [OPTIONS] [--] CMD [ARG...]\n\n"
    "Run CMD as a fikit tenant: preload libfikit.so and set FIKIT_PRIORITY,\n"
    "FIKIT_TENANT and FIKIT_SOCKET. Without a running fikit-broker the program runs\n"
    "unmanaged. If the broker runs MPS (--substrate mps), CMD joins it:\n"
    "CUDA_MPS_PIPE_DIRECTORY and CUDA_MPS_LOG_DIRECTORY are set to the broker's\n"
    "(unless the pipe directory is set), and CUDA_MPS_CLIENT_PRIORITY to 1 below\n"
    "priority high, 0 at it (unless set).";

constexpr const char kExamples[] =
    "EXAMPLES\n"
    "  fikit-run --priority high -- python serve.py    # latency-bound inference\n"
    "  fikit-run --priority low --name trainer -- python train.py\n"
    "  fikit-run -p 3 -s ~/fikit/broker.sock -- ./bench  # level 3, private broker\n"
    "  fikit-run -p normal --log-level info -- ./app   # print a summary at exit\n";

[[noreturn]] void fail_usage(const char* fmt, const char* arg) {
  fprintf(stderr, "fikit-run: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\nTry 'fikit-run --help'.\n");
  exit(kExitUsage);
}

// Return the first readable libfikit.so of: beside this program (<bin>/../lib, the build tree),
// the installed libdir relative to this program's bindir (a DESTDIR or moved install), the
// installed libdir (both compiled in by cmake/FikitInstall.cmake); else the first of them.
std::string default_lib() {
  std::vector<std::string> candidates;
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    self[n] = '\0';
    std::string dir(self);
    dir.erase(dir.rfind('/'));
    candidates.push_back(dir + "/../lib/libfikit.so");
    candidates.push_back(dir + "/" FIKIT_BIN_TO_LIBDIR "/libfikit.so");
  }
  candidates.push_back(FIKIT_INSTALL_LIBDIR "/libfikit.so");
  for (const std::string& c : candidates)
    if (access(c.c_str(), R_OK) == 0) return c;
  return candidates.front();
}

// Return `lib` as an absolute path, or exit 2 if it is not a readable file.
std::string resolve_lib(const std::string& lib) {
  char abs[PATH_MAX];
  if (lib.empty() || !realpath(lib.c_str(), abs) || access(abs, R_OK) != 0)
    fail_usage("libfikit.so not found at '%s': pass --lib PATH or set FIKIT_LIB",
               lib.empty() ? "(unknown)" : lib.c_str());
  return abs;
}

// Put `lib` first in LD_PRELOAD, keeping what was there.
void set_preload(const std::string& lib) {
  const char* old = getenv("LD_PRELOAD");
  std::string value = lib;
  if (old && *old) {
    if (strstr(old, lib.c_str())) {
      value = old;  // already preloaded
    } else {
      value += ':';
      value += old;
    }
  }
  setenv("LD_PRELOAD", value.c_str(), 1);
}

struct Options {
  std::string priority;
  std::string name;
  std::string socket;
  std::string lib;
  std::string log_level;  // FIKIT_LOG of the tenant
  bool no_mps = false;
  bool name_given = false, socket_given = false;  // (an empty one is an error)
  std::vector<std::string> command;
};

// Parse the command line (CLI11). Exits 0 after --help or --version, 2 on a usage error.
Options parse(int argc, char** argv) {
  Options o;
  const char* env_lib = getenv("FIKIT_LIB");
  o.lib = env_lib && *env_lib ? env_lib : default_lib();
  CLI::App app(kDescription, "fikit-run");
  // As with getopt, the last of a repeated option wins.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.set_version_flag("--version", fikit::version_text("fikit-run"));
  app.set_help_flag("-h,--help", "show this help");
  app.add_option("-p,--priority", o.priority,
                 "high, normal, low, or 0.." + std::to_string(fikit::kPriorityLevels - 1) +
                     " (0 is the\nhighest); required")
      ->type_name("LEVEL");
  CLI::Option* name =
      app.add_option("-n,--name", o.name,
                     "tenant name shown by the broker (default: program\nname), at most " +
                         std::to_string(fikit::kNameLen - 1) + " bytes")
          ->type_name("NAME");
  CLI::Option* socket = app.add_option("-s,--socket", o.socket,
                                       "broker socket (default: $FIKIT_SOCKET, else\n" +
                                           std::string(fikit::kDefaultSocket) + ")")
                            ->type_name("PATH");
  app.add_option("-l,--lib", o.lib,
                 "libfikit.so to preload (default: $FIKIT_LIB, else\n"
                 "<dir of fikit-run>/../lib/libfikit.so, else\n" FIKIT_INSTALL_LIBDIR
                 "/libfikit.so)")
      ->type_name("PATH");
  app.add_option("--log-level", o.log_level,
                 "the library's log level (FIKIT_LOG): debug,\ninfo, warn, error or off")
      ->type_name("LEVEL");
  app.add_flag("--no-mps", o.no_mps, "do not join the broker's MPS daemon");
  // Everything from CMD on is CMD's, options included, even without "--".
  app.prefix_command();
  app.footer(kExamples);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    fputs(app.help().c_str(), stdout);
    exit(0);
  } catch (const CLI::CallForVersion&) {
    printf("%s\n", fikit::version_text("fikit-run").c_str());
    exit(0);
  } catch (const CLI::ParseError& e) {
    fail_usage("%s", e.what());
  }
  o.name_given = name->count() > 0;
  o.socket_given = socket->count() > 0;
  o.command = app.remaining();
  if (!o.command.empty() && o.command[0] == "--")
    o.command.erase(o.command.begin());
  else if (!o.command.empty() && o.command[0].size() > 1 && o.command[0][0] == '-')
    fail_usage("unknown option '%s'", o.command[0].c_str());
  return o;
}

void check(const Options& o) {
  if (o.priority.empty()) fail_usage("%s", "missing --priority (high, normal, low or 0..7)");
  if (fikit::priority_parse(o.priority.c_str()) < 0)
    fail_usage("unknown priority '%s': use high, normal, low or 0..7 (0 is the highest)",
               o.priority.c_str());
  if (o.name_given && (o.name.empty() || o.name.size() >= fikit::kNameLen))
    fail_usage("tenant name '%s' must be 1 to 31 bytes", o.name.c_str());
  size_t bad_at = 0;
  if (o.name_given && fikit::tenant_name__check(o.name.c_str(), fikit::kNameLen, &bad_at))
    fail_usage(
        "tenant name '%s' is not printable UTF-8 (FIKIT_TENANT and --name take no "
        "control characters)",
        o.name.c_str());
  if (o.socket_given && (o.socket.empty() || o.socket.size() >= sizeof(sockaddr_un::sun_path)))
    fail_usage("socket path '%s' is empty or too long (at most 107 bytes)", o.socket.c_str());
  static const char* const kLevels[] = {"", "debug", "info", "warn", "error", "off"};
  if (std::none_of(std::begin(kLevels), std::end(kLevels),
                   [&](const char* l) { return o.log_level == l; }))
    fail_usage("unknown log level '%s': use debug, info, warn, error or off", o.log_level.c_str());
  if (o.command.empty()) fail_usage("%s", "no command given: fikit-run --priority LEVEL -- CMD");
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  check(o);
  std::string lib = resolve_lib(o.lib);
  set_preload(lib);
  setenv("FIKIT_PRIORITY", o.priority.c_str(), 1);
  if (!o.name.empty()) setenv("FIKIT_TENANT", o.name.c_str(), 1);
  if (!o.socket.empty()) setenv("FIKIT_SOCKET", o.socket.c_str(), 1);
  if (!o.log_level.empty()) setenv("FIKIT_LOG", o.log_level.c_str(), 1);
  if (!o.no_mps) {
    const char* env = getenv("FIKIT_SOCKET");
    std::string socket = env && *env ? env : fikit::kDefaultSocket;
    std::string warning = fikit::run::join_mps(fikit::run::query_substrate(socket, 2000),
                                               fikit::priority_parse(o.priority.c_str()));
    if (!warning.empty()) fprintf(stderr, "fikit-run: %s\n", warning.c_str());
  }
  std::vector<char*> args;
  for (std::string& a : o.command) args.push_back(a.data());
  args.push_back(nullptr);
  execvp(args[0], args.data());
  fprintf(stderr, "fikit-run: failed to run '%s': %s\n", args[0], strerror(errno));
  return kExitExecFailed;
}
