// Memory. "Device" memory is host memory (a CUdeviceptr is a host pointer), host registration
// accepts any range and maps it at the same address. Synchronous copies and memset wait for all
// the work of the current context, then copy at once. Asynchronous copies are stream-ordered in
// name only: they take no GPU time and copy at enqueue (no simulated kernel touches memory, so
// nothing can observe the difference).
#include <cstdlib>
#include <cstring>

#include "sim/sim_process.h"

using fikit::sim::process;
using fikit::sim::Process;
using fikit::sim::valid;

namespace {

constexpr size_t kAlign = 256;  // cudaMalloc's alignment

void* ptr(CUdeviceptr d) { return reinterpret_cast<void*>(static_cast<uintptr_t>(d)); }

// Wait for the current context's work, then run `fn`.
template <class Fn>
CUresult after_ctx_work(Fn fn) {
  Process* p = process();
  if (!p) return CUDA_ERROR_NOT_INITIALIZED;
  CUctx_st* ctx = fikit::sim::current_ctx();
  if (!valid(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
  fikit::sim::ctx_wait(p, ctx);
  fn();
  return CUDA_SUCCESS;
}

CUresult copy_async(void* dst, const void* src, size_t n, CUstream stream, bool ptsz) {
  if (!process()) return CUDA_ERROR_NOT_INITIALIZED;
  CUstream_st* s;
  if (CUresult r = fikit::sim::resolve_stream(stream, ptsz, &s); r != CUDA_SUCCESS) return r;
  if (s->capture) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  if (n && (!dst || !src)) return CUDA_ERROR_INVALID_VALUE;
  if (n) memcpy(dst, src, n);
  return CUDA_SUCCESS;
}

}  // namespace

CUresult CUDAAPI cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytesize) {
  if (!process()) return CUDA_ERROR_NOT_INITIALIZED;
  if (!dptr || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  if (!valid(fikit::sim::current_ctx())) return CUDA_ERROR_INVALID_CONTEXT;
  void* m = aligned_alloc(kAlign, (bytesize + kAlign - 1) / kAlign * kAlign);
  if (!m) return CUDA_ERROR_OUT_OF_MEMORY;
  *dptr = reinterpret_cast<uintptr_t>(m);
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemFree_v2(CUdeviceptr dptr) {
  if (!process()) return CUDA_ERROR_NOT_INITIALIZED;
  free(ptr(dptr));
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t n) {
  return after_ctx_work([&] { memcpy(ptr(dst), src, n); });
}

CUresult CUDAAPI cuMemcpyHtoD_v2_ptds(CUdeviceptr dst, const void* src, size_t n) {
  return after_ctx_work([&] { memcpy(ptr(dst), src, n); });
}

CUresult CUDAAPI cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t n) {
  return after_ctx_work([&] { memcpy(dst, ptr(src), n); });
}

CUresult CUDAAPI cuMemcpyDtoH_v2_ptds(void* dst, CUdeviceptr src, size_t n) {
  return after_ctx_work([&] { memcpy(dst, ptr(src), n); });
}

CUresult CUDAAPI cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t n, CUstream s) {
  return copy_async(ptr(dst), src, n, s, false);
}

CUresult CUDAAPI cuMemcpyHtoDAsync_v2_ptsz(CUdeviceptr dst, const void* src, size_t n, CUstream s) {
  return copy_async(ptr(dst), src, n, s, true);
}

CUresult CUDAAPI cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t n, CUstream s) {
  return copy_async(dst, ptr(src), n, s, false);
}

CUresult CUDAAPI cuMemcpyDtoHAsync_v2_ptsz(void* dst, CUdeviceptr src, size_t n, CUstream s) {
  return copy_async(dst, ptr(src), n, s, true);
}

CUresult CUDAAPI cuMemsetD8_v2(CUdeviceptr dst, unsigned char value, size_t n) {
  return after_ctx_work([&] { memset(ptr(dst), value, n); });
}

CUresult CUDAAPI cuMemsetD8_v2_ptds(CUdeviceptr dst, unsigned char value, size_t n) {
  return after_ctx_work([&] { memset(ptr(dst), value, n); });
}

CUresult CUDAAPI cuMemHostRegister_v2(void* p, size_t bytesize, unsigned int) {
  if (!process()) return CUDA_ERROR_NOT_INITIALIZED;
  if (!p || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemHostUnregister(void* p) {
  if (!process()) return CUDA_ERROR_NOT_INITIALIZED;
  return p ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult CUDAAPI cuMemHostGetDevicePointer_v2(CUdeviceptr* pdptr, void* p, unsigned int flags) {
  if (!process()) return CUDA_ERROR_NOT_INITIALIZED;
  if (!pdptr || !p || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  *pdptr = reinterpret_cast<uintptr_t>(p);
  return CUDA_SUCCESS;
}
