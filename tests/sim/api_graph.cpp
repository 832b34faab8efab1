// Stream capture and graphs. A capturing stream records its kernel launches and marker writes
// into a graph instead of running them; other stream operations during capture fail with
// CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED. A graph is a straight line (no fork/join across
// streams); launching it enqueues its ops, in order, on the launch stream, for one launch's CPU
// cost.
#include <algorithm>

#include "sim/sim_process.h"

using fikit::sim::kStreamRing;
using fikit::sim::process;
using fikit::sim::Process;
using fikit::sim::valid;

namespace {

CUresult begin_capture(CUstream stream, bool ptsz) {
  if (!process()) return CUDA_ERROR_NOT_INITIALIZED;
  CUstream_st* s;
  if (CUresult r = fikit::sim::resolve_stream(stream, ptsz, &s); r != CUDA_SUCCESS) return r;
  if (s == s->ctx->legacy) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  if (s->capture) return CUDA_ERROR_ILLEGAL_STATE;
  s->capture = std::make_unique<CUgraph_st>();
  return CUDA_SUCCESS;
}

CUresult end_capture(CUstream stream, CUgraph* graph, bool ptsz) {
  Process* p = process();
  if (!p) return CUDA_ERROR_NOT_INITIALIZED;
  if (!graph) return CUDA_ERROR_INVALID_VALUE;
  CUstream_st* s;
  if (CUresult r = fikit::sim::resolve_stream(stream, ptsz, &s); r != CUDA_SUCCESS) return r;
  if (!s->capture) return CUDA_ERROR_ILLEGAL_STATE;
  *graph = fikit::sim::hand_out(p, std::move(s->capture));
  return CUDA_SUCCESS;
}

CUresult is_capturing(CUstream stream, CUstreamCaptureStatus* status, bool ptsz) {
  if (!process()) return CUDA_ERROR_NOT_INITIALIZED;
  if (!status) return CUDA_ERROR_INVALID_VALUE;
  CUstream_st* s;
  if (CUresult r = fikit::sim::resolve_stream(stream, ptsz, &s); r != CUDA_SUCCESS) return r;
  *status = s->capture ? CU_STREAM_CAPTURE_STATUS_ACTIVE : CU_STREAM_CAPTURE_STATUS_NONE;
  return CUDA_SUCCESS;
}

CUresult graph_launch(CUgraphExec exec, CUstream stream, bool ptsz) {
  Process* p = process();
  if (!p) return CUDA_ERROR_NOT_INITIALIZED;
  if (!valid(exec)) return CUDA_ERROR_INVALID_HANDLE;
  CUstream_st* s;
  if (CUresult r = fikit::sim::resolve_stream(stream, ptsz, &s); r != CUDA_SUCCESS) return r;
  if (s->capture) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  fikit::sim::burn_cpu(p->cfg.launch_ns);
  const auto& ops = exec->ops;
  // In chunks, so that a graph longer than a stream's ring streams through it.
  for (size_t first = 0; first < ops.size(); first += kStreamRing / 2) {
    uint32_t n = static_cast<uint32_t>(std::min<size_t>(kStreamRing / 2, ops.size() - first));
    CUresult r = fikit::sim::push_ops(p, s, n, [&](uint32_t i) { return ops[first + i]; });
    if (r != CUDA_SUCCESS) return r;
  }
  return CUDA_SUCCESS;
}

}  // namespace

CUresult CUDAAPI cuStreamBeginCapture_v2(CUstream s, CUstreamCaptureMode) {
  return begin_capture(s, false);
}

CUresult CUDAAPI cuStreamBeginCapture_v2_ptsz(CUstream s, CUstreamCaptureMode) {
  return begin_capture(s, true);
}

CUresult CUDAAPI cuStreamEndCapture(CUstream s, CUgraph* g) { return end_capture(s, g, false); }
CUresult CUDAAPI cuStreamEndCapture_ptsz(CUstream s, CUgraph* g) { return end_capture(s, g, true); }

CUresult CUDAAPI cuStreamIsCapturing(CUstream s, CUstreamCaptureStatus* status) {
  return is_capturing(s, status, false);
}

CUresult CUDAAPI cuStreamIsCapturing_ptsz(CUstream s, CUstreamCaptureStatus* status) {
  return is_capturing(s, status, true);
}

CUresult CUDAAPI cuGraphInstantiateWithFlags(CUgraphExec* exec, CUgraph graph, unsigned long long) {
  Process* p = process();
  if (!p) return CUDA_ERROR_NOT_INITIALIZED;
  if (!exec) return CUDA_ERROR_INVALID_VALUE;
  if (!valid(graph)) return CUDA_ERROR_INVALID_HANDLE;
  auto e = std::make_unique<CUgraphExec_st>();
  e->ops = graph->ops;
  *exec = fikit::sim::hand_out(p, std::move(e));
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGraphLaunch(CUgraphExec exec, CUstream s) {
  return graph_launch(exec, s, false);
}
CUresult CUDAAPI cuGraphLaunch_ptsz(CUgraphExec exec, CUstream s) {
  return graph_launch(exec, s, true);
}

CUresult CUDAAPI cuGraphExecDestroy(CUgraphExec exec) {
  Process* p = process();
  if (!p) return CUDA_ERROR_NOT_INITIALIZED;
  if (!valid(exec)) return CUDA_ERROR_INVALID_HANDLE;
  fikit::sim::retire(p, exec);
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuGraphDestroy(CUgraph graph) {
  Process* p = process();
  if (!p) return CUDA_ERROR_NOT_INITIALIZED;
  if (!valid(graph)) return CUDA_ERROR_INVALID_HANDLE;
  fikit::sim::retire(p, graph);
  return CUDA_SUCCESS;
}
