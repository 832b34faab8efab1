// fikit-run: start a program as a fikit tenant. Preloads libfikit.so and passes the priority, the
// tenant name and the broker socket through the environment (FIKIT_PRIORITY, FIKIT_TENANT,
// FIKIT_SOCKET), joins the broker's MPS daemon if it runs one (CUDA_MPS_PIPE_DIRECTORY,
// mps_join.h), then execs the program. Nothing is run when an argument is invalid (exit 2).
#include <fikit/abi.h>
#include <fikit/protocol.h>
#include <fikit/tenant_name.h>
#include <fikit/util.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "mps_join.h"

namespace {

constexpr int kExitUsage = 2;
constexpr int kExitExecFailed = 127;

void usage(FILE* out) {
  fprintf(out,
          "usage: fikit-run --priority LEVEL [--name NAME] [--socket PATH] [--lib PATH] "
          "[--no-mps]\n"
          "                 -- CMD [ARG...]\n"
          "\n"
          "Run CMD as a fikit tenant: preload libfikit.so and set FIKIT_PRIORITY, FIKIT_TENANT\n"
          "and FIKIT_SOCKET. Without a running fikit-broker the program runs unmanaged. If the\n"
          "broker runs MPS (--substrate mps), CMD joins it: CUDA_MPS_PIPE_DIRECTORY and\n"
          "CUDA_MPS_LOG_DIRECTORY are set to the broker's (unless the pipe directory is set),\n"
          "and CUDA_MPS_CLIENT_PRIORITY to 1 below priority high, 0 at it (unless set).\n"
          "\n"
          "  -p, --priority LEVEL  high, normal, low, or 0..%u (0 is the highest); required\n"
          "  -n, --name NAME       tenant name shown by the broker (default: program name),\n"
          "                        at most %u bytes\n"
          "  -s, --socket PATH     broker socket (default: $FIKIT_SOCKET, else %s)\n"
          "  -l, --lib PATH        libfikit.so to preload (default: $FIKIT_LIB, else\n"
          "                        <dir of fikit-run>/../lib/libfikit.so, else\n"
          "                        " FIKIT_INSTALL_LIBDIR
          "/libfikit.so)\n"
          "      --no-mps          do not join the broker's MPS daemon\n"
          "  -h, --help            show this help\n"
          "\n"
          "EXAMPLES\n"
          "  fikit-run --priority high -- python serve.py          # latency-bound inference\n"
          "  fikit-run --priority low --name trainer -- python train.py\n"
          "  fikit-run -p 3 --socket /tmp/fikit.sock -- ./bench    # level 3, private broker\n"
          "  FIKIT_LOG=info fikit-run -p normal -- ./app           # print a summary at exit\n",
          fikit::kPriorityLevels - 1, fikit::kNameLen - 1, fikit::kDefaultSocket);
}

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
  const char* priority = nullptr;
  const char* name = nullptr;
  const char* socket = nullptr;
  std::string lib;
  bool no_mps = false;
};

Options parse(int argc, char** argv) {
  static const option kLong[] = {{"priority", required_argument, nullptr, 'p'},
                                 {"name", required_argument, nullptr, 'n'},
                                 {"socket", required_argument, nullptr, 's'},
                                 {"lib", required_argument, nullptr, 'l'},
                                 {"help", no_argument, nullptr, 'h'},
                                 {"no-mps", no_argument, nullptr, 'M'},
                                 {nullptr, 0, nullptr, 0}};
  Options o;
  const char* env_lib = getenv("FIKIT_LIB");
  o.lib = env_lib && *env_lib ? env_lib : default_lib();
  opterr = 0;
  int c;
  // '+': stop at the first non-option, so CMD's own options are left alone even without "--".
  while ((c = getopt_long(argc, argv, "+:p:n:s:l:h", kLong, nullptr)) != -1) {
    switch (c) {
      case 'p':
        o.priority = optarg;
        break;
      case 'n':
        o.name = optarg;
        break;
      case 's':
        o.socket = optarg;
        break;
      case 'l':
        o.lib = optarg;
        break;
      case 'M':
        o.no_mps = true;
        break;
      case 'h':
        usage(stdout);
        exit(0);
      case ':':
        fail_usage("option '%s' needs a value", argv[optind - 1]);
      default:
        fail_usage("unknown option '%s'", argv[optind - 1]);
    }
  }
  return o;
}

void check(const Options& o, int argc) {
  if (!o.priority) fail_usage("%s", "missing --priority (high, normal, low or 0..7)");
  if (fikit::priority_parse(o.priority) < 0)
    fail_usage("unknown priority '%s': use high, normal, low or 0..7 (0 is the highest)",
               o.priority);
  if (o.name && (!*o.name || strlen(o.name) >= fikit::kNameLen))
    fail_usage("tenant name '%s' must be 1 to 31 bytes", o.name);
  size_t bad_at = 0;
  if (o.name && fikit::tenant_name__check(o.name, fikit::kNameLen, &bad_at))
    fail_usage(
        "tenant name '%s' is not printable UTF-8 (FIKIT_TENANT and --name take no "
        "control characters)",
        o.name);
  if (o.socket && (!*o.socket || strlen(o.socket) >= sizeof(sockaddr_un::sun_path)))
    fail_usage("socket path '%s' is empty or too long (at most 107 bytes)", o.socket);
  if (optind >= argc) fail_usage("%s", "no command given: fikit-run --priority LEVEL -- CMD");
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  check(o, argc);
  std::string lib = resolve_lib(o.lib);
  set_preload(lib);
  setenv("FIKIT_PRIORITY", o.priority, 1);
  if (o.name) setenv("FIKIT_TENANT", o.name, 1);
  if (o.socket) setenv("FIKIT_SOCKET", o.socket, 1);
  if (!o.no_mps) {
    const char* env = getenv("FIKIT_SOCKET");
    std::string socket = env && *env ? env : fikit::kDefaultSocket;
    std::string warning = fikit::run::join_mps(fikit::run::query_substrate(socket, 2000),
                                               fikit::priority_parse(o.priority));
    if (!warning.empty()) fprintf(stderr, "fikit-run: %s\n", warning.c_str());
  }
  execvp(argv[optind], argv + optind);
  fprintf(stderr, "fikit-run: failed to run '%s': %s\n", argv[optind], strerror(errno));
  return kExitExecFailed;
}
