// Stream-capture hooks: count the captures in progress (capture.h) so that launches need to ask
// cuStreamIsCapturing only while one is active (launches on a capturing stream pass through).
#include "../capture.h"

#include <cudaTypedefs.h>

#include "../hook_table.h"
#include "hooks.h"

namespace fikit::client {
namespace {

template <class Call>
CUresult begin_capture(Call&& call) noexcept {
  capture_begins();
  CUresult r = call();
  if (r != CUDA_SUCCESS) capture_not_begun();
  return r;
}

CUresult end_capture(HookId id, CUstream stream, bool per_thread, CUgraph* graph) noexcept {
  auto fn = real_fn<PFN_cuStreamEndCapture_v10000>(id);
  if (!fn) return CUDA_ERROR_NOT_FOUND;
  CUstream named = named_stream(stream, per_thread);
  bool was = stream_is_capturing(named);
  CUresult r = fn(stream, graph);
  // Uncount only a capture that this call really ended (a wrong-thread end leaves it running).
  if (was && !stream_is_capturing(named)) capture_ended();
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
