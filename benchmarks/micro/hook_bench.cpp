// HP hook path cost: cuLaunchKernel per call, on whichever libcuda.so.1 LD_LIBRARY_PATH gives (the
// binary has no build RPATH): the simulated driver (<build>/sim, FIKIT_SIM_LAUNCH_NS=0 so that a
// launch costs only its bookkeeping) or the real one (an empty kernel, JIT-compiled from the PTX
// below). benchmarks/micro/hook-bench.sh runs it plain, with libfikit.so preloaded as an HP tenant
// of a running broker, and preloaded without a broker (fail open); the difference is the hook's
// cost per launch. The label names the device, so a run on the wrong driver shows; the counters
// say whether libfikit.so was loaded and connected, and what it counted during the run.
#include <benchmark/benchmark.h>
#include <cuda.h>
#include <dlfcn.h>

#include <cstdint>
#include <string>

#include "fikit/client.h"

namespace {

// spin(ns, tag): the simulated driver knows a kernel by its name alone and ignores the image; the
// real driver JIT-compiles this empty kernel (sm_80 PTX runs on sm_80 and newer).
constexpr const char kSpinPtx[] = R"(
.version 7.0
.target sm_80
.address_size 64
.visible .entry spin(.param .u64 spin_param_0, .param .u64 spin_param_1)
{
  ret;
}
)";

std::string cu_error(const char* call, CUresult r) {
  const char* name = nullptr;
  if (cuGetErrorName(r, &name) != CUDA_SUCCESS || !name) name = "unknown error";
  return std::string("failed to ") + call + ": " + name + " (" + std::to_string(r) + ")";
}

struct Kernel {
  CUfunction fn = nullptr;
  CUstream stream = nullptr;
  std::string device;  // the GPU's name: "fikit simulated GPU" or the real one
  std::string error;   // empty when set up
  Kernel() { error = setup(); }

  std::string setup() {
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    char name[256] = {};
    CUresult r;
    if ((r = cuInit(0)) != CUDA_SUCCESS) return cu_error("cuInit", r);
    if ((r = cuDeviceGet(&dev, 0)) != CUDA_SUCCESS) return cu_error("cuDeviceGet", r);
    if ((r = cuDeviceGetName(name, sizeof(name) - 1, dev)) != CUDA_SUCCESS)
      return cu_error("cuDeviceGetName", r);
    device = name;
    if ((r = cuDevicePrimaryCtxRetain(&ctx, dev)) != CUDA_SUCCESS)
      return cu_error("cuDevicePrimaryCtxRetain", r);
    if ((r = cuCtxSetCurrent(ctx)) != CUDA_SUCCESS) return cu_error("cuCtxSetCurrent", r);
    if ((r = cuModuleLoadData(&mod, kSpinPtx)) != CUDA_SUCCESS)
      return cu_error("cuModuleLoadData (the spin kernel's PTX; needs sm_80 or newer)", r);
    if ((r = cuModuleGetFunction(&fn, mod, "spin")) != CUDA_SUCCESS)
      return cu_error("cuModuleGetFunction spin", r);
    if ((r = cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING)) != CUDA_SUCCESS)
      return cu_error("cuStreamCreate", r);
    return "";
  }
};

// libfikit.so's C API if it is in the process (preloaded); null functions without it.
struct Fikit {
  decltype(&fikit_get_stats) get_stats =
      reinterpret_cast<decltype(&fikit_get_stats)>(dlsym(RTLD_DEFAULT, "fikit_get_stats"));
  decltype(&fikit_connected) connected =
      reinterpret_cast<decltype(&fikit_connected)>(dlsym(RTLD_DEFAULT, "fikit_connected"));
  fikit_client_stats stats() const {
    fikit_client_stats s{};
    if (get_stats) get_stats(&s);
    return s;
  }
};

void BM_LaunchKernel(benchmark::State& state) {
  static Kernel k;
  static Fikit fikit;
  if (!k.error.empty()) return state.SkipWithError(k.error.c_str());
  state.SetLabel(k.device);
  unsigned long long ns = 0, tag = 0;
  void* params[] = {&ns, &tag};
  uint64_t n = 0;
  fikit_client_stats before = fikit.stats();
  for (auto _ : state) {
    tag++;
    if (CUresult r = cuLaunchKernel(k.fn, 1, 1, 1, 32, 1, 1, 0, k.stream, params, nullptr);
        r != CUDA_SUCCESS)
      return state.SkipWithError(cu_error("cuLaunchKernel", r).c_str());
    if (++n % 1024 == 0) {  // keep the (simulated) queue short; not timed
      state.PauseTiming();
      cuStreamSynchronize(k.stream);
      state.ResumeTiming();
    }
  }
  cuStreamSynchronize(k.stream);
  fikit_client_stats after = fikit.stats();
  state.SetItemsProcessed(state.iterations());
  // 1 = libfikit.so in the process; connected 1 = an HP tenant of a broker, 0 = fail open.
  state.counters["fikit"] = fikit.get_stats ? 1 : 0;
  state.counters["connected"] = fikit.connected ? fikit.connected() : 0;
  state.counters["seen"] = static_cast<double>(after.launches - before.launches);
  state.counters["passed"] = static_cast<double>(after.passed_through - before.passed_through);
  state.counters["dropped"] = static_cast<double>(after.dropped - before.dropped);
}
BENCHMARK(BM_LaunchKernel)->Unit(benchmark::kNanosecond);

}  // namespace
