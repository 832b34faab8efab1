// Fuzz target: ring entries and completion words as the scheduler consumes them (SchedCore over
// broker/sched/sched_ring.cpp: copy, entry__check, sequence checks, completion tracking) under the
// priority policy, with an HP and an LP tenant. The input is a script of what the tenants write
// into their own segments between rounds. Invariants: nothing crashes or leaks (ASan), and a
// tenant is either active or marked faulty, never anything else.
#include <fikit/abi.h>
#include <fikit/ring.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include "sched/sched_core.h"

using namespace fikit;
using namespace fikit::broker;

namespace fikit::broker {
extern const PolicyOps kPriorityPolicy;  // policy/priority.cpp
}

namespace {

constexpr uint32_t kTenants = 2;  // tenant 1: HP (priority 0), tenant 2: LP (priority 2)

Segment* segment(uint32_t i) {
  static Segment* segs[kTenants] = {};
  if (!segs[i]) {
    void* p =
        mmap(nullptr, sizeof(Segment), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) abort();
    segs[i] = static_cast<Segment*>(p);
  }
  return segs[i];
}

std::shared_ptr<TenantDesc> fresh_tenant(uint32_t i) {
  Segment* seg = segment(i);
  memset(static_cast<void*>(seg), 0, sizeof(Segment));
  uint32_t priority = i == 0 ? kPriorityHigh : kPriorityLow;
  segment_init(new (seg) Segment(), i + 1, getpid(), priority, "fuzz");
  auto d = std::make_shared<TenantDesc>();
  d->id = i + 1;
  d->pid = getpid();
  d->priority = priority;
  d->name = i == 0 ? "fuzz-hp" : "fuzz-lp";
  d->seg = seg;
  return d;
}

// Reads the script: each step takes what it needs; past the end everything reads as 0.
struct Script {
  const uint8_t* p;
  size_t left;
  template <typename T>
  T take() {
    T v{};
    size_t n = left < sizeof(T) ? left : sizeof(T);
    memcpy(&v, p, n);
    p += n;
    left -= n;
    return v;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  PolicyConfig cfg;
  cfg.log = [](int, const char*) {};
  SchedCore core(&kPriorityPolicy, cfg);
  uint32_t tail[kTenants] = {};
  for (uint32_t i = 0; i < kTenants; i++) core.add(fresh_tenant(i), 1);
  uint64_t now = 1'000'000;
  Script s{data, size};
  for (int step = 0; step < 512 && s.left > 0; step++) {
    uint8_t op = s.take<uint8_t>();
    uint32_t t = op & 1;
    Segment* seg = segment(t);
    switch ((op >> 1) % 5) {
      case 0: {  // publish an entry at the tenant's next position (commit word as a client would)
        SubmitEntry& e = seg->ring.entries[tail[t] & kRingMask];
        e.kind = s.take<uint16_t>() % (kEntryKindMax + 2);
        e.stream_slot = s.take<uint8_t>() % (kStreamSlots + 1);
        e.ref = tail[t] - s.take<uint8_t>();
        e.flags = s.take<uint8_t>() & 0xf;
        e.kernel_key = s.take<uint8_t>();
        e.t_ns = now;
        e.commit.store(tail[t] + 1, std::memory_order_release);
        tail[t]++;
        break;
      }
      case 1: {  // raw bytes over any entry, commit word included
        SubmitEntry& e = seg->ring.entries[s.take<uint16_t>() & kRingMask];
        uint8_t raw[sizeof(SubmitEntry)];
        for (uint8_t& b : raw) b = s.take<uint8_t>();
        memcpy(static_cast<void*>(&e), raw, sizeof(raw));
        break;
      }
      case 2: {  // completion words of a stream slot
        StreamSlot& slot = seg->slots[s.take<uint8_t>() % kStreamSlots];
        slot.gpu_done.store(tail[t] - s.take<uint8_t>() + 1);
        slot.host_done.store(tail[t] - s.take<uint8_t>() + 1);
        slot.host_done_ns.store(now);
        break;
      }
      case 3:  // a round, some time later
        now += 1000ull * s.take<uint16_t>();
        core.poll(now);
        break;
      case 4:  // the tenant leaves and a new one takes its place
        core.remove(t + 1);
        core.add(fresh_tenant(t), now);
        tail[t] = 0;
        break;
    }
  }
  core.poll(now + 1);
  for (uint32_t i = 0; i < kTenants; i++) {
    uint32_t st = segment(i)->broker.state.load();
    if (st != static_cast<uint32_t>(TenantState::kActive) &&
        st != static_cast<uint32_t>(TenantState::kFaulty))
      abort();
  }
  for (uint32_t i = 0; i < kTenants; i++) core.remove(i + 1);
  return 0;
}
