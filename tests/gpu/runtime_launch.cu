// GPU test: a CUDA C++ program using the runtime API (cudart linked statically, nvcc's default)
// launches kernels in every way the runtime offers: <<<>>> on a created stream, on the legacy and
// the per-thread default streams, cudaLaunchKernelEx, cudaLaunchCooperativeKernel, and a captured
// graph. It checks the results on the host and, when libfikit.so is loaded, that the library saw
// each launch (fikit_get_stats, looked up with dlsym so that the program runs with or without the
// library).
//
// Usage: runtime_launch --expect none|connected|failopen
//   none       the library must not be loaded (baseline run)
//   connected  the library is loaded and registered with a broker: each launch is intercepted,
//              captured launches pass through
//   failopen   the library is loaded but no broker answers: every launch passes through
// Exit status: 0 pass, 1 fail, 77 skip (no GPU).
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <fikit/client.h>

#include <cstdio>
#include <cstring>
#include <vector>

namespace {

constexpr int kN = 4096;
constexpr int kBlock = 256;
constexpr int kGrid = kN / kBlock;

__global__ void add_kernel(int* a, int n, int k) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) a[i] += k;
}

enum class Expect { kNone, kConnected, kFailOpen };

using GetStatsFn = void (*)(fikit_client_stats*);
using ConnectedFn = int (*)();

struct Library {
  GetStatsFn get_stats = nullptr;
  ConnectedFn connected = nullptr;
  fikit_client_stats read() const {
    fikit_client_stats s{};
    if (get_stats) get_stats(&s);
    return s;
  }
};

int g_failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAIL: %s\n", what);
    g_failures++;
  }
}

bool cuda_ok(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return true;
  std::fprintf(stderr, "FAIL: failed to %s: %s\n", what, cudaGetErrorString(e));
  g_failures++;
  return false;
}

// One phase of launches: `calls` launch calls that together add `added` to every element.
struct Phase {
  const char* name;
  int calls;
  int added;
  bool captured;  // launches made during stream capture: they pass through, nothing runs
};

// Compare the library's counters over one phase with what the phase did. `launches` counts every
// launch the library intercepted; `passed_through` the subset it sent straight to the driver
// (fail open, or a launch into a stream capture, which builds a graph and runs nothing).
void check_counts(const Phase& p, Expect expect, const fikit_client_stats& a,
                  const fikit_client_stats& b) {
  unsigned long long seen = b.launches - a.launches;
  unsigned long long passed = b.passed_through - a.passed_through;
  unsigned long long calls = static_cast<unsigned long long>(p.calls);
  std::printf("%-22s calls=%-4d library: launches=%-4llu passed_through=%-4llu dropped=%llu\n",
              p.name, p.calls, seen, passed,
              static_cast<unsigned long long>(b.dropped - a.dropped));
  if (expect == Expect::kNone) return;
  char msg[160];
  std::snprintf(msg, sizeof msg, "%s: library saw %llu launches, the program made %llu", p.name,
                seen, calls);
  check(seen == calls, msg);
  unsigned long long want = (expect == Expect::kFailOpen || p.captured) ? calls : 0;
  std::snprintf(msg, sizeof msg, "%s: %llu launches passed through, expected %llu", p.name, passed,
                want);
  check(passed == want, msg);
}

void launch_chevrons(int* d, cudaStream_t s, int n) {
  for (int i = 0; i < n; i++) add_kernel<<<kGrid, kBlock, 0, s>>>(d, kN, 1);
}

void launch_ex(int* d, cudaStream_t s, int n) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(kGrid);
  cfg.blockDim = dim3(kBlock);
  cfg.stream = s;
  for (int i = 0; i < n; i++) cuda_ok(cudaLaunchKernelEx(&cfg, add_kernel, d, kN, 2), "launch Ex");
}

void launch_cooperative(int* d, cudaStream_t s, int n) {
  int size = kN, k = 3;
  void* args[] = {&d, &size, &k};
  for (int i = 0; i < n; i++) {
    cuda_ok(cudaLaunchCooperativeKernel(reinterpret_cast<void*>(add_kernel), dim3(kGrid),
                                        dim3(kBlock), args, 0, s),
            "launch cooperative kernel");
  }
}

// Capture `kernels` launches into a graph; return its executable form (or nullptr).
cudaGraphExec_t capture_graph(int* d, cudaStream_t s, int kernels) {
  cudaGraph_t g = nullptr;
  cudaGraphExec_t ge = nullptr;
  if (!cuda_ok(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), "begin capture"))
    return nullptr;
  launch_chevrons(d, s, kernels);
  if (!cuda_ok(cudaStreamEndCapture(s, &g), "end capture")) return nullptr;
  if (!cuda_ok(cudaGraphInstantiate(&ge, g, 0), "instantiate graph")) return nullptr;
  cudaGraphDestroy(g);
  return ge;
}

bool parse_expect(int argc, char** argv, Expect* out) {
  if (argc != 3 || std::strcmp(argv[1], "--expect") != 0) return false;
  if (!std::strcmp(argv[2], "none"))
    *out = Expect::kNone;
  else if (!std::strcmp(argv[2], "connected"))
    *out = Expect::kConnected;
  else if (!std::strcmp(argv[2], "failopen"))
    *out = Expect::kFailOpen;
  else
    return false;
  return true;
}

// Run every phase; return the value each element must hold afterwards.
int run_phases(int* d, cudaStream_t s, const Library& lib, Expect expect) {
  const Phase chev{"<<<>>> stream", 100, 100, false}, legacy{"<<<>>> legacy stream", 10, 10, false},
      per_thread{"<<<>>> per-thread", 10, 10, false}, ex{"cudaLaunchKernelEx", 50, 100, false},
      coop{"cooperative", 10, 30, false}, capture{"graph capture", 10, 0, true},
      graph{"cudaGraphLaunch", 20, 20 * 10, false};  // 20 launches of the 10 captured kernels
  auto a = lib.read();
  launch_chevrons(d, s, chev.calls);
  cuda_ok(cudaStreamSynchronize(s), "synchronize stream");
  auto b = lib.read();
  check_counts(chev, expect, a, b);
  launch_chevrons(d, 0, legacy.calls);
  cuda_ok(cudaDeviceSynchronize(), "synchronize device");
  a = lib.read();
  check_counts(legacy, expect, b, a);
  launch_chevrons(d, cudaStreamPerThread, per_thread.calls);
  cuda_ok(cudaStreamSynchronize(cudaStreamPerThread), "synchronize per-thread stream");
  b = lib.read();
  check_counts(per_thread, expect, a, b);
  launch_ex(d, s, ex.calls);
  cuda_ok(cudaStreamSynchronize(s), "synchronize stream");
  a = lib.read();
  check_counts(ex, expect, b, a);
  launch_cooperative(d, s, coop.calls);
  cuda_ok(cudaStreamSynchronize(s), "synchronize stream");
  b = lib.read();
  check_counts(coop, expect, a, b);
  cudaGraphExec_t ge = capture_graph(d, s, capture.calls);
  a = lib.read();
  check_counts(capture, expect, b, a);
  for (int i = 0; ge && i < graph.calls; i++) cuda_ok(cudaGraphLaunch(ge, s), "launch graph");
  cuda_ok(cudaStreamSynchronize(s), "synchronize stream");
  b = lib.read();
  // A graph launch is one launch for the library, whatever the graph holds.
  check_counts(graph, expect, a, b);
  if (ge) cudaGraphExecDestroy(ge);
  return chev.added + legacy.added + per_thread.added + ex.added + coop.added + graph.added;
}

}  // namespace

int main(int argc, char** argv) {
  Expect expect;
  if (!parse_expect(argc, argv, &expect)) {
    std::fprintf(stderr, "usage: %s --expect none|connected|failopen\n", argv[0]);
    return 2;
  }
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("SKIP: no CUDA device\n");
    return 77;
  }
  Library lib;
  lib.get_stats = reinterpret_cast<GetStatsFn>(dlsym(RTLD_DEFAULT, "fikit_get_stats"));
  lib.connected = reinterpret_cast<ConnectedFn>(dlsym(RTLD_DEFAULT, "fikit_connected"));
  if (expect == Expect::kNone) {
    check(lib.get_stats == nullptr, "libfikit is loaded in a run that expects none");
  } else if (!lib.get_stats || !lib.connected) {
    std::fprintf(stderr, "FAIL: libfikit.so is not loaded (fikit_get_stats not found)\n");
    return 1;
  }
  int* d = nullptr;
  cudaStream_t s = nullptr;
  if (!cuda_ok(cudaMalloc(&d, kN * sizeof(int)), "allocate device memory") ||
      !cuda_ok(cudaMemset(d, 0, kN * sizeof(int)), "clear device memory") ||
      !cuda_ok(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "create stream"))
    return 1;
  // The first launch registers the tenant; its counters start after it.
  launch_chevrons(d, s, 1);
  cuda_ok(cudaStreamSynchronize(s), "synchronize stream");
  if (expect != Expect::kNone) {
    int conn = lib.connected();
    std::printf("fikit_connected=%d\n", conn);
    check(conn == (expect == Expect::kConnected ? 1 : 0), "fikit_connected() is not as expected");
  }
  int want = 1 + run_phases(d, s, lib, expect);
  cuda_ok(cudaGetLastError(), "launch kernels");
  std::vector<int> h(kN, -1);
  cuda_ok(cudaMemcpy(h.data(), d, kN * sizeof(int), cudaMemcpyDeviceToHost), "copy results back");
  int bad = 0;
  for (int v : h) bad += v != want;
  std::printf("results: %d of %d elements wrong (each must be %d)\n", bad, kN, want);
  check(bad == 0, "kernel results are wrong");
  cudaStreamDestroy(s);
  cudaFree(d);
  std::printf("%s\n", g_failures ? "FAILED" : "PASSED");
  return g_failures ? 1 : 0;
}
