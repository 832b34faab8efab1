// Launch hooks: describe the launch (kernel or graph, stream, dimensions) and hand it to
// launch_gated, which issues it through the real entry point at the right moment.
#include <cudaTypedefs.h>
#include <fikit/abi.h>

#include "../hook_table.h"
#include "../launch_path.h"
#include "hooks.h"

namespace fikit::client {
namespace {

struct KernelArgs {
  PFN_cuLaunchKernel_v4000 fn;
  CUfunction f;
  unsigned int grid[3];
  unsigned int block[3];
  unsigned int shared_mem;
  CUstream stream;
  void** params;
  void** extra;
};

CUresult issue_kernel(const void* p) noexcept {
  auto* a = static_cast<const KernelArgs*>(p);
  return a->fn(a->f, a->grid[0], a->grid[1], a->grid[2], a->block[0], a->block[1], a->block[2],
               a->shared_mem, a->stream, a->params, a->extra);
}

struct CoopArgs {
  PFN_cuLaunchCooperativeKernel_v9000 fn;
  KernelArgs k;
};

CUresult issue_coop(const void* p) noexcept {
  auto* a = static_cast<const CoopArgs*>(p);
  const KernelArgs& k = a->k;
  return a->fn(k.f, k.grid[0], k.grid[1], k.grid[2], k.block[0], k.block[1], k.block[2],
               k.shared_mem, k.stream, k.params);
}

struct ExArgs {
  PFN_cuLaunchKernelEx_v11060 fn;
  const CUlaunchConfig* config;
  CUfunction f;
  void** params;
  void** extra;
};

CUresult issue_ex(const void* p) noexcept {
  auto* a = static_cast<const ExArgs*>(p);
  return a->fn(a->config, a->f, a->params, a->extra);
}

struct GraphArgs {
  PFN_cuGraphLaunch_v10000 fn;
  CUgraphExec exec;
  CUstream stream;
};

CUresult issue_graph(const void* p) noexcept {
  auto* a = static_cast<const GraphArgs*>(p);
  return a->fn(a->exec, a->stream);
}

LaunchDesc kernel_desc(const KernelArgs& a, bool per_thread, uint32_t flags) noexcept {
  return LaunchDesc{a.stream,
                    per_thread,
                    a.f,
                    0,
                    {a.grid[0], a.grid[1], a.grid[2]},
                    {a.block[0], a.block[1], a.block[2]},
                    flags};
}

CUresult launch_ex(HookId id, bool per_thread, const CUlaunchConfig* config, CUfunction f,
                   void** params, void** extra) noexcept {
  auto fn = real_fn<PFN_cuLaunchKernelEx_v11060>(id);
  if (!fn) return CUDA_ERROR_NOT_FOUND;
  if (!config) return fn(config, f, params, extra);  // the driver reports the error
  uint32_t flags = 0;
  for (unsigned int i = 0; i < config->numAttrs && config->attrs; i++)
    if (config->attrs[i].id == CU_LAUNCH_ATTRIBUTE_COOPERATIVE &&
        config->attrs[i].value.cooperative)
      flags |= kFlagCooperative;
  ExArgs a{fn, config, f, params, extra};
  LaunchDesc d{config->hStream,
               per_thread,
               f,
               0,
               {config->gridDimX, config->gridDimY, config->gridDimZ},
               {config->blockDimX, config->blockDimY, config->blockDimZ},
               flags};
  return launch_gated(d, issue_ex, &a);
}

CUresult launch_graph(HookId id, bool per_thread, CUgraphExec exec, CUstream stream) noexcept {
  auto fn = real_fn<PFN_cuGraphLaunch_v10000>(id);
  if (!fn) return CUDA_ERROR_NOT_FOUND;
  GraphArgs a{fn, exec, stream};
  LaunchDesc d{stream, per_thread, nullptr, reinterpret_cast<uint64_t>(exec), {}, {}, kFlagGraph};
  return launch_gated(d, issue_graph, &a);
}

}  // namespace
}  // namespace fikit::client

using fikit::client::HookId;

#define FIKIT_KERNEL_ARGS                                                                        \
  f, {gridDimX, gridDimY, gridDimZ}, {blockDimX, blockDimY, blockDimZ}, sharedMemBytes, hStream, \
      kernelParams

#define FIKIT_DEFINE_LAUNCH_KERNEL(symbol, per_thread)                    \
  CUresult fikit_hook_##symbol FIKIT_KERNEL_PARAMS noexcept {             \
    using namespace fikit::client;                                        \
    auto fn = real_fn<PFN_cuLaunchKernel_v4000>(HookId::k_##symbol);      \
    if (!fn) return CUDA_ERROR_NOT_FOUND;                                 \
    KernelArgs a{fn, FIKIT_KERNEL_ARGS, extra};                           \
    return launch_gated(kernel_desc(a, per_thread, 0), issue_kernel, &a); \
  }

#define FIKIT_DEFINE_LAUNCH_COOP(symbol, per_thread)                                            \
  CUresult fikit_hook_##symbol FIKIT_COOP_PARAMS noexcept {                                     \
    using namespace fikit::client;                                                              \
    auto fn = real_fn<PFN_cuLaunchCooperativeKernel_v9000>(HookId::k_##symbol);                 \
    if (!fn) return CUDA_ERROR_NOT_FOUND;                                                       \
    CoopArgs a{fn, {nullptr, FIKIT_KERNEL_ARGS, nullptr}};                                      \
    return launch_gated(kernel_desc(a.k, per_thread, fikit::kFlagCooperative), issue_coop, &a); \
  }

FIKIT_DEFINE_LAUNCH_KERNEL(cuLaunchKernel, false)
FIKIT_DEFINE_LAUNCH_KERNEL(cuLaunchKernel_ptsz, true)
FIKIT_DEFINE_LAUNCH_COOP(cuLaunchCooperativeKernel, false)
FIKIT_DEFINE_LAUNCH_COOP(cuLaunchCooperativeKernel_ptsz, true)

CUresult fikit_hook_cuLaunchKernelEx FIKIT_EX_PARAMS noexcept {
  return fikit::client::launch_ex(HookId::k_cuLaunchKernelEx, false, config, f, kernelParams,
                                  extra);
}

CUresult fikit_hook_cuLaunchKernelEx_ptsz FIKIT_EX_PARAMS noexcept {
  return fikit::client::launch_ex(HookId::k_cuLaunchKernelEx_ptsz, true, config, f, kernelParams,
                                  extra);
}

CUresult fikit_hook_cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream) noexcept {
  return fikit::client::launch_graph(HookId::k_cuGraphLaunch, false, hGraphExec, hStream);
}

CUresult fikit_hook_cuGraphLaunch_ptsz(CUgraphExec hGraphExec, CUstream hStream) noexcept {
  return fikit::client::launch_graph(HookId::k_cuGraphLaunch_ptsz, true, hGraphExec, hStream);
}
