// Kernels of the fikit-chain workload. Compiled to PTX at build time (nvcc -ptx -arch=compute_90)
// and embedded in the program, which loads it with cuModuleLoadData. The simulated driver ignores
// the image: there only the kernel names and their (ns, tag) parameters matter.

__device__ __forceinline__ unsigned long long globaltimer() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// Busy-wait `ns` nanoseconds in every block (a timer spin: it occupies SMs, not their units).
// `tag` names the launch in traces and does nothing here.
extern "C" __global__ void spin(unsigned long long ns, unsigned long long tag) {
  unsigned long long start = globaltimer();
  while (globaltimer() - start < ns) {
  }
  (void)tag;
}

// Keep the FMA units busy for `ns` nanoseconds in every block: chunks of dependent FMAs between
// timer reads, so the duration holds at any clock speed. fikit-chain launches one block of 1024
// threads per SM, which keeps every FP32 pipe busy (measured on an H100: 1011 us for 1000 us,
// launch and synchronization included, as spin).
extern "C" __global__ void burn(unsigned long long ns, unsigned long long tag) {
  float a = threadIdx.x * 1e-3f;
  const float b = 1.0001f;
  unsigned long long start = globaltimer();
  do {
#pragma unroll 64
    for (int i = 0; i < 256; i++) a = fmaf(a, b, 1e-7f);
  } while (globaltimer() - start < ns);
  // Never true; keeps the FMA chain from being optimized away.
  if (a == -1.0f && tag == ~0ull) asm volatile("trap;");
}
