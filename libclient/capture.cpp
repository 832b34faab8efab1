#include "capture.h"

#include "hook_table.h"

namespace fikit::client {

std::atomic<int> g_active_captures{0};

bool stream_is_capturing(CUstream stream) noexcept {
  auto fn = driver().stream_is_capturing;
  CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
  return fn && fn(stream, &status) == CUDA_SUCCESS && status != CU_STREAM_CAPTURE_STATUS_NONE;
}

bool may_be_capturing(CUstream stream, bool per_thread) noexcept {
  if (g_active_captures.load(std::memory_order_acquire) <= 0) return false;
  auto fn = driver().stream_is_capturing;
  CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
  return !fn || fn(named_stream(stream, per_thread), &status) != CUDA_SUCCESS ||
         status != CU_STREAM_CAPTURE_STATUS_NONE;
}

void capture_begins() noexcept { g_active_captures.fetch_add(1, std::memory_order_acq_rel); }

void capture_not_begun() noexcept { g_active_captures.fetch_sub(1, std::memory_order_acq_rel); }

void capture_ended() noexcept {
  int cur = g_active_captures.load(std::memory_order_relaxed);
  while (cur > 0 &&
         !g_active_captures.compare_exchange_weak(cur, cur - 1, std::memory_order_acq_rel)) {
  }
}

}  // namespace fikit::client
