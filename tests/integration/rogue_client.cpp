// A misbehaving tenant for integration tests: speaks the control protocol by hand and breaks the
// rules.
//   rogue_client SOCKET abi      register with another ABI major version; exit 0 if refused with a
//   message rogue_client SOCKET corrupt  register, then scribble a corrupt ring entry; exit 0 once
//   the broker marks
//                                this tenant faulty (within 10 s), 1 otherwise
//   rogue_client SOCKET hold     register as LP, request one launch, print "granted" when granted,
//   then wait
//                                to be killed (a tenant killed while holding a grant)
//   rogue_client SOCKET hp-busy  register as HP and stay busy until killed: a launch every
//                                10 ms, each completing the one before (host drains), so
//                                one is always outstanding and the tenant is never silent:
//                                under the priority policy no LP tenant gets a grant
//                                (fikit-top's test)
#include <fikit/ring.h>
#include <fikit/util.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "raw_tenant.h"

namespace {

constexpr uint64_t kTimeoutNs = 10'000'000'000ull;

int corrupt(fikit::Segment* seg, const fikit::test::RawTenant& t) {
  uint32_t pos;
  if (!fikit::ring__reserve(&seg->ring, &pos)) return 1;
  seg->ring.entries[pos & fikit::kRingMask].commit.store(pos +
                                                         77);  // neither this lap nor the last
  bool faulty = t.wait_state(fikit::TenantState::kFaulty, kTimeoutNs);
  printf("faulty=%d\n", faulty);
  return faulty ? 0 : 1;
}

int hold(fikit::Segment* seg) {
  uint32_t pos;
  fikit::EntryFields req{fikit::EntryKind::kLpRequest, 0, 0, 0, 0x1234, fikit::now_ns()};
  if (!fikit::ring__push(&seg->ring, req, &pos)) return 1;
  seg->broker.doorbell.fetch_add(1);
  fikit::futex_wake(&seg->broker.doorbell, 1);
  uint64_t deadline = fikit::now_ns() + kTimeoutNs;
  while (!fikit::pos_at_or_after(seg->broker.granted.load(), pos + 1)) {
    if (fikit::now_ns() > deadline) return 1;
    usleep(100);
  }
  printf("granted\n");
  fflush(stdout);
  pause();  // hold the grant until killed
  return 0;
}

int hp_busy(fikit::Segment* seg) {
  for (uint32_t done = 0;; done++) {
    uint32_t pos;
    fikit::EntryFields rec{fikit::EntryKind::kHpLaunch, 0, 0, 0, 0x4242, fikit::now_ns()};
    fikit::ring__push(&seg->ring, rec, &pos);  // a full ring drops it, as the library would
    usleep(10000);
    // The launch before this one has completed: the broker's liveness rule takes a tenant whose
    // outstanding launches see no completion for a while as drained, which would end the wait.
    if (done > 0) {
      seg->slots[0].host_done_ns.store(fikit::now_ns(), std::memory_order_relaxed);
      seg->slots[0].host_done.store(done, std::memory_order_release);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: rogue_client SOCKET abi|corrupt|hold|hp-busy\n");
    return 2;
  }
  std::string mode = argv[2];
  fikit::test::RawTenant t;
  if (mode == "abi") {
    bool ok = t.connect_and_register(argv[1], fikit::kPriorityLow, "rogue", fikit::kAbiMajor + 1);
    printf("status=%d error=%s\n", t.reply().status, t.reply().error);
    return !ok && t.reply().status != 0 && t.reply().error[0] ? 0 : 1;
  }
  const uint32_t priority = mode == "hp-busy" ? fikit::kPriorityHigh : fikit::kPriorityLow;
  if (!t.connect_and_register(argv[1], priority, "rogue") ||
      !t.wait_state(fikit::TenantState::kActive, kTimeoutNs)) {
    fprintf(stderr, "rogue: %s\n", t.error().c_str());
    return 1;
  }
  if (mode == "corrupt") return corrupt(t.segment(), t);
  if (mode == "hold") return hold(t.segment());
  if (mode == "hp-busy") return hp_busy(t.segment());
  fprintf(stderr, "rogue: unknown mode %s\n", mode.c_str());
  return 2;
}
