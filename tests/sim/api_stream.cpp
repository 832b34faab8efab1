// Streams and events. Priorities and flags are accepted and ignored: every stream is an
// independent in-order queue, including the legacy default stream (it does not synchronize with
// the other streams of its context here). Synchronizing calls and successful queries flush the
// trace file.
#include "sim/sim_process.h"

using fikit::sim::OpKind;
using fikit::sim::process;
using fikit::sim::Process;
using fikit::sim::ShmLock;
using fikit::sim::SimEvent;
using fikit::sim::SimOp;
using fikit::sim::valid;

namespace {

CUresult create_stream(CUstream* phstream, unsigned flags) {
  Process* p = process();
  if (!p) return CUDA_ERROR_NOT_INITIALIZED;
  if (!phstream || (flags & ~CU_STREAM_NON_BLOCKING)) return CUDA_ERROR_INVALID_VALUE;
  CUctx_st* ctx = fikit::sim::current_ctx();
  if (!valid(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
  CUstream_st* s = fikit::sim::stream_create(p, ctx);
  if (!s) return CUDA_ERROR_OUT_OF_MEMORY;
  *phstream = s;
  return CUDA_SUCCESS;
}

CUresult stream_synchronize(CUstream stream, bool ptsz) {
  Process* p = process();
  if (!p) return CUDA_ERROR_NOT_INITIALIZED;
  CUstream_st* s;
  if (CUresult r = fikit::sim::resolve_stream(stream, ptsz, &s); r != CUDA_SUCCESS) return r;
  if (s->capture) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  fikit::sim::stream_wait(p, s);
  return CUDA_SUCCESS;
}

CUresult stream_query(CUstream stream, bool ptsz) {
  Process* p = process();
  if (!p) return CUDA_ERROR_NOT_INITIALIZED;
  CUstream_st* s;
  if (CUresult r = fikit::sim::resolve_stream(stream, ptsz, &s); r != CUDA_SUCCESS) return r;
  if (s->capture) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  bool done;
  fikit::sim::Device* d = s->ctx->dev;
  {
    ShmLock lock(d->g);
    fikit::sim::catch_up(d);
    const fikit::sim::SimStream& st = d->g->streams[s->slot];
    done = st.head == st.tail;
  }
  if (!done) return CUDA_ERROR_NOT_READY;
  fikit::sim::flush_trace(d);
  return CUDA_SUCCESS;
}

CUresult stream_wait_event(CUstream stream, CUevent event, bool ptsz) {
  Process* p = process();
  if (!p) return CUDA_ERROR_NOT_INITIALIZED;
  if (!valid(event)) return CUDA_ERROR_INVALID_HANDLE;
  CUstream_st* s;
  if (CUresult r = fikit::sim::resolve_stream(stream, ptsz, &s); r != CUDA_SUCCESS) return r;
  if (s->capture) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  // GPUs share nothing here: a wait on another GPU's event is not simulated.
  if (event->dev != s->ctx->dev) return CUDA_ERROR_NOT_SUPPORTED;
  // Waits for the event's latest record as of now (none yet: nothing to wait for).
  return fikit::sim::push_ops(p, s, 1, [&](uint32_t) {
    return SimOp{.kind = OpKind::kEventWait,
                 .arg = event->id(),
                 .value = event->dev->g->events[event->slot].recorded};
  });
}

CUresult event_record(CUevent event, CUstream stream, bool ptsz) {
  Process* p = process();
  if (!p) return CUDA_ERROR_NOT_INITIALIZED;
  if (!valid(event)) return CUDA_ERROR_INVALID_HANDLE;
  CUstream_st* s;
  if (CUresult r = fikit::sim::resolve_stream(stream, ptsz, &s); r != CUDA_SUCCESS) return r;
  if (s->capture) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  if (event->dev != s->ctx->dev) return CUDA_ERROR_INVALID_HANDLE;  // another GPU's event
  return fikit::sim::push_ops(p, s, 1, [&](uint32_t) {
    return SimOp{.kind = OpKind::kEventRecord,
                 .arg = event->id(),
                 .value = ++event->dev->g->events[event->slot].recorded};
  });
}

// Return true if the event's latest record has completed (or it was never recorded).
bool event_done(const SimEvent& e) { return e.done >= e.recorded; }

CUresult elapsed_time(float* ms, CUevent start, CUevent end) {
  Process* p = process();
  if (!p) return CUDA_ERROR_NOT_INITIALIZED;
  if (!ms) return CUDA_ERROR_INVALID_VALUE;
  if (!valid(start) || !valid(end) || ((start->flags | end->flags) & CU_EVENT_DISABLE_TIMING))
    return CUDA_ERROR_INVALID_HANDLE;
  if (start->dev != end->dev) return CUDA_ERROR_INVALID_HANDLE;
  fikit::sim::Device* d = start->dev;
  ShmLock lock(d->g);
  fikit::sim::catch_up(d);
  const SimEvent& a = d->g->events[start->slot];
  const SimEvent& b = d->g->events[end->slot];
  if (!a.recorded || !b.recorded) return CUDA_ERROR_INVALID_HANDLE;
  if (!event_done(a) || !event_done(b)) return CUDA_ERROR_NOT_READY;
  *ms = static_cast<float>((static_cast<double>(b.time_ns) - static_cast<double>(a.time_ns)) / 1e6);
  return CUDA_SUCCESS;
}

}  // namespace

CUresult CUDAAPI cuStreamCreate(CUstream* phstream, unsigned int flags) {
  return create_stream(phstream, flags);
}

CUresult CUDAAPI cuStreamCreateWithPriority(CUstream* phstream, unsigned int flags, int) {
  return create_stream(phstream, flags);
}

// The stream's queued work still runs; its slot is freed once drained.
CUresult CUDAAPI cuStreamDestroy_v2(CUstream stream) {
  Process* p = process();
  if (!p) return CUDA_ERROR_NOT_INITIALIZED;
  if (!valid(stream) || stream == stream->ctx->legacy || stream == stream->ctx->per_thread)
    return CUDA_ERROR_INVALID_HANDLE;
  {
    fikit::sim::Device* d = stream->ctx->dev;
    ShmLock lock(d->g);
    fikit::sim::SimStream& st = d->g->streams[stream->slot];
    if (st.in_use && st.proc == d->slot) st.destroyed = 1;
    fikit::sim::stream_free_if_drained(*d->g, stream->slot);
  }
  fikit::sim::retire(p, stream);
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuStreamSynchronize(CUstream s) { return stream_synchronize(s, false); }
CUresult CUDAAPI cuStreamSynchronize_ptsz(CUstream s) { return stream_synchronize(s, true); }
CUresult CUDAAPI cuStreamQuery(CUstream s) { return stream_query(s, false); }
CUresult CUDAAPI cuStreamQuery_ptsz(CUstream s) { return stream_query(s, true); }

CUresult CUDAAPI cuStreamWaitEvent(CUstream s, CUevent e, unsigned int) {
  return stream_wait_event(s, e, false);
}

CUresult CUDAAPI cuStreamWaitEvent_ptsz(CUstream s, CUevent e, unsigned int) {
  return stream_wait_event(s, e, true);
}

CUresult CUDAAPI cuEventCreate(CUevent* phevent, unsigned int flags) {
  Process* p = process();
  if (!p) return CUDA_ERROR_NOT_INITIALIZED;
  constexpr unsigned kKnown =
      CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING | CU_EVENT_INTERPROCESS;
  if (!phevent || (flags & ~kKnown)) return CUDA_ERROR_INVALID_VALUE;
  CUctx_st* ctx = fikit::sim::current_ctx();
  if (!valid(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
  auto e = std::make_unique<CUevent_st>();
  e->flags = flags;
  e->dev = ctx->dev;
  {
    ShmLock lock(e->dev->g);
    e->slot = fikit::sim::event_alloc(*e->dev->g, e->dev->slot);
    if (e->slot < 0) return CUDA_ERROR_OUT_OF_MEMORY;
    e->serial = e->dev->g->events[e->slot].serial;
  }
  *phevent = fikit::sim::hand_out(p, std::move(e));
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuEventRecord(CUevent e, CUstream s) { return event_record(e, s, false); }
CUresult CUDAAPI cuEventRecord_ptsz(CUevent e, CUstream s) { return event_record(e, s, true); }

CUresult CUDAAPI cuEventQuery(CUevent event) {
  Process* p = process();
  if (!p) return CUDA_ERROR_NOT_INITIALIZED;
  if (!valid(event)) return CUDA_ERROR_INVALID_HANDLE;
  bool done;
  fikit::sim::Device* d = event->dev;
  {
    ShmLock lock(d->g);
    fikit::sim::catch_up(d);
    done = event_done(d->g->events[event->slot]);
  }
  if (!done) return CUDA_ERROR_NOT_READY;
  fikit::sim::flush_trace(d);
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuEventSynchronize(CUevent event) {
  Process* p = process();
  if (!p) return CUDA_ERROR_NOT_INITIALIZED;
  if (!valid(event)) return CUDA_ERROR_INVALID_HANDLE;
  uint64_t target = 0;
  bool first = true;
  fikit::sim::Device* d = event->dev;
  fikit::sim::wait_until(d, [&] {
    const SimEvent& e = d->g->events[event->slot];
    if (first) target = e.recorded;
    first = false;
    return e.done >= target;
  });
  fikit::sim::flush_trace(d);
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuEventElapsedTime(float* ms, CUevent start, CUevent end) {
  return elapsed_time(ms, start, end);
}

CUresult CUDAAPI cuEventElapsedTime_v2(float* ms, CUevent start, CUevent end) {
  return elapsed_time(ms, start, end);
}

CUresult CUDAAPI cuEventDestroy_v2(CUevent event) {
  Process* p = process();
  if (!p) return CUDA_ERROR_NOT_INITIALIZED;
  if (!valid(event)) return CUDA_ERROR_INVALID_HANDLE;
  {
    ShmLock lock(event->dev->g);
    fikit::sim::event_free(*event->dev->g, event->slot);
  }
  fikit::sim::retire(p, event);
  return CUDA_SUCCESS;
}
