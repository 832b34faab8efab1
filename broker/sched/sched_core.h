// SchedCore: the scheduling state of every tenant, driven one round at a time by the scheduler
// thread (scheduler.h) or directly by tests.
//
// A round (poll) consumes every tenant's submission ring (copy, validate, sequence-check), tracks
// launches outstanding per stream slot until the slot's completion words pass them, takes back
// grants that were never launched, calls the policy, and publishes grants and heartbeats into the
// segments. Liveness: a tenant that leaves or faults makes the next round call the policy, and a
// tenant whose outstanding launches make no progress for its longest known launch plus
// kSilentMarginNs (the longest counted at most kSilentLongestMaxNs) is taken as drained, so that
// nothing a tenant does or fails to do holds the levels below it for longer than that. A tenant
// whose entries break the protocol is marked faulty (its client then fails open) and leaves
// scheduling; the others are not affected. Not thread-safe: one thread drives it.
#pragma once

#include <fikit/abi.h>
#include <fikit/ring.h>
#include <linux/futex.h>

#include <array>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "policy/policy.h"
#include "sched/fifo.h"
#include "sched/idle_meter.h"
#include "sched/latency_histogram.h"
#include "sched/tenant.h"

namespace fikit::broker {

// A tenant with more LP requests than this waiting or granted and not launched is faulty.
inline constexpr size_t kMaxQueuedRequests = kRingEntries;
inline constexpr uint64_t kSilentMarginNs = 1'000'000'000;
inline constexpr uint64_t kSilentLongestMaxNs = 10'000'000'000;
// An HP launch announced before its driver call (ABI 2.4) counts as busy for this long at most
// (a client killed inside the call leaves its announcement behind), and one up to kClockSlackNs
// in the future counts too (its clock read races ours).
inline constexpr uint64_t kHpIssuingMaxNs = 100'000'000;
inline constexpr uint64_t kClockSlackNs = 1'000'000;

class SchedCore final : public SchedulerApi {
 public:
  SchedCore(const PolicyOps* ops, const PolicyConfig& cfg);
  ~SchedCore() override;
  SchedCore(const SchedCore&) = delete;
  SchedCore& operator=(const SchedCore&) = delete;

  // Take over a tenant: its segment becomes kActive.
  void add(std::shared_ptr<const TenantDesc> desc, uint64_t now_ns);
  // Forget tenant `id`: the records left in its ring are consumed first (the policy sees them as
  // in a round), then its grants and LP in flight are freed and its segment is set kClosed (a live
  // client then fails open; kFaulty if one of those records was bad). Return false if unknown.
  bool remove(uint32_t id);
  // One round. Return the number of events (entries consumed, launches completed, grants expired
  // or made).
  uint32_t poll(uint64_t now_ns);

  // Return true if a request waits or LP work is in flight: worth spinning for.
  bool busy() const;
  // The time the policy asked to be called at (0: none).
  uint64_t wake_at_ns() const { return wake_at_ns_; }
  // Until when the policy expects nothing it waits for (SchedulerApi::quiet_until; 0: unknown).
  uint64_t quiet_until_ns() const { return quiet_until_ns_; }
  // Sleep protocol (scheduler.cpp): set broker_sleeping in every active segment; fill `out` with
  // the doorbell words to wait on (at most `max`); return true if any ring has an entry ready or
  // any tenant drained since its last round (drains ring only a sleeping broker: ABI 2.2).
  void set_sleeping(bool sleeping);
  size_t doorbells(struct futex_waitv* out, size_t max) const;
  bool rings_ready() const;
  size_t active_count() const { return active_.size(); }

  std::vector<TenantStatus> status() const;
  // The final status of the tenants removed since the last call (at most kKeepDeparted: when
  // nobody scrapes metrics, later ones are not kept), for the metrics of tenants that left
  // between two scrapes.
  static constexpr size_t kKeepDeparted = 1024;
  std::vector<TenantStatus> take_departed() { return std::exchange(departed_, {}); }
  const PolicyOps& policy() const { return *ops_; }
  // Hand every HP record consumed from now on to `meter` (nullptr: none; not owned).
  void set_idle_meter(IdleMeter* meter) { meter_ = meter; }

  // SchedulerApi, for the policy during dispatch.
  uint32_t tenant_count() const override { return static_cast<uint32_t>(active_.size()); }
  TenantInfo& tenant(uint32_t i) override { return active_[i]->info; }
  const Submission* request(uint32_t i, uint32_t k) const override;
  bool grant(uint32_t i) override;
  uint32_t lp_in_flight() const override { return lp_in_flight_; }
  bool busy_above(uint32_t priority) const override;
  void wake_at(uint64_t t_ns) override { wake_at_ns_ = t_ns; }
  void quiet_until(uint64_t t_ns) override { quiet_until_ns_ = t_ns; }
  void set_marker_every(uint32_t i, uint32_t n) override;
  bool open_burst(uint32_t i, uint32_t positions, uint64_t until_ns) override;
  void close_burst(uint32_t i) override;

 private:
  struct Launch {
    uint32_t position;  // ring position of the HP record, or of the LP launch's request
    bool marker;        // a completion marker writing position + 1 follows it
    bool lp;            // counted in LP in flight until complete
    uint64_t key;
    uint64_t issue_ns;  // the client's time
    uint64_t seen_ns;   // the round that consumed it (the broker's clock; set by track)
  };
  struct Grant {
    uint32_t position;
    uint64_t key;
    uint64_t granted_ns;
  };
  struct Tenant {
    std::shared_ptr<const TenantDesc> desc;
    Segment* seg = nullptr;
    TenantInfo info{};
    uint32_t head = 0;          // next ring position to consume
    uint32_t granted_word = 0;  // value of seg->broker.granted we publish
    uint64_t seen_syncs = 0;    // seg->client.syncs at its last reap
    uint64_t seen_issuing = 0;  // seg->client.hp_issuing_ns as of the last round (HP)
    bool grant_dirty = false;
    // Its burst (open_burst): requests at positions in [burst_start, burst_end) may come with
    // kFlagBurst; burst_until_ns is the published deadline (0: closed).
    uint32_t burst_start = 0, burst_end = 0;
    uint64_t burst_until_ns = 0;
    bool burst_dirty = false;
    Fifo<Submission> waiting;  // LP requests not yet granted, in ring order
    Fifo<Grant> grants;        // granted, not yet launched or aborted, in ring order
    Fifo<uint32_t> expired;    // grants taken back: a late launch of one is accepted
    std::array<Fifo<Launch>, kStreamSlots> slots;  // issued, not yet complete, per stream slot
    // Per slot: the last round that looked at it and left launches in it (not done by then).
    std::array<uint64_t, kStreamSlots> looked_ns{};
    uint64_t busy_slots = 0;   // bit i: slots[i] is not empty
    uint64_t progress_ns = 0;  // the last round its outstanding count changed
    uint64_t longest_ns = 0;   // the longest a launch of it stayed outstanding (broker's clock)
    uint64_t launches = 0, granted = 0, expired_count = 0, burst_granted = 0;
    uint64_t busy_ns = 0;        // closed busy periods (launches outstanding)
    uint64_t busy_since_ns = 0;  // start of the open one (outstanding > 0)
    LatencyHistogram grant_latency;
    std::string fault;  // non-empty once faulty
  };

  // sched_ring.cpp: consume t's ring; a bad entry sets t.fault.
  uint32_t consume(Tenant& t);
  uint32_t note_issuing(Tenant& t, uint64_t now_ns);
  const char* handle_entry(Tenant& t, const EntryCopy& e);
  const char* handle_lp_end(Tenant& t, const EntryCopy& e);
  void submit(Tenant& t, const EntryCopy& e);
  const char* burst_grant(Tenant& t, const EntryCopy& e);
  // Count the grant of t's request at `position` (after waiting waited_ns) as in flight.
  void record_grant(Tenant& t, uint32_t position, uint64_t key, uint64_t now_ns,
                    uint64_t waited_ns);

  void track(Tenant& t, uint16_t slot, const Launch& l);
  uint32_t reap_slots(Tenant& t, uint64_t now_ns);
  // done_ns: the best guess of its end; latest_ns: the latest it can have ended (when seen).
  void complete(Tenant& t, const Launch& l, uint64_t done_ns, uint64_t latest_ns, bool exact);
  uint32_t expire_grants(Tenant& t, uint64_t now_ns);
  uint32_t expire_silent(Tenant& t, uint64_t now_ns);
  void publish_grants();
  void heartbeat(uint64_t now_ns);
  void drain(Tenant& t);
  void make_faulty(Tenant& t);
  void release(Tenant& t, TenantState state);
  void lp_done(Tenant& t);
  void revoke(Tenant& t, uint32_t position);
  void retire_faulty();
  TenantStatus status_of(const Tenant& t) const;
  void log_policy_stats(const Tenant& t) const;

  const PolicyOps* ops_;
  PolicyConfig cfg_;
  void* policy_state_ = nullptr;
  IdleMeter* meter_ = nullptr;
  std::vector<std::unique_ptr<Tenant>> active_;
  std::vector<std::unique_ptr<Tenant>> faulty_;
  uint32_t lp_in_flight_ = 0;
  uint64_t wake_at_ns_ = 0;
  uint64_t quiet_until_ns_ = 0;
  uint64_t round_ns_ = 0;      // the current round's time
  bool tenants_left_ = false;  // a tenant left or faulted since the last dispatch
  uint64_t last_heartbeat_ns_ = 0;
  std::vector<TenantStatus> departed_;
};

}  // namespace fikit::broker
