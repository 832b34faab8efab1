// fikit_bpf_gpu_workload: a CUDA program whose GPU lifecycle the observer must see on a real GPU
// (bpf_gpu_test), and a launch loop for the launch-audit cost (docs/BPF.md).
//
//   lifecycle   context, 256 MiB device memory, 3 streams, 64 MiB pinned; "allocated"; wait for a
//               line; frees them; "freed"; wait for a line; exit 0
//   launch N    N empty-kernel launches; prints "ns_per_launch X"
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

constexpr size_t kDeviceBytes = 256ull << 20;
constexpr size_t kPinnedBytes = 64ull << 20;
constexpr int kStreams = 3;

__global__ void empty_kernel() {}

void check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return;
  std::fprintf(stderr, "failed to %s: %s\n", what, cudaGetErrorString(err));
  std::exit(2);
}

void handshake(const char* phase) {
  std::printf("%s\n", phase);
  std::fflush(stdout);
  char line[16];
  if (!std::fgets(line, sizeof(line), stdin)) std::exit(4);
}

int lifecycle() {
  check(cudaFree(nullptr), "create the context");
  void* dev = nullptr;
  void* pinned = nullptr;
  cudaStream_t streams[kStreams];
  check(cudaMalloc(&dev, kDeviceBytes), "allocate device memory");
  check(cudaMallocHost(&pinned, kPinnedBytes), "allocate pinned memory");
  for (cudaStream_t& s : streams) check(cudaStreamCreate(&s), "create a stream");
  empty_kernel<<<1, 1, 0, streams[0]>>>();
  check(cudaDeviceSynchronize(), "synchronize");
  handshake("allocated");
  for (cudaStream_t s : streams) check(cudaStreamDestroy(s), "destroy a stream");
  check(cudaFree(dev), "free device memory");
  check(cudaFreeHost(pinned), "free pinned memory");
  handshake("freed");
  return 0;
}

int launch(long n) {
  check(cudaFree(nullptr), "create the context");
  for (int i = 0; i < 1000; i++) empty_kernel<<<1, 1>>>();
  check(cudaDeviceSynchronize(), "synchronize");
  const auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < n; i++) {
    empty_kernel<<<1, 1>>>();
    if (i % 1000 == 999) check(cudaDeviceSynchronize(), "synchronize");  // keep the queue short
  }
  check(cudaDeviceSynchronize(), "synchronize");
  const double ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
  std::printf("ns_per_launch %.1f\n", n > 0 ? ns / n : 0.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && !std::strcmp(argv[1], "lifecycle")) return lifecycle();
  if (argc > 2 && !std::strcmp(argv[1], "launch")) return launch(std::atol(argv[2]));
  std::fprintf(stderr, "usage: %s lifecycle | launch N\n", argv[0]);
  return 2;
}
