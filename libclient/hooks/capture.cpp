// Stream-capture hooks: count the captures in progress so that launches need to ask
// cuStreamIsCapturing only while one is active (launches on a capturing stream pass through).
#include <cudaTypedefs.h>

#include "../hook_table.h"
#include "../launch_path.h"
#include "hooks.h"

namespace fikit::client {
namespace {

CUstream named_stream(CUstream stream, bool per_thread) noexcept {
  return (stream == nullptr && per_thread) ? CU_STREAM_PER_THREAD : stream;
}

// Return true if `stream` is capturing now (active or invalidated: EndCapture still ends it).
bool is_capturing(CUstream stream) noexcept {
  auto fn = driver().stream_is_capturing;
  CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
  return fn && fn(stream, &status) == CUDA_SUCCESS && status != CU_STREAM_CAPTURE_STATUS_NONE;
}

template <class Call>
CUresult begin_capture(Call&& call) noexcept {
  // Count first: a launch racing with the begin then checks its stream (over-counting is safe).
  g_active_captures.fetch_add(1, std::memory_order_acq_rel);
  CUresult r = call();
  if (r != CUDA_SUCCESS) g_active_captures.fetch_sub(1, std::memory_order_acq_rel);
  return r;
}

CUresult end_capture(HookId id, CUstream stream, bool per_thread, CUgraph* graph) noexcept {
  auto fn = real_fn<PFN_cuStreamEndCapture_v10000>(id);
  if (!fn) return CUDA_ERROR_NOT_FOUND;
  CUstream named = named_stream(stream, per_thread);
  bool was = is_capturing(named);
  CUresult r = fn(stream, graph);
  // Uncount only a capture that this call really ended (a wrong-thread end leaves it running).
  if (was && !is_capturing(named)) {
    int cur = g_active_captures.load(std::memory_order_relaxed);
    while (cur > 0 &&
           !g_active_captures.compare_exchange_weak(cur, cur - 1, std::memory_order_acq_rel)) {
    }
  }
  return r;
}

}  // namespace
}  // namespace fikit::client

using fikit::client::HookId;
using fikit::client::real_fn;

CUresult fikit_hook_cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode) noexcept {
  auto fn = real_fn<PFN_cuStreamBeginCapture_v10010>(HookId::k_cuStreamBeginCapture_v2);
  if (!fn) return CUDA_ERROR_NOT_FOUND;
  return fikit::client::begin_capture([&] { return fn(hStream, mode); });
}

CUresult fikit_hook_cuStreamBeginCapture_v2_ptsz(CUstream hStream,
                                                 CUstreamCaptureMode mode) noexcept {
  auto fn = real_fn<PFN_cuStreamBeginCapture_v10010>(HookId::k_cuStreamBeginCapture_v2_ptsz);
  if (!fn) return CUDA_ERROR_NOT_FOUND;
  return fikit::client::begin_capture([&] { return fn(hStream, mode); });
}

#define FIKIT_DEFINE_CAPTURE_TO_GRAPH(symbol)                                                      \
  CUresult fikit_hook_##symbol FIKIT_CAPTURE_TO_GRAPH_PARAMS noexcept {                            \
    auto fn = real_fn<PFN_cuStreamBeginCaptureToGraph_v12030>(HookId::k_##symbol);                 \
    if (!fn) return CUDA_ERROR_NOT_FOUND;                                                          \
    return fikit::client::begin_capture(                                                           \
        [&] { return fn(hStream, hGraph, dependencies, dependencyData, numDependencies, mode); }); \
  }
FIKIT_DEFINE_CAPTURE_TO_GRAPH(cuStreamBeginCaptureToGraph)
FIKIT_DEFINE_CAPTURE_TO_GRAPH(cuStreamBeginCaptureToGraph_ptsz)

CUresult fikit_hook_cuStreamEndCapture(CUstream hStream, CUgraph* phGraph) noexcept {
  return fikit::client::end_capture(HookId::k_cuStreamEndCapture, hStream, false, phGraph);
}

CUresult fikit_hook_cuStreamEndCapture_ptsz(CUstream hStream, CUgraph* phGraph) noexcept {
  return fikit::client::end_capture(HookId::k_cuStreamEndCapture_ptsz, hStream, true, phGraph);
}
