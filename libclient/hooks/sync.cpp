// Synchronizing hooks: when a call that waits for a stream (or the whole context, or an event)
// returns success, publish that the slot drained up to what was issued before the call. Event
// records remember their stream slot and position for later event waits.
#include <cudaTypedefs.h>

#include "../capture.h"
#include "../drain.h"
#include "../event_table.h"
#include "../hook_table.h"
#include "../launch_path.h"
#include "../runtime.h"
#include "../stream_slots.h"
#include "hooks.h"

namespace fikit::client {
namespace {

// The session drains are published into: the current context's GPU's (a stream of another GPU
// has issued nothing there: its drain is a no-op, and its launches end by marker or a later
// drain), starting the runtime on the first hook call.
Session* drain_session() noexcept { return session_for_current_gpu(); }

int slot_of(const Session* s, CUstream stream, bool per_thread) noexcept {
  return s ? stream_slots().find(stream, per_thread) : -1;
}

// cuStreamSynchronize / cuStreamQuery (both drain on CUDA_SUCCESS).
CUresult stream_wait(HookId id, CUstream stream, bool per_thread) noexcept {
  auto fn = real_fn<PFN_cuStreamSynchronize_v2000>(id);
  if (!fn) return CUDA_ERROR_NOT_FOUND;
  Session* s = drain_session();
  int slot = slot_of(s, stream, per_thread);
  uint32_t snapshot = issued_snapshot(s, slot);
  CUresult r = fn(stream);
  if (r == CUDA_SUCCESS) drain_slot(s, slot, snapshot);
  return r;
}

// cuCtxSynchronize(_v2): every slot.
template <class Call>
CUresult ctx_wait(Call&& call) noexcept {
  Session* s = drain_session();
  uint32_t snapshot[kStreamSlots];
  for (uint32_t i = 0; i < kStreamSlots; i++) snapshot[i] = issued_snapshot(s, static_cast<int>(i));
  CUresult r = call();
  if (r == CUDA_SUCCESS && s)
    for (uint32_t i = 0; i < kStreamSlots; i++)
      drain_slot(s, static_cast<int>(i), snapshot[i], /*whole_context=*/true);
  return r;
}

// cuEventSynchronize / cuEventQuery.
CUresult event_wait(HookId id, CUevent event) noexcept {
  auto fn = real_fn<PFN_cuEventSynchronize_v2000>(id);
  if (!fn) return CUDA_ERROR_NOT_FOUND;
  ensure_started();
  EventMark mark{};
  Session* s = event_table().find(event, &mark) ? session_by_generation(mark.generation) : nullptr;
  bool known = s != nullptr;
  CUresult r = fn(event);
  if (r == CUDA_SUCCESS && known) drain_slot(s, mark.slot, mark.issued);
  return r;
}

// cuEventRecord(WithFlags): remember the stream slot and what was issued on it before.
template <class Call>
CUresult event_record(CUevent event, CUstream stream, bool per_thread, Call&& call) noexcept {
  Session* s = drain_session();
  int slot = slot_of(s, stream, per_thread);
  uint32_t snapshot = issued_snapshot(s, slot);
  CUresult r = call();
  if (r == CUDA_SUCCESS && s && !may_be_capturing(stream, per_thread)) {
    // A stream with no managed launch records issued 0: overwrites any older mark of the event.
    uint16_t stored_slot = slot < 0 ? 0 : static_cast<uint16_t>(slot);
    event_table().record(event, {stored_slot, s->generation, slot < 0 ? 0 : snapshot});
  }
  return r;
}

// Return true if `ptr` is host memory (pinned, or pageable: unknown to the driver).
bool is_host_memory(CUdeviceptr ptr) noexcept {
  auto get_attribute = driver().pointer_get_attribute;
  if (!get_attribute) return false;
  unsigned int type = 0;
  CUresult r = get_attribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, ptr);
  return r == CUDA_ERROR_INVALID_VALUE || (r == CUDA_SUCCESS && type == CU_MEMORYTYPE_HOST);
}

// Synchronous copies wait for the default stream they run on. `host_involved()`: a device-to-device
// cuMemcpy does not wait on the host, so it publishes no drain.
template <class HostInvolved, class Call>
CUresult copy_wait(bool per_thread, HostInvolved&& host_involved, Call&& call) noexcept {
  Session* s = drain_session();
  int slot = s && host_involved() ? (per_thread ? kPerThreadSlot : kLegacySlot) : -1;
  uint32_t snapshot = issued_snapshot(s, slot);
  CUresult r = call();
  if (r == CUDA_SUCCESS) drain_slot(s, slot, snapshot);
  return r;
}

}  // namespace
}  // namespace fikit::client

using fikit::client::HookId;
using fikit::client::real_fn;

CUresult fikit_hook_cuStreamSynchronize(CUstream hStream) noexcept {
  return fikit::client::stream_wait(HookId::k_cuStreamSynchronize, hStream, false);
}
CUresult fikit_hook_cuStreamSynchronize_ptsz(CUstream hStream) noexcept {
  return fikit::client::stream_wait(HookId::k_cuStreamSynchronize_ptsz, hStream, true);
}
CUresult fikit_hook_cuStreamQuery(CUstream hStream) noexcept {
  return fikit::client::stream_wait(HookId::k_cuStreamQuery, hStream, false);
}
CUresult fikit_hook_cuStreamQuery_ptsz(CUstream hStream) noexcept {
  return fikit::client::stream_wait(HookId::k_cuStreamQuery_ptsz, hStream, true);
}

CUresult fikit_hook_cuCtxSynchronize(void) noexcept {
  auto fn = real_fn<PFN_cuCtxSynchronize_v2000>(HookId::k_cuCtxSynchronize);
  if (!fn) return CUDA_ERROR_NOT_FOUND;
  return fikit::client::ctx_wait([&] { return fn(); });
}
CUresult fikit_hook_cuCtxSynchronize_v2(CUcontext ctx) noexcept {
  // Assumes one context per process (the slots are per process, not per context).
  auto fn = real_fn<PFN_cuCtxSynchronize_v13000>(HookId::k_cuCtxSynchronize_v2);
  if (!fn) return CUDA_ERROR_NOT_FOUND;
  return fikit::client::ctx_wait([&] { return fn(ctx); });
}

CUresult fikit_hook_cuEventSynchronize(CUevent hEvent) noexcept {
  return fikit::client::event_wait(HookId::k_cuEventSynchronize, hEvent);
}
CUresult fikit_hook_cuEventQuery(CUevent hEvent) noexcept {
  return fikit::client::event_wait(HookId::k_cuEventQuery, hEvent);
}

#define FIKIT_DEFINE_EVENT_RECORD(symbol, per_thread)                        \
  CUresult fikit_hook_##symbol(CUevent hEvent, CUstream hStream) noexcept {  \
    auto fn = real_fn<PFN_cuEventRecord_v2000>(HookId::k_##symbol);          \
    if (!fn) return CUDA_ERROR_NOT_FOUND;                                    \
    return fikit::client::event_record(hEvent, hStream, per_thread,          \
                                       [&] { return fn(hEvent, hStream); }); \
  }
#define FIKIT_DEFINE_EVENT_RECORD_FLAGS(symbol, per_thread)                                     \
  CUresult fikit_hook_##symbol(CUevent hEvent, CUstream hStream, unsigned int flags) noexcept { \
    auto fn = real_fn<PFN_cuEventRecordWithFlags_v11010>(HookId::k_##symbol);                   \
    if (!fn) return CUDA_ERROR_NOT_FOUND;                                                       \
    return fikit::client::event_record(hEvent, hStream, per_thread,                             \
                                       [&] { return fn(hEvent, hStream, flags); });             \
  }
FIKIT_DEFINE_EVENT_RECORD(cuEventRecord, false)
FIKIT_DEFINE_EVENT_RECORD(cuEventRecord_ptsz, true)
FIKIT_DEFINE_EVENT_RECORD_FLAGS(cuEventRecordWithFlags, false)
FIKIT_DEFINE_EVENT_RECORD_FLAGS(cuEventRecordWithFlags_ptsz, true)

#define FIKIT_DEFINE_COPY(symbol, per_thread, pfn, dst_t, src_t, host_involved)          \
  CUresult fikit_hook_##symbol(dst_t dst, src_t src, size_t bytes) noexcept {            \
    auto fn = real_fn<pfn>(HookId::k_##symbol);                                          \
    if (!fn) return CUDA_ERROR_NOT_FOUND;                                                \
    return fikit::client::copy_wait(                                                     \
        per_thread, [&] { return host_involved; }, [&] { return fn(dst, src, bytes); }); \
  }
FIKIT_DEFINE_COPY(cuMemcpyDtoH_v2, false, PFN_cuMemcpyDtoH_v3020, void*, CUdeviceptr, true)
FIKIT_DEFINE_COPY(cuMemcpyDtoH_v2_ptds, true, PFN_cuMemcpyDtoH_v3020, void*, CUdeviceptr, true)
FIKIT_DEFINE_COPY(cuMemcpyHtoD_v2, false, PFN_cuMemcpyHtoD_v3020, CUdeviceptr, const void*, true)
FIKIT_DEFINE_COPY(cuMemcpyHtoD_v2_ptds, true, PFN_cuMemcpyHtoD_v3020, CUdeviceptr, const void*,
                  true)
FIKIT_DEFINE_COPY(cuMemcpy, false, PFN_cuMemcpy_v4000, CUdeviceptr, CUdeviceptr,
                  fikit::client::is_host_memory(dst) || fikit::client::is_host_memory(src))
FIKIT_DEFINE_COPY(cuMemcpy_ptds, true, PFN_cuMemcpy_v4000, CUdeviceptr, CUdeviceptr,
                  fikit::client::is_host_memory(dst) || fikit::client::is_host_memory(src))
