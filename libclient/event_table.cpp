#include "event_table.h"

#include <fikit/util.h>

namespace fikit::client {
namespace {

constinit EventTable g_event_table;

uint64_t pack(EventMark m) noexcept {
  return (uint64_t{m.slot} << 48) | (uint64_t{m.generation} << 32) | m.issued;
}

EventMark unpack(uint64_t v) noexcept {
  return {static_cast<uint16_t>(v >> 48), static_cast<uint16_t>(v >> 32), static_cast<uint32_t>(v)};
}

uint32_t home_index(uintptr_t key) noexcept {
  return static_cast<uint32_t>(mix64(key)) & (EventTable::kEntries - 1);
}

}  // namespace

void EventTable::record(CUevent event, EventMark mark) noexcept {
  uintptr_t key = reinterpret_cast<uintptr_t>(event);
  if (!key) return;
  uint32_t home = home_index(key);
  for (uint32_t i = 0; i < kMaxProbes; i++) {
    Entry& e = entries_[(home + i) & (kEntries - 1)];
    uintptr_t cur = e.event.load(std::memory_order_acquire);
    if (cur == 0 && (e.event.compare_exchange_strong(cur, key, std::memory_order_acq_rel)))
      cur = key;
    if (cur == key) {
      e.mark.store(pack(mark), std::memory_order_release);
      return;
    }
  }
}

bool EventTable::find(CUevent event, EventMark* mark) const noexcept {
  uintptr_t key = reinterpret_cast<uintptr_t>(event);
  if (!key) return false;
  uint32_t home = home_index(key);
  for (uint32_t i = 0; i < kMaxProbes; i++) {
    const Entry& e = entries_[(home + i) & (kEntries - 1)];
    uintptr_t cur = e.event.load(std::memory_order_acquire);
    if (cur == 0) return false;
    if (cur != key) continue;
    uint64_t v = e.mark.load(std::memory_order_acquire);
    if (!v) return false;
    *mark = unpack(v);
    return true;
  }
  return false;
}

void EventTable::reset() noexcept {
  for (auto& e : entries_) {
    e.event.store(0, std::memory_order_relaxed);
    e.mark.store(0, std::memory_order_relaxed);
  }
}

EventTable& event_table() noexcept { return g_event_table; }

}  // namespace fikit::client
