// CUevent -> where it was recorded: the stream slot, the slot's issued position + 1 at record time
// and the session generation. A successful cuEventSynchronize/cuEventQuery then drains that slot up
// to that position. Fixed open addressing, lock-free; events are never removed, so a process that
// creates events without bound stops tracking new ones once the table is full (they simply publish
// no drains).
#pragma once

#include <cuda.h>

#include <atomic>
#include <cstdint>

namespace fikit::client {

struct EventMark {
  uint16_t slot;
  uint16_t generation;  // session generation (low 16 bits)
  uint32_t issued;      // the slot's last issued position + 1 when recorded (0: nothing)
};

class EventTable {
 public:
  static constexpr uint32_t kEntries = 4096;
  static constexpr uint32_t kMaxProbes = 64;

  // Remember where `event` was recorded. Does nothing when the table is full.
  void record(CUevent event, EventMark mark) noexcept;

  // Return true and fill `mark` if `event` was recorded.
  bool find(CUevent event, EventMark* mark) const noexcept;

  void reset() noexcept;

 private:
  struct Entry {
    std::atomic<uintptr_t> event;
    std::atomic<uint64_t> mark;  // packed EventMark; 0 until the first record completes
  };
  Entry entries_[kEntries] = {};
};

EventTable& event_table() noexcept;

}  // namespace fikit::client
