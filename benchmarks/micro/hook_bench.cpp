// HP hook path cost: cuLaunchKernel per call on the simulated driver. tools/run-benchmarks runs
// this binary twice, plain and with libfikit.so preloaded as an HP tenant of a running broker
// (FIKIT_SIM_LAUNCH_NS=0 so that the simulated launch costs only its bookkeeping); the difference
// is the hook's cost per launch.
#include <benchmark/benchmark.h>
#include <cuda.h>

#include <cstdio>
#include <cstdlib>

namespace {

struct SimKernel {
  CUcontext ctx = nullptr;
  CUfunction fn = nullptr;
  CUstream stream = nullptr;
  bool ok = false;
  SimKernel() {
    CUdevice dev;
    CUmodule mod;
    ok = cuInit(0) == CUDA_SUCCESS && cuDeviceGet(&dev, 0) == CUDA_SUCCESS &&
         cuDevicePrimaryCtxRetain(&ctx, dev) == CUDA_SUCCESS &&
         cuCtxSetCurrent(ctx) == CUDA_SUCCESS && cuModuleLoadData(&mod, "sim") == CUDA_SUCCESS &&
         cuModuleGetFunction(&fn, mod, "spin") == CUDA_SUCCESS &&
         cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING) == CUDA_SUCCESS;
  }
};

void BM_LaunchKernel(benchmark::State& state) {
  static SimKernel k;
  if (!k.ok) return state.SkipWithError("failed to set up the (simulated) driver");
  unsigned long long ns = 0, tag = 0;
  void* params[] = {&ns, &tag};
  uint64_t n = 0;
  for (auto _ : state) {
    tag++;
    if (cuLaunchKernel(k.fn, 1, 1, 1, 32, 1, 1, 0, k.stream, params, nullptr) != CUDA_SUCCESS)
      return state.SkipWithError("cuLaunchKernel failed");
    if (++n % 1024 == 0) {  // keep the simulated queue short; not timed
      state.PauseTiming();
      cuStreamSynchronize(k.stream);
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LaunchKernel);

}  // namespace
