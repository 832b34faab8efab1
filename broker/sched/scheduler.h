// The scheduler thread: runs rounds of every GPU's SchedCore (sched/domains.h) with adaptive
// spinning.
//
// It spins (cpu_relax) while a request waits or LP work is in flight, for at most spin_ns after the
// last event, so that a waiting LP request is granted within microseconds. Otherwise it sleeps:
// broker_sleeping is set in every segment, the rings are checked once more, and the thread waits
// with futex_waitv on every tenant's doorbell and on a private word the control thread bumps, with
// a timeout that keeps the heartbeat fresh (or a short one while work is pending, since completion
// words are not doorbells). An idle broker thus costs ~0% CPU. While work is pending but the
// policy predicts nothing it waits for before some time (SchedulerApi::quiet_until: the HP's
// request is predicted to run until then, LP work in flight to end then), it sleeps until
// shortly before that time and spins only around it.
//
// Tenants reach the scheduler only through post_add/post_remove (a mutex-protected queue and a
// wake-up); all scheduling state is owned by this thread.
#pragma once

#include <fikit/result.h>
#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "sched/domains.h"
#include "sched/idle_meter.h"
#include "sched/sched_core.h"
#include "sched/tenant.h"

namespace fikit::broker {

struct SchedulerConfig {
  const PolicyOps* policy = nullptr;
  PolicyConfig policy_cfg;
  uint64_t spin_ns = 200'000;  // spin this long after the last event while work is pending
  // --hp-marker-every: told of tenants, handed their HP records by the core, polled after each
  // round; the thread never sleeps while it measures an HP tenant. Not owned; nullptr: off.
  IdleMeter* idle_meter = nullptr;
};

class Scheduler {
 public:
  explicit Scheduler(const SchedulerConfig& cfg);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  Status start();
  // Stop and join the thread. Tenants stay in SchedCore (the caller closes their segments).
  void stop();

  // Any thread: hand a tenant over, or take one back. Applied at the start of the next round.
  void post_add(std::shared_ptr<const TenantDesc> desc);
  void post_remove(uint32_t id);
  // Any thread: tenant status taken by the scheduler thread (at most ~1 s old if it is stuck).
  std::vector<TenantStatus> status();
  // Any thread: the final status of tenants removed since the last call (SchedCore::take_departed).
  std::vector<TenantStatus> take_departed();
  // CPU time the scheduler thread has used, in seconds (0 before start).
  double cpu_seconds() const;
  const PolicyOps& policy() const { return core_.policy(); }

  // Tests and the thread: apply queued hand-overs, then one SchedCore round. Return its events.
  // Not to be called by others while the thread runs.
  uint32_t run_once(uint64_t now_ns);
  // GPU 0's domain (tests of one GPU), and every domain.
  SchedCore& core() { return core_.domain(0); }
  Domains& domains() { return core_; }

 private:
  // A tenant handed over by another thread (post_add, post_remove).
  struct Handover {
    std::shared_ptr<const TenantDesc> add;  // null: remove `id`
    uint32_t id;
  };

  void loop();
  void drain_handovers(uint64_t now_ns);
  // until_ns: the policy's quiet time (0: the default timeouts).
  void sleep(uint64_t now_ns, uint64_t until_ns = 0);
  void wake();

  Domains core_;  // one SchedCore per GPU (sched/domains.h)
  uint64_t spin_ns_;
  IdleMeter* meter_;
  std::thread thread_;
  pthread_t thread_handle_{};
  std::atomic<bool> running_{false};
  std::atomic<bool> stop_{false};
  std::atomic<uint32_t> ctl_word_{0};  // bumped (and futex-woken) by other threads
  std::atomic<bool> has_work_{false};  // hand-overs or a status request are queued

  std::mutex mu_;
  std::vector<Handover> handovers_;
  std::condition_variable status_cv_;
  uint64_t status_asked_ = 0, status_given_ = 0;
  std::vector<TenantStatus> status_;
  std::vector<TenantStatus> departed_;
};

}  // namespace fikit::broker
