// The scheduler driven directly: in-process segments filled with ring__push as a client would, one
// round at a time (Scheduler::run_once), and once through the real thread and its sleep protocol.
#include <fikit/ring.h>
#include <fikit/util.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <climits>
#include <memory>
#include <thread>
#include <vector>

#include "sched/scheduler.h"
#include "t_segment.h"

namespace fikit::broker {
namespace {

// Records what the scheduler told the policy, then acts like `priority`.
struct t_Calls {
  std::vector<Submission> submits;
  std::vector<Completion> completes;
  std::vector<uint32_t> idles;         // tenant ids
  std::vector<size_t> removed_after;   // per on_tenant_remove: how many submits were seen before it
  std::vector<uint32_t> revokes;       // positions, per on_revoke
  std::vector<uint32_t> waiting;       // at the last dispatch, before its grants: request positions
  uint32_t grant_limit = UINT32_MAX;   // grants per dispatch call
  uint32_t burst_positions = 0;        // after its grants, open a burst this long (0: none)
  bool burst_opened = false;           // what open_burst answered
  std::vector<uint32_t> burst_grants;  // positions, per on_burst_grant
};
t_Calls g_calls;

const PolicyOps kRecordingPolicy = {
    .name = "recording",
    .description = "test: priority, recording every call",
    .init = nullptr,
    .exit = nullptr,
    .on_tenant_add = nullptr,
    .on_tenant_remove =
        [](void*, TenantInfo&) { g_calls.removed_after.push_back(g_calls.submits.size()); },
    .on_submit = [](void*, TenantInfo&, const Submission& s) { g_calls.submits.push_back(s); },
    .on_complete = [](void*, TenantInfo&, const Completion& c) { g_calls.completes.push_back(c); },
    .on_revoke = [](void*, TenantInfo&, uint32_t position) { g_calls.revokes.push_back(position); },
    .on_burst_grant = [](void*, TenantInfo&,
                         const Submission& r) { g_calls.burst_grants.push_back(r.position); },
    .on_idle = [](void*, TenantInfo& t, uint64_t) { g_calls.idles.push_back(t.id); },
    .dispatch =
        [](void*, SchedulerApi& s, uint64_t) {
          g_calls.waiting.clear();
          for (uint32_t i = 0; i < s.tenant_count(); i++)
            for (uint32_t k = 0; const Submission* r = s.request(i, k); k++)
              g_calls.waiting.push_back(r->position);
          uint32_t n = 0;
          for (uint32_t i = 0; i < s.tenant_count(); i++)
            while (n < g_calls.grant_limit && !s.busy_above(s.tenant(i).priority) && s.grant(i))
              n++;
          if (g_calls.burst_positions > 0 && s.tenant_count() > 0)
            g_calls.burst_opened = s.open_burst(s.tenant_count() - 1, g_calls.burst_positions,
                                                now_ns() + 60'000'000'000ull);
        },
    .tenant_stats = nullptr,
    .on_hint_idle = nullptr,
};

// One tenant's segment (t_broker.h), with ring helpers.
struct t_Tenant : t_Segment {
  using t_Segment::t_Segment;
  // t_ns: the entry's client time (0: now).
  uint32_t push(EntryKind kind, uint16_t slot = 0, uint32_t ref = 0, uint32_t flags = 0,
                uint64_t t_ns = 0) {
    uint32_t pos = 0;
    EXPECT_TRUE(ring__push(
        &seg->ring, EntryFields{kind, slot, ref, flags, 0x1234, t_ns ? t_ns : now_ns()}, &pos));
    return pos;
  }
  uint32_t granted() const { return seg->broker.granted.load(); }
  TenantState state() const { return static_cast<TenantState>(seg->broker.state.load()); }
};

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override { g_calls = t_Calls{}; }
  void make(const char* policy, uint64_t grant_timeout_ns = 0) {
    SchedulerConfig cfg;
    cfg.policy = policy ? policy_find(policy) : &kRecordingPolicy;
    ASSERT_NE(cfg.policy, nullptr);
    cfg.policy_cfg.grant_timeout_ns = grant_timeout_ns;
    sched = std::make_unique<Scheduler>(cfg);
  }
  t_Tenant& add(uint32_t priority) {
    tenants.push_back(
        std::make_unique<t_Tenant>(static_cast<uint32_t>(tenants.size()) + 1, priority));
    sched->post_add(tenants.back()->desc);
    return *tenants.back();
  }
  uint32_t round() { return sched->run_once(now_ns()); }
  TenantStatus status_of(const t_Tenant& t) {
    for (const TenantStatus& s : sched->status())
      if (s.id == t.desc->id) return s;
    ADD_FAILURE() << "tenant " << t.desc->id << " not in status";
    return TenantStatus{};
  }

  // lp's next request is granted and opens a burst of `positions` (the recording policy's);
  // return the request's position.
  uint32_t grant_with_a_burst(t_Tenant& lp, uint32_t positions) {
    g_calls.burst_positions = positions;
    uint32_t r0 = lp.push(EntryKind::kLpRequest);
    round();
    EXPECT_EQ(lp.granted(), r0 + 1);
    EXPECT_TRUE(g_calls.burst_opened);
    g_calls.burst_positions = 0;
    return r0;
  }

  std::vector<std::unique_ptr<t_Tenant>> tenants;  // outlive the scheduler (declared first)
  std::unique_ptr<Scheduler> sched;
};

TEST_F(SchedulerTest, AddMakesTenantActiveWithHeartbeat) {
  make("priority");
  t_Tenant& t = add(kPriorityLow);
  EXPECT_EQ(t.state(), TenantState::kConnecting);
  round();
  EXPECT_EQ(t.state(), TenantState::kActive);
  EXPECT_NE(t.seg->broker.heartbeat_ns.load(), 0u);
}

// ABI 2.4: an HP launch announced before its driver call holds LP work back until its record
// comes (the GPU runs it meanwhile), whatever the policy; a stale, future or superseded
// announcement holds nothing.
TEST_F(SchedulerTest, AnHpLaunchInItsDriverCallHoldsLpBack) {
  make("priority");
  t_Tenant& hp = add(kPriorityHigh);
  t_Tenant& lp = add(kPriorityLow);
  round();
  hp.seg->client.hp_issuing_ns.store(now_ns());
  uint32_t r0 = lp.push(EntryKind::kLpRequest, 1);
  round();
  EXPECT_EQ(lp.granted(), 0u) << "held: the HP's launch is in its driver call";
  // The call returns: its record (a later time) supersedes the announcement; once it is done
  // (host_done passes it), the LP request goes.
  uint32_t h = hp.push(EntryKind::kHpLaunch, 5);
  round();
  EXPECT_EQ(lp.granted(), 0u);
  hp.seg->slots[5].host_done.store(h + 1);
  round();
  EXPECT_EQ(lp.granted(), r0 + 1) << "the record came and is done";
  lp.push(EntryKind::kLpLaunched, 1, r0);
  round();

  uint32_t r1 = lp.push(EntryKind::kLpRequest, 1);
  hp.seg->client.hp_issuing_ns.store(now_ns() - kHpIssuingMaxNs - 1'000'000);
  round();
  EXPECT_EQ(lp.granted(), r1 + 1) << "an announcement older than kHpIssuingMaxNs holds nothing";
  lp.push(EntryKind::kLpLaunched, 1, r1);
  round();
  uint32_t r2 = lp.push(EntryKind::kLpRequest, 1);
  hp.seg->client.hp_issuing_ns.store(now_ns() + 60'000'000'000ull);
  round();
  EXPECT_EQ(lp.granted(), r2 + 1) << "nor one a minute in the future (untrusted)";
}

TEST_F(SchedulerTest, PriorityHoldsLpUntilHpHostDonePasses) {
  make("priority");
  t_Tenant& hp = add(kPriorityHigh);
  t_Tenant& lp = add(kPriorityLow);
  uint32_t hp_pos = hp.push(EntryKind::kHpLaunch, 5);
  uint32_t lp_pos = lp.push(EntryKind::kLpRequest, 1);
  round();
  EXPECT_EQ(lp.granted(), 0u);
  EXPECT_EQ(status_of(lp).lp_waiting, 1u);
  EXPECT_EQ(status_of(hp).outstanding, 1u);
  hp.seg->slots[5].host_done.store(hp_pos);  // drained up to before the launch: not enough
  round();
  EXPECT_EQ(lp.granted(), 0u);
  hp.seg->slots[5].host_done.store(hp_pos + 1);
  round();
  EXPECT_EQ(lp.granted(), lp_pos + 1);
  EXPECT_EQ(status_of(hp).outstanding, 0u);
  EXPECT_EQ(status_of(lp).granted, 1u);
  EXPECT_EQ(status_of(lp).lp_in_flight, 1u);
}

TEST_F(SchedulerTest, HpMarkerCompletesExactlyAndDrainDoesNot) {
  make(nullptr);
  t_Tenant& hp = add(kPriorityHigh);
  uint32_t a = hp.push(EntryKind::kHpLaunch, 2, 0, kFlagMarker);
  uint32_t b = hp.push(EntryKind::kHpLaunch, 2);
  round();
  EXPECT_EQ(g_calls.submits.size(), 2u);
  hp.seg->slots[2].gpu_done.store(a + 1);
  round();
  ASSERT_EQ(g_calls.completes.size(), 1u);
  EXPECT_EQ(g_calls.completes[0].position, a);
  EXPECT_TRUE(g_calls.completes[0].exact);
  EXPECT_TRUE(g_calls.idles.empty());
  hp.seg->slots[2].host_done.store(b + 1);
  round();
  ASSERT_EQ(g_calls.completes.size(), 2u);
  EXPECT_FALSE(g_calls.completes[1].exact);
  EXPECT_EQ(g_calls.idles, (std::vector<uint32_t>{hp.desc->id}));
}

TEST_F(SchedulerTest, GrantsAdvanceInRingOrder) {
  make(nullptr);
  g_calls.grant_limit = 1;
  t_Tenant& lp = add(kPriorityNormal);
  uint32_t r0 = lp.push(EntryKind::kLpRequest);
  lp.push(EntryKind::kHintIdle);
  uint32_t r1 = lp.push(EntryKind::kLpRequest);
  round();
  EXPECT_EQ(lp.granted(), r0 + 1);
  lp.push(EntryKind::kLpLaunched, 0, r0);  // an event, so the policy runs again
  round();
  EXPECT_EQ(lp.granted(), r1 + 1);
}

// An LP burst (ABI 2.3): the policy opens it after a grant; the core publishes its positions
// and deadline, counts each request launched in it as granted (and the policy hears of it), and
// accepts its launches like any granted one's.
TEST_F(SchedulerTest, BurstRequestsAreGrantedWhenConsumed) {
  make(nullptr);
  t_Tenant& lp = add(kPriorityLow);
  uint32_t r0 = grant_with_a_burst(lp, 4);
  EXPECT_EQ(lp.seg->broker.burst_end.load(), r0 + 1 + 4);
  EXPECT_NE(lp.seg->broker.burst_until_ns.load(), 0u);
  lp.push(EntryKind::kLpLaunched, 0, r0, kFlagMarker);
  uint32_t b1 = lp.push(EntryKind::kLpRequest, 0, 0, kFlagBurst);
  lp.push(EntryKind::kLpLaunched, 0, b1, kFlagMarker);
  uint32_t b2 = lp.push(EntryKind::kLpRequest, 0, 0, kFlagBurst);
  round();
  EXPECT_EQ(g_calls.burst_grants, (std::vector<uint32_t>{b1, b2}));
  EXPECT_EQ(lp.granted(), r0 + 1);  // the word is for requests that wait
  EXPECT_EQ(lp.state(), TenantState::kActive);
  TenantStatus st = status_of(lp);
  EXPECT_EQ(st.granted, 3u);
  EXPECT_EQ(st.burst_granted, 2u);
  EXPECT_EQ(st.lp_in_flight, 3u);  // b2 is granted, not launched yet
  lp.seg->slots[0].gpu_done.store(b1 + 1);
  round();
  EXPECT_EQ(status_of(lp).lp_in_flight, 1u);
  lp.push(EntryKind::kLpLaunched, 0, b2, kFlagMarker);
  lp.seg->slots[0].gpu_done.store(b2 + 1);
  round();  // consumes the launch (slots are read before the ring)
  round();
  EXPECT_EQ(status_of(lp).lp_in_flight, 0u);
  EXPECT_EQ(lp.state(), TenantState::kActive);
}

TEST_F(SchedulerTest, BurstRequestOutsideTheBurstIsFaulty) {
  make(nullptr);
  t_Tenant& lp = add(kPriorityLow);
  uint32_t r0 = grant_with_a_burst(lp, 2);
  lp.push(EntryKind::kLpLaunched, 0, r0);
  lp.push(EntryKind::kLpRequest, 0, 0, kFlagBurst);  // r0 + 2: the burst's last position
  lp.push(EntryKind::kLpRequest, 0, 0, kFlagBurst);  // r0 + 3: past it
  round();
  EXPECT_EQ(g_calls.burst_grants.size(), 1u);
  EXPECT_EQ(lp.state(), TenantState::kFaulty);
}

TEST_F(SchedulerTest, BurstRequestWithoutABurstIsFaulty) {
  make(nullptr);
  t_Tenant& lp = add(kPriorityLow);
  lp.push(EntryKind::kLpRequest, 0, 0, kFlagBurst);
  round();
  EXPECT_TRUE(g_calls.burst_grants.empty());
  EXPECT_EQ(lp.state(), TenantState::kFaulty);
}

// Grants go in ring order: no burst past a request that waits; none for the highest level.
TEST_F(SchedulerTest, BurstIsRefusedPastWaitingRequestsAndToHp) {
  make(nullptr);
  g_calls.grant_limit = 1;
  g_calls.burst_positions = 4;
  t_Tenant& lp = add(kPriorityLow);
  lp.push(EntryKind::kLpRequest);
  lp.push(EntryKind::kLpRequest);
  round();
  EXPECT_FALSE(g_calls.burst_opened);
  EXPECT_EQ(lp.seg->broker.burst_until_ns.load(), 0u);
  t_Tenant& hp = add(kPriorityHigh);
  hp.push(EntryKind::kHpLaunch);
  round();
  EXPECT_FALSE(g_calls.burst_opened);
  EXPECT_EQ(hp.seg->broker.burst_until_ns.load(), 0u);
}

TEST_F(SchedulerTest, ClosedBurstPublishesNoDeadline) {
  make(nullptr);
  t_Tenant& lp = add(kPriorityLow);
  grant_with_a_burst(lp, 4);
  ASSERT_NE(lp.seg->broker.burst_until_ns.load(), 0u);
  EXPECT_TRUE(sched->core().busy());  // LP work is about to run
  sched->core().close_burst(0);
  sched->core().poll(now_ns());
  EXPECT_EQ(lp.seg->broker.burst_until_ns.load(), 0u);
}

TEST_F(SchedulerTest, LpLaunchedWithMarkerStaysInFlightUntilGpuDone) {
  make("none");
  t_Tenant& lp = add(kPriorityLow);
  uint32_t r = lp.push(EntryKind::kLpRequest, 3);
  round();
  ASSERT_EQ(lp.granted(), r + 1);
  uint32_t l = lp.push(EntryKind::kLpLaunched, 3, r, kFlagMarker);
  round();
  EXPECT_EQ(status_of(lp).lp_in_flight, 1u);
  EXPECT_EQ(status_of(lp).outstanding, 1u);
  EXPECT_TRUE(sched->core().busy());
  lp.seg->slots[2].gpu_done.store(l + 1);  // another stream's marker says nothing
  round();
  EXPECT_EQ(status_of(lp).lp_in_flight, 1u);
  lp.seg->slots[3].gpu_done.store(r + 1);  // the marker writes the request's position + 1
  round();
  EXPECT_EQ(status_of(lp).lp_in_flight, 0u);
  EXPECT_EQ(status_of(lp).outstanding, 0u);
  EXPECT_FALSE(sched->core().busy());
}

// Two threads' launches on one stream reported out of request order: the marker of the later
// request covers both, and the policy hears of each with its own position, exact only for its own.
TEST_F(SchedulerTest, OutOfOrderLpLaunchesCompleteByPosition) {
  make(nullptr);
  t_Tenant& lp = add(kPriorityLow);
  uint32_t r0 = lp.push(EntryKind::kLpRequest, 4);
  uint32_t r1 = lp.push(EntryKind::kLpRequest, 4);
  round();
  ASSERT_EQ(lp.granted(), r1 + 1);
  lp.push(EntryKind::kLpLaunched, 4, r1, kFlagMarker);
  lp.push(EntryKind::kLpLaunched, 4, r0, kFlagMarker);
  round();
  EXPECT_EQ(status_of(lp).lp_in_flight, 2u);
  lp.seg->slots[4].gpu_done.store(r0 + 1);
  round();
  ASSERT_EQ(g_calls.completes.size(), 1u);
  EXPECT_EQ(g_calls.completes[0].position, r0);
  EXPECT_TRUE(g_calls.completes[0].exact);
  lp.seg->slots[4].host_done.store(r1 + 1);
  round();
  ASSERT_EQ(g_calls.completes.size(), 2u);
  EXPECT_EQ(g_calls.completes[1].position, r1);
  EXPECT_FALSE(g_calls.completes[1].exact);
  EXPECT_EQ(sched->core().lp_in_flight(), 0u);
  EXPECT_EQ(g_calls.idles, (std::vector<uint32_t>{lp.desc->id}));
}

// A marker seen at a round completed between the last round that looked at its slot and found it
// not done (if it was tracked by then; else its issue) and that round: the policy is told the
// midpoint, never before the issue, and the round as the latest it can have completed. Rounds are
// timed far in the future, so that the clock read after the loads does not move them.
class MarkerTimeTest : public SchedulerTest {
 protected:
  // One LP launch with a marker on slot 1, issued at base + issue_us; rounds at base + each of
  // `rounds_us`, the marker written before the last. Return what the policy was told.
  Completion run(uint64_t issue_us, std::vector<uint64_t> rounds_us) {
    g_calls = t_Calls{};
    make(nullptr);
    t_Tenant& lp = add(kPriorityLow);
    uint32_t r = lp.push(EntryKind::kLpRequest, 1);
    sched->run_once(at(0));
    EXPECT_EQ(lp.granted(), r + 1);
    lp.push(EntryKind::kLpLaunched, 1, r, kFlagMarker, at(issue_us));
    for (size_t i = 0; i < rounds_us.size(); i++) {
      if (i + 1 == rounds_us.size()) lp.seg->slots[1].gpu_done.store(r + 1);
      sched->run_once(at(rounds_us[i]));
    }
    EXPECT_EQ(g_calls.completes.size(), 1u);
    return g_calls.completes.empty() ? Completion{} : g_calls.completes.back();
  }
  uint64_t at(uint64_t us) const { return base_ + us * 1000; }
  const uint64_t base_ = now_ns() + 1'000'000'000'000;  // 1000 s ahead
};

TEST_F(MarkerTimeTest, DoneBetweenTheLastLookThatFoundItNotDoneAndTheRoundThatSawIt) {
  // Tracked at 10; looked at 60 and 110 (not done); seen at 160.
  Completion c = run(0, {10, 60, 110, 160});
  EXPECT_TRUE(c.exact);
  EXPECT_EQ(c.done_ns, at(135));
  EXPECT_EQ(c.latest_ns, at(160));
}

TEST_F(MarkerTimeTest, DoneBeforeAnyLookAfterItsTrackingIsTimedFromItsIssue) {
  // The round that tracked it (at 10) looked at the slot before consuming it: no look counts.
  Completion c = run(4, {10, 60});
  EXPECT_EQ(c.done_ns, at(32));
  EXPECT_EQ(c.latest_ns, at(60));
}

TEST_F(MarkerTimeTest, NeverBeforeItsIssue) {
  // The client says it issued at 100, after the look at 60 (its clock is not the broker's).
  Completion c = run(100, {10, 60, 120});
  EXPECT_EQ(c.done_ns, at(110));
  // An issue time after the round that saw it done: that round.
  c = run(500, {10, 60, 120});
  EXPECT_EQ(c.done_ns, at(120));
}

TEST_F(SchedulerTest, LpLaunchedWithoutMarkerCompletesAtOnce) {
  make("none");
  t_Tenant& lp = add(kPriorityLow);
  uint32_t r = lp.push(EntryKind::kLpRequest);
  round();
  lp.push(EntryKind::kLpLaunched, 0, r);
  round();
  EXPECT_EQ(status_of(lp).lp_in_flight, 0u);
  EXPECT_EQ(sched->core().lp_in_flight(), 0u);
  EXPECT_EQ(lp.state(), TenantState::kActive);
}

TEST_F(SchedulerTest, AbortFreesTheGrant) {
  make("none");
  t_Tenant& lp = add(kPriorityLow);
  uint32_t r = lp.push(EntryKind::kLpRequest);
  round();
  EXPECT_EQ(sched->core().lp_in_flight(), 1u);
  lp.push(EntryKind::kLpAbort, 0, r);
  round();
  EXPECT_EQ(sched->core().lp_in_flight(), 0u);
  EXPECT_EQ(lp.state(), TenantState::kActive);
}

// The policy reads the waiting requests from the core, oldest first; a grant takes the oldest.
TEST_F(SchedulerTest, RequestShowsTheWaitingRequestsInRingOrder) {
  make(nullptr);
  g_calls.grant_limit = 0;
  t_Tenant& lp = add(kPriorityLow);
  uint32_t a = lp.push(EntryKind::kLpRequest);
  uint32_t b = lp.push(EntryKind::kLpRequest, 3);
  uint32_t c = lp.push(EntryKind::kLpRequest);
  round();
  EXPECT_EQ(g_calls.waiting, (std::vector<uint32_t>{a, b, c}));
  g_calls.grant_limit = 1;
  lp.push(EntryKind::kHintIdle);  // an event, so that dispatch runs again
  round();
  EXPECT_EQ(lp.granted(), a + 1);
  lp.push(EntryKind::kHintIdle);
  round();
  EXPECT_EQ(g_calls.waiting, (std::vector<uint32_t>{b, c}));  // a granted; this round grants b
  ASSERT_NE(sched->core().request(0, 0), nullptr);
  EXPECT_EQ(sched->core().request(0, 0)->position, c);
  EXPECT_EQ(sched->core().request(0, 1), nullptr);
}

// A grant that ends without a completion is revoked under its request's position.
TEST_F(SchedulerTest, AbortAndExpiryRevokeTheGrantByPosition) {
  make(nullptr, 1'000'000);
  t_Tenant& lp = add(kPriorityLow);
  uint32_t a = lp.push(EntryKind::kLpRequest);
  uint32_t b = lp.push(EntryKind::kLpRequest);
  round();
  lp.push(EntryKind::kLpAbort, 0, b);
  round();
  EXPECT_EQ(g_calls.revokes, (std::vector<uint32_t>{b}));
  sched->run_once(now_ns() + 1'000'000'000);
  EXPECT_EQ(g_calls.revokes, (std::vector<uint32_t>{b, a}));
  EXPECT_EQ(sched->core().lp_in_flight(), 0u);
  EXPECT_TRUE(g_calls.completes.empty());
}

// Liveness: a tenant that leaves makes the policy decide again, with no other event.
TEST_F(SchedulerTest, TenantLeavingRunsThePolicyAgain) {
  make("priority");
  t_Tenant& hp = add(kPriorityHigh);
  t_Tenant& lp = add(kPriorityLow);
  hp.push(EntryKind::kHpLaunch);  // outstanding: never drained
  uint32_t r = lp.push(EntryKind::kLpRequest);
  round();
  EXPECT_EQ(lp.granted(), 0u);
  sched->post_remove(hp.desc->id);
  round();
  EXPECT_EQ(lp.granted(), r + 1);
}

// Liveness: launches that make no progress for longer than the tenant's longest launch plus a
// margin are taken as drained; the tenant's next launches count again.
TEST_F(SchedulerTest, SilentTenantIsTakenAsDrained) {
  make("priority");
  t_Tenant& hp = add(kPriorityHigh);
  t_Tenant& lp = add(kPriorityLow);
  uint64_t t0 = now_ns();
  hp.push(EntryKind::kHpLaunch, 3);
  uint32_t r = lp.push(EntryKind::kLpRequest);
  sched->run_once(t0);
  sched->run_once(t0 + kSilentMarginNs / 2);
  EXPECT_EQ(lp.granted(), 0u);
  EXPECT_EQ(status_of(hp).outstanding, 1u);
  sched->run_once(t0 + kSilentMarginNs + 1);
  EXPECT_EQ(status_of(hp).outstanding, 0u);
  EXPECT_EQ(lp.granted(), r + 1);
  hp.push(EntryKind::kHpLaunch, 3);
  uint32_t r2 = lp.push(EntryKind::kLpRequest);
  sched->run_once(t0 + kSilentMarginNs + 2);
  EXPECT_EQ(status_of(hp).outstanding, 1u);
  EXPECT_EQ(lp.granted(), r + 1);  // held again: r2 waits
  EXPECT_EQ(status_of(lp).lp_waiting, 1u);
  sched->run_once(t0 + 3 * kSilentMarginNs);
  EXPECT_EQ(lp.granted(), r2 + 1);
}

// Memory: a tenant that floods LP requests it never launches is faulty, its queue freed.
TEST_F(SchedulerTest, FloodOfLpRequestsMakesTheTenantFaulty) {
  make("priority");
  t_Tenant& hp = add(kPriorityHigh);
  t_Tenant& lp = add(kPriorityLow);
  hp.push(EntryKind::kHpLaunch);  // holds every request
  for (uint32_t n = 0; n <= kMaxQueuedRequests && lp.state() != TenantState::kFaulty;) {
    uint32_t pos;
    while (
        ring__push(&lp.seg->ring, EntryFields{EntryKind::kLpRequest, 0, 0, 0, 1, now_ns()}, &pos))
      n++;
    round();
  }
  EXPECT_EQ(lp.state(), TenantState::kFaulty);
  EXPECT_NE(status_of(lp).fault.find("too many LP requests"), std::string::npos);
  EXPECT_EQ(status_of(lp).lp_waiting, 0u);
  EXPECT_EQ(hp.state(), TenantState::kActive);
}

// Each way of breaking the protocol makes that tenant faulty and leaves the other one served.
class SchedulerFaultTest : public SchedulerTest,
                           public ::testing::WithParamInterface<const char*> {};

TEST_P(SchedulerFaultTest, BadTenantIsFaultyOtherIsServed) {
  make("none");
  t_Tenant& bad = add(kPriorityLow);
  t_Tenant& good = add(kPriorityLow);
  std::string how = GetParam();
  uint32_t pos = 0;
  if (how == "corrupt-commit") {
    ring__reserve(&bad.seg->ring, &pos);
    bad.seg->ring.entries[pos & kRingMask].commit.store(pos + 77);
  } else if (how == "unknown-kind") {
    bad.push(static_cast<EntryKind>(kEntryKindMax + 1));
  } else if (how == "bad-slot") {
    bad.push(EntryKind::kLpRequest, kStreamSlots);
  } else if (how == "bad-ref") {
    bad.push(EntryKind::kLpLaunched, 0, 12345);
  } else if (how == "double-launch") {
    uint32_t r = bad.push(EntryKind::kLpRequest);
    round();
    bad.push(EntryKind::kLpLaunched, 0, r);
    bad.push(EntryKind::kLpLaunched, 0, r);
  } else if (how == "hp-from-lp") {
    bad.push(EntryKind::kHpLaunch);
  }
  round();
  EXPECT_EQ(bad.state(), TenantState::kFaulty);
  EXPECT_EQ(status_of(bad).state, TenantState::kFaulty);
  EXPECT_NE(status_of(bad).fault, "");
  uint32_t r = good.push(EntryKind::kLpRequest);
  round();
  EXPECT_EQ(good.state(), TenantState::kActive);
  EXPECT_EQ(good.granted(), r + 1);
  EXPECT_EQ(sched->core().lp_in_flight(), 1u);  // the faulty tenant's grants are gone
}

INSTANTIATE_TEST_SUITE_P(Faults, SchedulerFaultTest,
                         ::testing::Values("corrupt-commit", "unknown-kind", "bad-slot", "bad-ref",
                                           "double-launch", "hp-from-lp"));

TEST_F(SchedulerTest, LpRequestFromHpTenantIsFaulty) {
  make("priority");
  t_Tenant& hp = add(kPriorityHigh);
  hp.push(EntryKind::kLpRequest);
  round();
  EXPECT_EQ(hp.state(), TenantState::kFaulty);
}

TEST_F(SchedulerTest, FaultReleasesQueuedRequests) {
  make("priority");
  t_Tenant& hp = add(kPriorityHigh);
  t_Tenant& lp = add(kPriorityLow);
  hp.push(EntryKind::kHpLaunch);
  lp.push(EntryKind::kLpRequest);
  uint32_t r1 = lp.push(EntryKind::kLpRequest);
  round();
  EXPECT_EQ(lp.granted(), 0u);
  lp.push(EntryKind::kLpAbort, 0, 999);
  round();
  EXPECT_EQ(lp.state(), TenantState::kFaulty);
  EXPECT_EQ(lp.granted(), r1 + 1);
}

TEST_F(SchedulerTest, RemovalFreesGrantsAndClosesSegment) {
  make("none");
  t_Tenant& lp = add(kPriorityLow);
  lp.push(EntryKind::kLpRequest);
  lp.push(EntryKind::kLpRequest);
  round();
  EXPECT_EQ(sched->core().lp_in_flight(), 2u);
  sched->post_remove(lp.desc->id);
  round();
  EXPECT_EQ(sched->core().lp_in_flight(), 0u);
  EXPECT_EQ(lp.state(), TenantState::kClosed);
  EXPECT_TRUE(sched->status().empty());
}

// A tenant that exits right after pushing: what it committed reaches the policy, in order, before
// the tenant is removed (a full lap of the ring, none of it consumed by a round yet).
TEST_F(SchedulerTest, RemovalConsumesTheRecordsLeftInTheRing) {
  make(nullptr);
  t_Tenant& hp = add(kPriorityHigh);
  t_Tenant& lp = add(kPriorityLow);
  round();
  std::vector<uint32_t> pushed;
  for (uint32_t i = 0; i < kRingEntries; i++) pushed.push_back(hp.push(EntryKind::kHpLaunch, 1));
  lp.push(EntryKind::kLpRequest);
  sched->post_remove(hp.desc->id);
  round();
  ASSERT_EQ(g_calls.submits.size(), kRingEntries + 1u);
  for (uint32_t i = 0; i < kRingEntries; i++) EXPECT_EQ(g_calls.submits[i].position, pushed[i]);
  ASSERT_EQ(g_calls.removed_after.size(), 1u);
  EXPECT_EQ(g_calls.removed_after[0], kRingEntries);  // every record came before the removal
  EXPECT_EQ(hp.state(), TenantState::kClosed);
  EXPECT_EQ(hp.seg->ring.head.load(), hp.seg->ring.tail.load());
  EXPECT_EQ(status_of(lp).launches, 1u);
  EXPECT_EQ(lp.granted(), 1u);  // its request is granted: the HP launches left with their tenant
}

// Stopping the broker (the scheduler destroyed with tenants still in it) loses none either.
TEST_F(SchedulerTest, DestructionConsumesTheRecordsLeftInTheRing) {
  make(nullptr);
  t_Tenant& hp = add(kPriorityHigh);
  round();
  for (int i = 0; i < 10; i++) hp.push(EntryKind::kHpLaunch);
  sched.reset();
  EXPECT_EQ(g_calls.submits.size(), 10u);
  ASSERT_EQ(g_calls.removed_after.size(), 1u);
  EXPECT_EQ(g_calls.removed_after[0], 10u);
}

// A bad record among those left makes the tenant faulty, as in a round; the ones before it count.
TEST_F(SchedulerTest, RemovalWithABadRecordLeftIsFaulty) {
  make(nullptr);
  t_Tenant& lp = add(kPriorityLow);
  round();
  lp.push(EntryKind::kLpRequest);
  uint32_t r = lp.push(EntryKind::kLpRequest);
  lp.push(EntryKind::kLpLaunched, 0, 12345);
  lp.push(EntryKind::kLpRequest);
  sched->post_remove(lp.desc->id);
  round();
  EXPECT_EQ(g_calls.submits.size(), 2u);
  EXPECT_EQ(lp.state(), TenantState::kFaulty);
  EXPECT_EQ(lp.granted(), r + 1);  // its waiting requests were released
  EXPECT_EQ(sched->core().lp_in_flight(), 0u);
  EXPECT_TRUE(sched->status().empty());
}

TEST_F(SchedulerTest, UnlaunchedGrantExpiresAndLateLaunchIsAccepted) {
  make("none", 1'000'000);
  t_Tenant& lp = add(kPriorityLow);
  uint32_t r = lp.push(EntryKind::kLpRequest);
  round();
  EXPECT_EQ(sched->core().lp_in_flight(), 1u);
  sched->run_once(now_ns() + 1'000'000'000);
  EXPECT_EQ(sched->core().lp_in_flight(), 0u);
  EXPECT_EQ(status_of(lp).expired, 1u);
  lp.push(EntryKind::kLpLaunched, 0, r);
  round();
  EXPECT_EQ(lp.state(), TenantState::kActive);
  EXPECT_EQ(sched->core().lp_in_flight(), 0u);
}

// The thread: sleeps when idle (broker_sleeping set), and a doorbell wakes it to grant.
TEST_F(SchedulerTest, SleepingThreadIsWokenByDoorbellAndWakesWaiter) {
  make("none");
  t_Tenant& lp = add(kPriorityLow);
  ASSERT_TRUE(sched->start().ok());
  uint64_t deadline = now_ns() + 10'000'000'000ull;
  while (lp.seg->broker.broker_sleeping.load() == 0 && now_ns() < deadline) usleep(1000);
  ASSERT_EQ(lp.seg->broker.broker_sleeping.load(), 1u);
  // A client thread: push, fence, ring the doorbell if the broker sleeps, wait for the grant.
  uint32_t r = lp.push(EntryKind::kLpRequest);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (lp.seg->broker.broker_sleeping.load() != 0) {
    lp.seg->broker.doorbell.fetch_add(1);
    futex_wake(&lp.seg->broker.doorbell, 1);
  }
  lp.seg->broker.waiters.fetch_add(1);
  for (;;) {
    uint32_t g = lp.seg->broker.granted.load();
    if (pos_at_or_after(g, r + 1) || now_ns() > deadline) break;
    futex_wait(&lp.seg->broker.granted, g, 100'000'000);
  }
  lp.seg->broker.waiters.fetch_sub(1);
  EXPECT_EQ(lp.granted(), r + 1);
  EXPECT_EQ(sched->status().size(), 1u);
  EXPECT_GE(sched->cpu_seconds(), 0.0);
  sched->stop();
}

// A drain (client.syncs bumped after host_done) is work for the sleep check: a drain published
// between the broker's last round and its sleep must keep it awake (the client saw it awake and
// rang nothing), and the round that reaps it makes the check quiet again.
TEST_F(SchedulerTest, DrainSinceTheLastRoundIsWorkForTheSleepCheck) {
  make(nullptr);
  t_Tenant& hp = add(kPriorityHigh);
  uint32_t a = hp.push(EntryKind::kHpLaunch, 2);
  round();
  EXPECT_FALSE(sched->core().rings_ready());
  hp.seg->slots[2].host_done.store(a + 1);
  hp.seg->client.syncs.fetch_add(1);
  EXPECT_TRUE(sched->core().rings_ready());
  round();
  EXPECT_FALSE(sched->core().rings_ready());
  EXPECT_EQ(g_calls.idles, (std::vector<uint32_t>{hp.desc->id}));
  // A drain covering launches the broker has not consumed yet: the round that consumes them
  // cannot reap it, so it is still work, and the next round reaps it.
  uint32_t b = hp.push(EntryKind::kHpLaunch, 2);
  hp.seg->slots[2].host_done.store(b + 1);
  hp.seg->client.syncs.fetch_add(1);
  round();
  EXPECT_EQ(g_calls.idles.size(), 1u);
  EXPECT_TRUE(sched->core().rings_ready());
  round();
  EXPECT_EQ(g_calls.idles.size(), 2u);
  EXPECT_FALSE(sched->core().rings_ready());
}

}  // namespace
}  // namespace fikit::broker
