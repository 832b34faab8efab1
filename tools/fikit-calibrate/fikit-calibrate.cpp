// fikit-calibrate: measure the time-slicing switch-back cost of the GPU, for fikit-broker.
//
// Two processes (two CUDA contexts) take turns: the second runs a short kernel, then the first
// runs the same kernel twice, each launch followed by a synchronize. The first of the two pays for
// getting the GPU back from the other context; the second does not. The switch-back cost is the
// difference of their medians. Under MPS both processes share one context and the cost is ~0.
// Host-side hand-offs (a pipe) happen outside the timed windows. Driver API only: it runs on the
// simulated driver (LD_LIBRARY_PATH=<build>/sim) as on a real GPU.
#include <cuda.h>
#include <fcntl.h>
#include <fikit/gpu_uuid.h>
#include <fikit/version.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kernels_ptx.h"

namespace {

const char kUsage[] =
    R"(usage: fikit-calibrate [--rounds N] [--warmup N] [--kernel-us X] [--budget-ms M]
                       [--kernel spin|burn] [--grid N] [--block N]
                       [--log-level LEVEL] [--version]
       fikit-calibrate --list

Measure the time-slicing switch-back cost: the extra time a kernel of one process takes when
another process's kernel ran on the GPU just before it. fikit-broker runs this at start-up.

  --rounds N      measured rounds (default 100)
  --warmup N      rounds before measuring (default 5)
  --kernel-us X   kernel duration in microseconds (default 20)
  --budget-ms M   stop measuring after M ms, once 10 rounds are done (default 1000)
  --kernel K      spin (a timer busy-wait, default) or burn (FMA chains)
  --grid N        blocks per kernel (default 1: the cost measured is the switch, not the
                  kernel; e.g. --kernel burn --grid 132 --block 1024 fills an H100)
  --block N       threads per block (default 32)
  --log-level L   debug also prints the settings on stderr; info, warn, error
  --version       print the version, the ABI and the git commit
  --list          print the GPUs the CUDA driver shows, one line each (gpu=ORDINAL uuid=GPU-...
                  driver=VERSION name="..."), and exit; it launches nothing (fikit-broker lists
                  its GPUs this way when /proc/driver/nvidia/gpus has none: the simulated driver)

It measures CUDA device 0: set CUDA_VISIBLE_DEVICES to pick a GPU (fikit-broker measures each
GPU this way, by UUID).

Prints one line: switch_back_us (median after the other process minus median after itself),
after_other_us, after_self_us, their p10/p90, rounds, kernel_us and the device name.
Exit status: 0 measured, 1 CUDA error, 2 usage error, 3 the second process failed.
)";

using Clock = std::chrono::steady_clock;

struct Args {
  int rounds = 100;
  int warmup = 5;
  double kernel_us = 20;
  double budget_ms = 1000;
  std::string kernel = "spin";
  unsigned grid = 1, block = 32;
  bool debug = false;  // --log-level debug: the settings on stderr before measuring
  bool list = false;   // --list
};

[[noreturn]] void usage_error(const std::string& msg) {
  fprintf(stderr, "fikit-calibrate: %s\nTry 'fikit-calibrate --help'.\n", msg.c_str());
  exit(2);
}

// Parse the command line (CLI11; the help text is kUsage). Exits 0 after --help or --version, 2
// on a usage error.
Args parse(int argc, char** argv) {
  Args a;
  CLI::App app("", "fikit-calibrate");
  app.set_help_flag();
  bool help = false, version = false;
  std::string level;
  app.add_flag("-h,--help", help);
  app.add_flag("--version", version);
  app.add_flag("--list", a.list);
  app.add_option("--rounds", a.rounds)->check(CLI::Range(1, 1'000'000));
  app.add_option("--warmup", a.warmup)->check(CLI::Range(0, 1'000'000));
  app.add_option("--kernel-us", a.kernel_us)->check(CLI::Range(1e-3, 1e9));
  app.add_option("--budget-ms", a.budget_ms)->check(CLI::Range(0.0, 1e12));
  app.add_option("--kernel", a.kernel)->check(CLI::IsMember({"spin", "burn"}));
  app.add_option("--grid", a.grid)->check(CLI::Range(1u, 1u << 31));
  app.add_option("--block", a.block)->check(CLI::Range(1u, 1024u));
  app.add_option("--log-level", level)->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    usage_error(e.what());
  }
  if (help) {
    fputs(kUsage, stdout);
    exit(0);
  }
  if (version) {
    printf("%s\n", fikit::version_text("fikit-calibrate").c_str());
    exit(0);
  }
  a.debug = level == "debug";
  return a;
}

// Print what failed and exit 1.
void check(CUresult r, const char* what, const char* who) {
  if (r == CUDA_SUCCESS) return;
  const char* name = nullptr;
  cuGetErrorName(r, &name);
  fprintf(stderr, "fikit-calibrate (%s): %s failed: %s\n", who, what, name ? name : "unknown");
  exit(1);
}

// --list: every device, without creating a context.
int list_gpus() {
  check(cuInit(0), "cuInit", "list");
  int count = 0, driver = 0;
  check(cuDeviceGetCount(&count), "cuDeviceGetCount", "list");
  check(cuDriverGetVersion(&driver), "cuDriverGetVersion", "list");
  for (int i = 0; i < count; i++) {
    CUdevice dev;
    CUuuid uuid{};
    char name[256] = {};
    check(cuDeviceGet(&dev, i), "cuDeviceGet", "list");
    check(cuDeviceGetUuid(&uuid, dev), "cuDeviceGetUuid", "list");
    check(cuDeviceGetName(name, sizeof(name), dev), "cuDeviceGetName", "list");
    printf("gpu=%d uuid=%s driver=%d name=\"%s\"\n", i, fikit::gpu_uuid_text(uuid.bytes).c_str(),
           driver, name);
  }
  return 0;
}

struct Gpu {
  std::string name;
  std::string uuid;
  int driver = 0;
  CUfunction fn = nullptr;
  unsigned grid = 1, block = 32;
  CUstream stream = nullptr;
  const char* who = "";
};

Gpu open_gpu(const char* who, const Args& a) {
  Gpu g;
  g.who = who;
  g.grid = a.grid;
  g.block = a.block;
  CUdevice dev;
  CUcontext ctx;
  CUmodule mod;
  char name[256] = {};
  check(cuInit(0), "cuInit", who);
  check(cuDeviceGet(&dev, 0), "cuDeviceGet", who);
  check(cuDeviceGetName(name, sizeof(name), dev), "cuDeviceGetName", who);
  g.name = name;
  CUuuid uuid{};
  check(cuDeviceGetUuid(&uuid, dev), "cuDeviceGetUuid", who);
  g.uuid = fikit::gpu_uuid_text(uuid.bytes);
  check(cuDriverGetVersion(&g.driver), "cuDriverGetVersion", who);
  check(cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain", who);
  check(cuCtxSetCurrent(ctx), "cuCtxSetCurrent", who);
  check(cuModuleLoadData(&mod, kKernelsPtx), "cuModuleLoadData (no PTX for a real GPU?)", who);
  check(cuModuleGetFunction(&g.fn, mod, a.kernel.c_str()), "cuModuleGetFunction", who);
  check(cuStreamCreate(&g.stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate", who);
  return g;
}

// One kernel, synchronized. Return its wall time in microseconds.
double run_kernel(const Gpu& g, double us) {
  unsigned long long ns = static_cast<unsigned long long>(us * 1000), tag = 0;
  void* params[] = {&ns, &tag};
  auto t0 = Clock::now();
  check(cuLaunchKernel(g.fn, g.grid, 1, 1, g.block, 1, 1, 0, g.stream, params, nullptr),
        "cuLaunchKernel", g.who);
  check(cuStreamSynchronize(g.stream), "cuStreamSynchronize", g.who);
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

// Read one byte within timeout_ms. Return it, or -1 on end of file, error or timeout.
int read_byte(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) != 1) return -1;
  char c;
  return read(fd, &c, 1) == 1 ? c : -1;
}

bool write_byte(int fd, char c) { return write(fd, &c, 1) == 1; }

// The second process: a kernel for every 'k', until 'q' or end of file.
[[noreturn]] void other_main(int in, int out, const Args& a) {
  Gpu g = open_gpu("second process", a);
  write_byte(out, 'r');
  for (;;) {
    int c = read_byte(in, -1);
    if (c != 'k') _exit(0);
    run_kernel(g, a.kernel_us);
    if (!write_byte(out, 'd')) _exit(0);
  }
}

double pct(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank ? rank - 1 : 0)];
}

// The first process: rounds of (other's kernel, ours after it, ours after ours).
int first_main(const Args& a, int in, int out) {
  Gpu g = open_gpu("first process", a);
  if (read_byte(in, 10000) != 'r') {
    fprintf(stderr, "fikit-calibrate: the second process did not get ready\n");
    return 3;
  }
  std::vector<double> after_other, after_self;
  auto start = Clock::now();
  for (int i = 0; i < a.warmup + a.rounds; i++) {
    if (!write_byte(out, 'k') || read_byte(in, 5000) != 'd') {
      fprintf(stderr, "fikit-calibrate: the second process stopped answering\n");
      return 3;
    }
    double o = run_kernel(g, a.kernel_us);
    double s = run_kernel(g, a.kernel_us);
    if (i < a.warmup) {
      start = Clock::now();
      continue;
    }
    after_other.push_back(o);
    after_self.push_back(s);
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (after_other.size() >= 10 && ms > a.budget_ms) break;
  }
  write_byte(out, 'q');
  double mo = pct(after_other, 0.5), ms = pct(after_self, 0.5);
  printf(
      "switch_back_us=%.1f after_other_us=%.1f after_self_us=%.1f after_other_p10_us=%.1f "
      "after_other_p90_us=%.1f after_self_p10_us=%.1f after_self_p90_us=%.1f rounds=%zu "
      "kernel_us=%g kernel=%s grid=%u block=%u uuid=%s driver=%d device=\"%s\"\n",
      mo - ms, mo, ms, pct(after_other, 0.1), pct(after_other, 0.9), pct(after_self, 0.1),
      pct(after_self, 0.9), after_other.size(), a.kernel_us, a.kernel.c_str(), a.grid, a.block,
      g.uuid.c_str(), g.driver, g.name.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse(argc, argv);
  if (a.list) return list_gpus();
  if (a.debug)
    fprintf(stderr,
            "fikit-calibrate: rounds=%d warmup=%d kernel_us=%g budget_ms=%g kernel=%s grid=%u "
            "block=%u\n",
            a.rounds, a.warmup, a.kernel_us, a.budget_ms, a.kernel.c_str(), a.grid, a.block);
  int to_other[2], from_other[2];
  if (pipe2(to_other, O_CLOEXEC) != 0 || pipe2(from_other, O_CLOEXEC) != 0) {
    fprintf(stderr, "fikit-calibrate: failed to create pipes: %s\n", strerror(errno));
    return 1;
  }
  fflush(nullptr);
  // Fork before any CUDA call: each process gets its own context.
  pid_t child = fork();
  if (child < 0) {
    fprintf(stderr, "fikit-calibrate: failed to fork: %s\n", strerror(errno));
    return 1;
  }
  if (child == 0) {
    close(to_other[1]);
    close(from_other[0]);
    other_main(to_other[0], from_other[1], a);
  }
  close(to_other[0]);
  close(from_other[1]);
  int code = first_main(a, from_other[0], to_other[1]);
  close(to_other[1]);  // the second process ends at end of file, if it did not get 'q'
  int status = 0;
  waitpid(child, &status, 0);
  fflush(stdout);
  return code;
}
