// Contexts. Each context has its own GPU context slot (the unit of time-slicing) and two default
// streams. The primary context is created on first retain and lives as long as the process.
#include <algorithm>

#include "sim/sim_process.h"

using fikit::sim::process;
using fikit::sim::Process;
using fikit::sim::valid;

CUresult CUDAAPI cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev) {
  Process* p = process();
  if (!p) return CUDA_ERROR_NOT_INITIALIZED;
  if (!pctx) return CUDA_ERROR_INVALID_VALUE;
  fikit::sim::Device* d = fikit::sim::device_of(p, dev);
  if (!d) return CUDA_ERROR_INVALID_DEVICE;
  std::lock_guard<std::mutex> l(p->mu);
  if (!d->primary) d->primary = fikit::sim::ctx_create(p, d);
  if (!d->primary) return CUDA_ERROR_OUT_OF_MEMORY;
  d->primary_refs++;
  *pctx = d->primary;
  return CUDA_SUCCESS;
}

// The reference is dropped but the primary context stays (a real driver would destroy it at 0).
CUresult CUDAAPI cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
  Process* p = process();
  if (!p) return CUDA_ERROR_NOT_INITIALIZED;
  fikit::sim::Device* d = fikit::sim::device_of(p, dev);
  if (!d) return CUDA_ERROR_INVALID_DEVICE;
  std::lock_guard<std::mutex> l(p->mu);
  if (d->primary_refs == 0) return CUDA_ERROR_INVALID_CONTEXT;
  d->primary_refs--;
  return CUDA_SUCCESS;
}

// Creation parameters (affinity, CIG) and flags are accepted and ignored.
CUresult CUDAAPI cuCtxCreate_v4(CUcontext* pctx, CUctxCreateParams*, unsigned int, CUdevice dev) {
  Process* p = process();
  if (!p) return CUDA_ERROR_NOT_INITIALIZED;
  if (!pctx) return CUDA_ERROR_INVALID_VALUE;
  fikit::sim::Device* d = fikit::sim::device_of(p, dev);
  if (!d) return CUDA_ERROR_INVALID_DEVICE;
  CUctx_st* ctx = fikit::sim::ctx_create(p, d);
  if (!ctx) return CUDA_ERROR_OUT_OF_MEMORY;
  fikit::sim::ctx_stack().push_back(ctx);
  *pctx = ctx;
  return CUDA_SUCCESS;
}

// Waits for the context's work, then frees it with its streams. The context's memory stays
// (invalid as a handle): other threads may still have it current.
CUresult CUDAAPI cuCtxDestroy_v2(CUcontext ctx) {
  Process* p = process();
  if (!p) return CUDA_ERROR_NOT_INITIALIZED;
  if (!valid(ctx) || ctx == ctx->dev->primary) return CUDA_ERROR_INVALID_CONTEXT;
  fikit::sim::ctx_wait(p, ctx);
  {
    fikit::sim::ShmLock lock(ctx->dev->g);
    fikit::sim::ctx_free(*ctx->dev->g, ctx->slot);
    fikit::sim::bump_generation(*ctx->dev->g);
  }
  for (const void* h : p->handles.list(fikit::sim::HandleKind::kStream)) {
    auto* s = static_cast<CUstream_st*>(const_cast<void*>(h));
    if (s->ctx == ctx) fikit::sim::retire(p, s);
  }
  p->handles.remove(ctx);
  {
    std::lock_guard<std::mutex> l(p->mu);
    p->dead_contexts.emplace_back(ctx);
  }
  auto& stack = fikit::sim::ctx_stack();
  stack.erase(std::remove(stack.begin(), stack.end(), ctx), stack.end());
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxSetCurrent(CUcontext ctx) {
  if (!process()) return CUDA_ERROR_NOT_INITIALIZED;
  auto& stack = fikit::sim::ctx_stack();
  if (!ctx) {
    if (!stack.empty()) stack.pop_back();
    return CUDA_SUCCESS;
  }
  if (!valid(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
  if (stack.empty()) {
    stack.push_back(ctx);
  } else {
    stack.back() = ctx;
  }
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxGetCurrent(CUcontext* pctx) {
  if (!process()) return CUDA_ERROR_NOT_INITIALIZED;
  if (!pctx) return CUDA_ERROR_INVALID_VALUE;
  *pctx = fikit::sim::current_ctx();
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxPushCurrent_v2(CUcontext ctx) {
  if (!process()) return CUDA_ERROR_NOT_INITIALIZED;
  if (!valid(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
  fikit::sim::ctx_stack().push_back(ctx);
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxPopCurrent_v2(CUcontext* pctx) {
  if (!process()) return CUDA_ERROR_NOT_INITIALIZED;
  auto& stack = fikit::sim::ctx_stack();
  if (stack.empty()) return CUDA_ERROR_INVALID_CONTEXT;
  if (pctx) *pctx = stack.back();
  stack.pop_back();
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxGetDevice(CUdevice* device) {
  if (!process()) return CUDA_ERROR_NOT_INITIALIZED;
  if (!device) return CUDA_ERROR_INVALID_VALUE;
  CUctx_st* ctx = fikit::sim::current_ctx();
  if (!valid(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
  *device = static_cast<CUdevice>(ctx->dev->ordinal);
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxSynchronize() {
  Process* p = process();
  if (!p) return CUDA_ERROR_NOT_INITIALIZED;
  CUctx_st* ctx = fikit::sim::current_ctx();
  if (!valid(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
  fikit::sim::ctx_wait(p, ctx);
  return CUDA_SUCCESS;
}
