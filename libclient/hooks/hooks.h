// The exported hooks. Each is defined as fikit_hook_<symbol> and exported under <symbol> (asm
// label), so that cuda.h's own declarations (and its renaming macros) never clash with ours. Every
// row of hook_list.def must be declared here: hooks/procaddress.cpp takes their addresses.
#pragma once

#include <cuda.h>

#define FIKIT_EXPORT extern "C" __attribute__((visibility("default")))
#define FIKIT_HOOK_DECL(ret, symbol, params) \
  FIKIT_EXPORT ret fikit_hook_##symbol params noexcept __asm__(#symbol)

// Dimensions and stream of a kernel launch, as cuLaunchKernel takes them.
#define FIKIT_KERNEL_PARAMS                                                           \
  (CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ, \
   unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ,            \
   unsigned int sharedMemBytes, CUstream hStream, void** kernelParams, void** extra)
#define FIKIT_COOP_PARAMS                                                             \
  (CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ, \
   unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ,            \
   unsigned int sharedMemBytes, CUstream hStream, void** kernelParams)
#define FIKIT_EX_PARAMS \
  (const CUlaunchConfig* config, CUfunction f, void** kernelParams, void** extra)
#define FIKIT_CAPTURE_TO_GRAPH_PARAMS                                 \
  (CUstream hStream, CUgraph hGraph, const CUgraphNode* dependencies, \
   const CUgraphEdgeData* dependencyData, size_t numDependencies, CUstreamCaptureMode mode)

// hooks/procaddress.cpp
FIKIT_HOOK_DECL(void*, dlsym, (void* handle, const char* name));
FIKIT_HOOK_DECL(CUresult, cuGetProcAddress,
                (const char* symbol, void** pfn, int cudaVersion, cuuint64_t flags));
FIKIT_HOOK_DECL(CUresult, cuGetProcAddress_v2,
                (const char* symbol, void** pfn, int cudaVersion, cuuint64_t flags,
                 CUdriverProcAddressQueryResult* symbolStatus));

// hooks/launch.cpp
FIKIT_HOOK_DECL(CUresult, cuLaunchKernel, FIKIT_KERNEL_PARAMS);
FIKIT_HOOK_DECL(CUresult, cuLaunchKernel_ptsz, FIKIT_KERNEL_PARAMS);
FIKIT_HOOK_DECL(CUresult, cuLaunchKernelEx, FIKIT_EX_PARAMS);
FIKIT_HOOK_DECL(CUresult, cuLaunchKernelEx_ptsz, FIKIT_EX_PARAMS);
FIKIT_HOOK_DECL(CUresult, cuLaunchCooperativeKernel, FIKIT_COOP_PARAMS);
FIKIT_HOOK_DECL(CUresult, cuLaunchCooperativeKernel_ptsz, FIKIT_COOP_PARAMS);
FIKIT_HOOK_DECL(CUresult, cuGraphLaunch, (CUgraphExec hGraphExec, CUstream hStream));
FIKIT_HOOK_DECL(CUresult, cuGraphLaunch_ptsz, (CUgraphExec hGraphExec, CUstream hStream));

// hooks/sync.cpp
FIKIT_HOOK_DECL(CUresult, cuStreamSynchronize, (CUstream hStream));
FIKIT_HOOK_DECL(CUresult, cuStreamSynchronize_ptsz, (CUstream hStream));
FIKIT_HOOK_DECL(CUresult, cuCtxSynchronize, (void));
FIKIT_HOOK_DECL(CUresult, cuCtxSynchronize_v2, (CUcontext ctx));
FIKIT_HOOK_DECL(CUresult, cuEventSynchronize, (CUevent hEvent));
FIKIT_HOOK_DECL(CUresult, cuStreamQuery, (CUstream hStream));
FIKIT_HOOK_DECL(CUresult, cuStreamQuery_ptsz, (CUstream hStream));
FIKIT_HOOK_DECL(CUresult, cuEventQuery, (CUevent hEvent));
FIKIT_HOOK_DECL(CUresult, cuEventRecord, (CUevent hEvent, CUstream hStream));
FIKIT_HOOK_DECL(CUresult, cuEventRecord_ptsz, (CUevent hEvent, CUstream hStream));
FIKIT_HOOK_DECL(CUresult, cuEventRecordWithFlags,
                (CUevent hEvent, CUstream hStream, unsigned int flags));
FIKIT_HOOK_DECL(CUresult, cuEventRecordWithFlags_ptsz,
                (CUevent hEvent, CUstream hStream, unsigned int flags));
FIKIT_HOOK_DECL(CUresult, cuMemcpyDtoH_v2,
                (void* dstHost, CUdeviceptr srcDevice, size_t ByteCount));
FIKIT_HOOK_DECL(CUresult, cuMemcpyDtoH_v2_ptds,
                (void* dstHost, CUdeviceptr srcDevice, size_t ByteCount));
FIKIT_HOOK_DECL(CUresult, cuMemcpyHtoD_v2,
                (CUdeviceptr dstDevice, const void* srcHost, size_t ByteCount));
FIKIT_HOOK_DECL(CUresult, cuMemcpyHtoD_v2_ptds,
                (CUdeviceptr dstDevice, const void* srcHost, size_t ByteCount));
FIKIT_HOOK_DECL(CUresult, cuMemcpy, (CUdeviceptr dst, CUdeviceptr src, size_t ByteCount));
FIKIT_HOOK_DECL(CUresult, cuMemcpy_ptds, (CUdeviceptr dst, CUdeviceptr src, size_t ByteCount));

// hooks/capture.cpp
FIKIT_HOOK_DECL(CUresult, cuStreamBeginCapture_v2, (CUstream hStream, CUstreamCaptureMode mode));
FIKIT_HOOK_DECL(CUresult, cuStreamBeginCapture_v2_ptsz,
                (CUstream hStream, CUstreamCaptureMode mode));
FIKIT_HOOK_DECL(CUresult, cuStreamBeginCaptureToGraph, FIKIT_CAPTURE_TO_GRAPH_PARAMS);
FIKIT_HOOK_DECL(CUresult, cuStreamBeginCaptureToGraph_ptsz, FIKIT_CAPTURE_TO_GRAPH_PARAMS);
FIKIT_HOOK_DECL(CUresult, cuStreamEndCapture, (CUstream hStream, CUgraph* phGraph));
FIKIT_HOOK_DECL(CUresult, cuStreamEndCapture_ptsz, (CUstream hStream, CUgraph* phGraph));
