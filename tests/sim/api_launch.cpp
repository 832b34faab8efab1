// Kernel launches and completion markers.
//
// What a kernel does on the simulated GPU is decided by its name:
// - spin(uint64 duration_ns, uint64 tag): occupies min(blocks, SMs) SMs for duration_ns (mps:
//   `blocks` SM-sized blocks in waves, each wave duration_ns / waves);
// - burn(uint64 duration_ns, uint64 tag): occupies the whole GPU for duration_ns;
// - anything else: FIKIT_SIM_DEFAULT_KERNEL_US on the whole GPU, tag 0.
// A launch costs the calling thread FIKIT_SIM_LAUNCH_NS of busy CPU, a marker a quarter of it.
// Launches into a capturing stream are recorded in its graph instead (no GPU time, no CPU cost).
#include <algorithm>
#include <cstring>

#include "sim/sim_process.h"

using fikit::sim::KernelKind;
using fikit::sim::OpKind;
using fikit::sim::process;
using fikit::sim::Process;
using fikit::sim::SimOp;

namespace {

constexpr uint64_t kMaxBlocks = 1u << 24;  // more waves than any kernel of a simulated run needs

struct Launch {
  CUfunction f;
  unsigned grid[3];
  unsigned block[3];
  CUstream stream;
  void** params;
  void** extra;
};

// Read spin/burn's (duration_ns, tag) from kernelParams or from an `extra` parameter buffer.
bool read_params(void** params, void** extra, uint64_t out[2]) {
  if (params) {
    if (!params[0] || !params[1]) return false;
    memcpy(&out[0], params[0], sizeof(uint64_t));
    memcpy(&out[1], params[1], sizeof(uint64_t));
    return true;
  }
  const void* buf = nullptr;
  size_t size = 0;
  for (void** e = extra; e && e[0] != CU_LAUNCH_PARAM_END; e += 2) {
    if (e[0] == CU_LAUNCH_PARAM_BUFFER_POINTER) {
      buf = e[1];
    } else if (e[0] == CU_LAUNCH_PARAM_BUFFER_SIZE) {
      size = *static_cast<const size_t*>(e[1]);
    } else {
      return false;
    }
  }
  if (!buf || size < 2 * sizeof(uint64_t)) return false;
  memcpy(out, buf, 2 * sizeof(uint64_t));
  return true;
}

CUresult kernel_op(const Process* p, const CUstream_st* s, const Launch& l, SimOp* op) {
  uint64_t args[2] = {p->cfg.default_kernel_ns, 0};
  if (l.f->kind != KernelKind::kOther && !read_params(l.params, l.extra, args))
    return CUDA_ERROR_INVALID_VALUE;
  double demand = 1.0;
  uint64_t sms = s->ctx->dev->g->sms;
  uint64_t blocks = sms;  // burn and unknown kernels: one wave on every SM
  if (l.f->kind == KernelKind::kSpin) {
    // Each block the size of an SM (mps: waves of `sms` blocks, sim_mps_model.h).
    blocks = std::min<uint64_t>(uint64_t{l.grid[0]} * l.grid[1] * l.grid[2], kMaxBlocks);
    demand = static_cast<double>(std::min(blocks, sms)) / static_cast<double>(sms);
  }
  *op = SimOp{.kind = OpKind::kKernel,
              .name = l.f->name_index,
              .arg = args[1],
              .value = args[0],
              .remaining_ns = static_cast<double>(args[0]),
              .demand = demand,
              .blocks = static_cast<uint32_t>(blocks)};
  return CUDA_SUCCESS;
}

bool dims_valid(const Launch& l) {
  uint64_t threads = uint64_t{l.block[0]} * l.block[1] * l.block[2];
  return l.grid[0] && l.grid[1] && l.grid[2] && threads > 0 && threads <= 1024;
}

CUresult launch(const Launch& l, bool ptsz) {
  Process* p = process();
  if (!p) return CUDA_ERROR_NOT_INITIALIZED;
  if (!fikit::sim::valid(l.f)) return CUDA_ERROR_INVALID_HANDLE;
  if (!dims_valid(l)) return CUDA_ERROR_INVALID_VALUE;
  CUstream_st* s;
  if (CUresult r = fikit::sim::resolve_stream(l.stream, ptsz, &s); r != CUDA_SUCCESS) return r;
  SimOp op;
  if (CUresult r = kernel_op(p, s, l, &op); r != CUDA_SUCCESS) return r;
  if (s->capture) {
    s->capture->ops.push_back(op);
    return CUDA_SUCCESS;
  }
  fikit::sim::burn_cpu(p->cfg.launch_ns);
  return fikit::sim::push_op(p, s, op);
}

CUresult launch_ex(const CUlaunchConfig* c, CUfunction f, void** params, void** extra, bool ptsz) {
  if (!c) return CUDA_ERROR_INVALID_VALUE;
  return launch({f,
                 {c->gridDimX, c->gridDimY, c->gridDimZ},
                 {c->blockDimX, c->blockDimY, c->blockDimZ},
                 c->hStream,
                 params,
                 extra},
                ptsz);
}

CUresult write_value64(CUstream stream, CUdeviceptr addr, cuuint64_t value, unsigned flags,
                       bool ptsz) {
  Process* p = process();
  if (!p) return CUDA_ERROR_NOT_INITIALIZED;
  if (!addr || addr % sizeof(uint64_t) || (flags & ~CU_STREAM_WRITE_VALUE_NO_MEMORY_BARRIER))
    return CUDA_ERROR_INVALID_VALUE;
  CUstream_st* s;
  if (CUresult r = fikit::sim::resolve_stream(stream, ptsz, &s); r != CUDA_SUCCESS) return r;
  SimOp op{.kind = OpKind::kWrite64, .arg = addr, .value = value};
  if (s->capture) {
    s->capture->ops.push_back(op);
    return CUDA_SUCCESS;
  }
  fikit::sim::burn_cpu(p->cfg.launch_ns / 4);
  return fikit::sim::push_op(p, s, op);
}

}  // namespace

CUresult CUDAAPI cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                unsigned by, unsigned bz, unsigned, CUstream s, void** params,
                                void** extra) {
  return launch({f, {gx, gy, gz}, {bx, by, bz}, s, params, extra}, false);
}

CUresult CUDAAPI cuLaunchKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                                     unsigned bx, unsigned by, unsigned bz, unsigned, CUstream s,
                                     void** params, void** extra) {
  return launch({f, {gx, gy, gz}, {bx, by, bz}, s, params, extra}, true);
}

CUresult CUDAAPI cuLaunchKernelEx(const CUlaunchConfig* config, CUfunction f, void** params,
                                  void** extra) {
  return launch_ex(config, f, params, extra, false);
}

CUresult CUDAAPI cuLaunchKernelEx_ptsz(const CUlaunchConfig* config, CUfunction f, void** params,
                                       void** extra) {
  return launch_ex(config, f, params, extra, true);
}

CUresult CUDAAPI cuLaunchCooperativeKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                                           unsigned bx, unsigned by, unsigned bz, unsigned,
                                           CUstream s, void** params) {
  return launch({f, {gx, gy, gz}, {bx, by, bz}, s, params, nullptr}, false);
}

CUresult CUDAAPI cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                                                unsigned bx, unsigned by, unsigned bz, unsigned,
                                                CUstream s, void** params) {
  return launch({f, {gx, gy, gz}, {bx, by, bz}, s, params, nullptr}, true);
}

CUresult CUDAAPI cuStreamWriteValue64(CUstream s, CUdeviceptr addr, cuuint64_t value,
                                      unsigned int flags) {
  return write_value64(s, addr, value, flags, false);
}

CUresult CUDAAPI cuStreamWriteValue64_ptsz(CUstream s, CUdeviceptr addr, cuuint64_t value,
                                           unsigned int flags) {
  return write_value64(s, addr, value, flags, true);
}

CUresult CUDAAPI cuStreamWriteValue64_v2(CUstream s, CUdeviceptr addr, cuuint64_t value,
                                         unsigned int flags) {
  return write_value64(s, addr, value, flags, false);
}

CUresult CUDAAPI cuStreamWriteValue64_v2_ptsz(CUstream s, CUdeviceptr addr, cuuint64_t value,
                                              unsigned int flags) {
  return write_value64(s, addr, value, flags, true);
}
