// Stream capture, from the launch path's side: which stream a call names, whether it is being
// captured (a launch or event record there becomes a graph node, so the library stays out of
// it), and the count of captures in progress that lets every other launch skip the question.
// All of it runs on the application's threads: no allocation, no locks, no I/O.
#pragma once

#include <cuda.h>

#include <atomic>

namespace fikit::client {

// Stream captures in progress in this process (the capture hooks keep it; over-counting is
// safe, it only costs a driver query per launch).
extern std::atomic<int> g_active_captures;

// The stream handle that names `stream` in a legacy-variant call: stream 0 of a _ptsz variant is
// the per-thread default stream.
inline CUstream named_stream(CUstream stream, bool per_thread) noexcept {
  return (stream == nullptr && per_thread) ? CU_STREAM_PER_THREAD : stream;
}

// Return true if `stream` (as named_stream() names it) is capturing now, active or invalidated
// (EndCapture still ends it); false if it is not or the driver cannot tell.
bool stream_is_capturing(CUstream stream) noexcept;

// Return true unless the stream is known not to be capturing: false at once while no capture is
// in progress, true when the driver cannot tell (stay out of what may be a graph).
bool may_be_capturing(CUstream stream, bool per_thread) noexcept;

// Count a capture that a BeginCapture call is about to start; call capture_not_begun() if it
// failed. Count first: a launch racing with the begin then checks its stream.
void capture_begins() noexcept;
void capture_not_begun() noexcept;
// Uncount a capture that an EndCapture call really ended (never below zero).
void capture_ended() noexcept;

}  // namespace fikit::client
