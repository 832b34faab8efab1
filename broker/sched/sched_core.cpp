// SchedCore: tenant set, completion tracking, grants and the SchedulerApi the policy sees. Ring
// consumption and validation are in sched_ring.cpp.
#include "sched/sched_core.h"

#include <fikit/util.h>

#include <algorithm>
#include <climits>

#include "base/log.h"

namespace fikit::broker {
namespace {

// Launches tracked per stream slot. A tenant that never synchronizes and has no markers would grow
// the queue forever: beyond this the oldest are forgotten (still "outstanding" by count of the
// newer ones, so the tenant stays busy).
constexpr size_t kMaxTrackedPerSlot = 8192;
constexpr size_t kMaxExpiredRemembered = 256;
constexpr uint64_t kHeartbeatNs = 50'000'000;  // published at least every 100 ms: refresh at 50

// Return true if completion word `done` (position + 1, 0: nothing yet) covers `position`.
bool covers(uint32_t done, uint32_t position) {
  return done != 0 && pos_at_or_after(done, position + 1);
}

// The best guess of when a launch seen complete at `seen_ns` through a GPU word completed: the
// midpoint of when it is known to have completed in, after its issue and after the last look at
// its slot that found it not done (`looked_ns`, if it was tracked by then: `tracked_ns` is the
// round that consumed it, whose look came before), never before its issue. Seen-time alone made
// kernels look up to a poll interval (50 us asleep) longer: LP durations 1.4-2.1x (POLICY.md).
uint64_t marker_done_ns(uint64_t issue_ns, uint64_t tracked_ns, uint64_t looked_ns,
                        uint64_t seen_ns) {
  uint64_t lo = issue_ns;
  if (looked_ns > tracked_ns) lo = std::max(lo, looked_ns);
  return lo >= seen_ns ? seen_ns : lo + (seen_ns - lo) / 2;
}

// PolicyConfig::log: the policy's lines go to the broker's log.
void policy_log(int level, const char* text) {
  log_msg(static_cast<LogLevel>(std::clamp(level, 0, 3)), "policy: %s", text);
}

}  // namespace

SchedCore::SchedCore(const PolicyOps* ops, const PolicyConfig& cfg) : ops_(ops), cfg_(cfg) {
  if (!cfg_.log) cfg_.log = policy_log;
  if (ops_->init) policy_state_ = ops_->init(cfg_);
}

SchedCore::~SchedCore() {
  for (auto& t : active_) {
    drain(*t);
    if (t->fault.empty()) log_policy_stats(*t);
    if (ops_->on_tenant_remove) ops_->on_tenant_remove(policy_state_, t->info);
  }
  if (ops_->exit) ops_->exit(policy_state_);
}

// One line with what the policy learned of a tenant that leaves (scripts read it from the log).
void SchedCore::log_policy_stats(const Tenant& t) const {
  if (!ops_->tenant_stats) return;
  std::string stats = ops_->tenant_stats(policy_state_, t.info.id, true);
  if (stats.empty() || stats == "{}") return;
  FIKIT_LOG_INFO("tenant %u (pid %d, \"%s\") policy stats: %s", t.info.id, t.info.pid, t.info.name,
                 stats.c_str());
}

void SchedCore::set_marker_every(uint32_t i, uint32_t n) {
  if (i >= active_.size()) return;
  // Relaxed: the client samples the word at each HP launch; a late change costs nothing.
  active_[i]->seg->broker.hp_marker_every.store(n, std::memory_order_relaxed);
}

bool SchedCore::open_burst(uint32_t i, uint32_t positions, uint64_t until_ns) {
  if (i >= active_.size()) return false;
  Tenant& t = *active_[i];
  // Granted in ring order: a burst may not pass requests that wait. A ring's worth at most.
  if (t.info.priority == kPriorityHigh || !t.waiting.empty() || positions == 0 ||
      positions > kRingEntries || until_ns == 0)
    return false;
  t.burst_start = t.head;
  t.burst_end = t.head + positions;
  t.burst_until_ns = until_ns;
  t.burst_dirty = true;
  return true;
}

void SchedCore::close_burst(uint32_t i) {
  if (i >= active_.size() || active_[i]->burst_until_ns == 0) return;
  active_[i]->burst_until_ns = 0;
  active_[i]->burst_dirty = true;
}

void SchedCore::add(std::shared_ptr<const TenantDesc> desc, uint64_t now_ns) {
  auto t = std::make_unique<Tenant>();
  t->seg = desc->seg;
  t->desc = std::move(desc);
  t->head = t->seg->ring.head.load(std::memory_order_relaxed);
  t->granted_word = t->seg->broker.granted.load(std::memory_order_relaxed);
  TenantInfo& info = t->info;
  info.id = t->desc->id;
  info.priority = t->desc->priority;
  info.pid = t->desc->pid;
  info.uid = t->desc->uid;
  info.name = t->desc->name.c_str();
  info.key_names = &t->seg->names;
  info.idle_since_ns = now_ns;
  info.has_budget = t->desc->has_budget;
  info.budget = t->desc->budget;
  t->seg->broker.heartbeat_ns.store(now_ns, std::memory_order_relaxed);
  // Release: the client that sees kActive also sees the words above.
  t->seg->broker.state.store(static_cast<uint32_t>(TenantState::kActive),
                             std::memory_order_release);
  if (ops_->on_tenant_add) ops_->on_tenant_add(policy_state_, info);
  FIKIT_LOG_INFO("tenant %u (pid %d, \"%s\", priority %s) scheduled", info.id, info.pid, info.name,
                 priority_name(info.priority));
  active_.push_back(std::move(t));
}

bool SchedCore::remove(uint32_t id) {
  for (auto* list : {&active_, &faulty_}) {
    auto it =
        std::find_if(list->begin(), list->end(), [id](const auto& t) { return t->info.id == id; });
    if (it == list->end()) continue;
    Tenant& t = **it;
    if (list == &active_) {
      drain(t);
      if (departed_.size() < kKeepDeparted) departed_.push_back(status_of(t));
      lp_in_flight_ -= t.info.lp_in_flight;
      if (t.fault.empty()) log_policy_stats(t);
      if (ops_->on_tenant_remove) ops_->on_tenant_remove(policy_state_, t.info);
      if (t.fault.empty()) release(t, TenantState::kClosed);
      // What it had outstanding or granted no longer holds anyone: the policy decides again.
      tenants_left_ = true;
    }
    list->erase(it);
    return true;
  }
  return false;
}

// A tenant that leaves (exit, closed connection) may have committed records the rounds have not
// consumed yet: they are still its launches, so the policy sees them, in order, before the tenant
// is forgotten. One consume() takes them all: the client cannot reserve beyond one lap past the
// head, and consume() publishes the head only at its end. A bad entry makes the tenant faulty, as
// in a round (its segment says kFaulty, its waiters are released).
void SchedCore::drain(Tenant& t) {
  consume(t);
  if (!t.fault.empty()) make_faulty(t);
}

uint32_t SchedCore::poll(uint64_t now_ns) {
  uint32_t events = 0;
  round_ns_ = now_ns;
  for (auto& t : active_) {
    // Completions first: a drain and the next launch seen in one round are then a gap (idle at
    // the drain, busy at the launch), not one long busy stretch (with short host gaps the policy
    // would see few of them: 68 of 590 measured).
    // A drain is seen once a round reaps it; one that covers launches still in the ring is
    // reaped only in the round after they are consumed, so it stays unseen until then (the sleep
    // check, rings_ready, keeps the scheduler awake for it).
    uint64_t syncs = t->seg->client.syncs.load(std::memory_order_acquire);
    if (!ring__ready(&t->seg->ring, t->head)) t->seen_syncs = syncs;
    events += reap_slots(*t, now_ns) + expire_grants(*t, now_ns) + expire_silent(*t, now_ns);
    events += consume(*t);
    events += note_issuing(*t, now_ns);
  }
  retire_faulty();
  if (events > 0 || tenants_left_ || (wake_at_ns_ != 0 && now_ns >= wake_at_ns_)) {
    wake_at_ns_ = 0;
    quiet_until_ns_ = 0;
    tenants_left_ = false;
    ops_->dispatch(policy_state_, *this, now_ns);
  }
  publish_grants();
  if (now_ns - last_heartbeat_ns_ >= kHeartbeatNs) heartbeat(now_ns);
  return events;
}

// An HP launch announced before its driver call (ABI 2.4) makes its tenant busy until a record
// of that time or later is consumed; untrusted, so only a time within kHpIssuingMaxNs before now
// (or kClockSlackNs after it) counts. Return 1 when that changed: the policy must look again.
uint32_t SchedCore::note_issuing(Tenant& t, uint64_t now_ns) {
  if (t.info.priority != kPriorityHigh) return 0;
  uint64_t at = t.seg->client.hp_issuing_ns.load(std::memory_order_acquire);
  t.seen_issuing = at;
  bool issuing = at > t.info.last_submit_ns && at <= now_ns + kClockSlackNs &&
                 now_ns - std::min(now_ns, at) <= kHpIssuingMaxNs;
  uint64_t was = t.info.issuing_ns;
  t.info.issuing_ns = issuing ? at : 0;
  return (was != 0) != issuing ? 1 : 0;
}

bool SchedCore::busy() const {
  if (lp_in_flight_ > 0) return true;
  // An open burst is LP work about to run: its launches ring no doorbell.
  return std::any_of(active_.begin(), active_.end(), [this](const auto& t) {
    return t->info.waiting > 0 || t->burst_until_ns > round_ns_;
  });
}

const Submission* SchedCore::request(uint32_t i, uint32_t k) const {
  const Fifo<Submission>& w = active_[i]->waiting;
  return k < w.size() ? &w[k] : nullptr;
}

bool SchedCore::grant(uint32_t i) {
  Tenant& t = *active_[i];
  if (t.waiting.empty()) return false;
  Submission r = t.waiting.front();
  t.waiting.pop_front();
  const uint64_t now = now_ns();
  // From the client's timestamp of the request: untrusted, so a time in the future counts 0.
  record_grant(t, r.position, r.kernel_key, now, now > r.t_ns ? now - r.t_ns : 0);
  // Requests leave `waiting` in ring order, so `granted` only moves forward.
  t.granted_word = r.position + 1;
  t.grant_dirty = true;
  t.info.waiting--;
  return true;
}

void SchedCore::record_grant(Tenant& t, uint32_t position, uint64_t key, uint64_t now_ns,
                             uint64_t waited_ns) {
  t.grants.push_back(Grant{position, key, now_ns});
  t.grant_latency.add(waited_ns);
  t.granted++;
  t.info.lp_in_flight++;
  lp_in_flight_++;
}

// A granted launch counts as busy too: it is about to be issued, and a level below must not be
// granted into the same instant.
bool SchedCore::busy_above(uint32_t priority) const {
  return std::any_of(active_.begin(), active_.end(), [priority](const auto& t) {
    return t->info.priority < priority &&
           (t->info.outstanding > 0 || !t->grants.empty() || t->info.issuing_ns != 0);
  });
}

void SchedCore::track(Tenant& t, uint16_t slot, const Launch& l) {
  Fifo<Launch>& q = t.slots[slot];
  if (q.size() >= kMaxTrackedPerSlot) {
    if (q.front().lp) revoke(t, q.front().position);
    q.pop_front();
    t.info.outstanding--;
  }
  if (t.info.outstanding == 0) t.progress_ns = round_ns_;
  q.push_back(l);
  q.back().seen_ns = round_ns_;
  // Keep each queue in position order: LP launches of several threads may be reported out of
  // request order, and completion words cover every position below them.
  for (size_t i = q.size() - 1; i > 0 && pos_at_or_after(q[i - 1].position, q[i].position + 1); i--)
    std::swap(q[i - 1], q[i]);
  t.busy_slots |= uint64_t{1} << slot;
  if (t.info.outstanding == 0) t.busy_since_ns = round_ns_;
  t.info.outstanding++;
  t.info.idle_since_ns = 0;
}

uint32_t SchedCore::reap_slots(Tenant& t, uint64_t now_ns) {
  uint32_t events = 0;
  for (uint64_t bits = t.busy_slots; bits != 0; bits &= bits - 1) {
    uint32_t i = static_cast<uint32_t>(__builtin_ctzll(bits));
    StreamSlot& s = t.seg->slots[i];
    // Acquire pairs with the client's release stores of the words (gpu_done: the GPU's write,
    // made visible by the driver); truncation to 32 bits keeps free-running position order.
    uint32_t gpu = static_cast<uint32_t>(s.gpu_done.load(std::memory_order_acquire));
    uint32_t host = s.host_done.load(std::memory_order_acquire);
    Fifo<Launch>& q = t.slots[i];
    // A marker is timed when it was seen: after the loads above, not at the round's start (a
    // round preempted on a busy host would time it before it was written; policies measure
    // kernel durations with it).
    uint64_t seen_ns = 0;
    const uint64_t looked = t.looked_ns[i];
    while (!q.empty()) {
      Launch l = q.front();
      bool by_gpu = covers(gpu, l.position);
      if (!by_gpu && !covers(host, l.position)) break;
      q.pop_front();
      bool exact = by_gpu && l.marker && gpu == l.position + 1;
      if (seen_ns == 0) seen_ns = std::max(now_ns, ::fikit::now_ns());
      uint64_t done = seen_ns, latest = seen_ns;
      if (by_gpu) {
        done = marker_done_ns(l.issue_ns, l.seen_ns, looked, seen_ns);
      } else {
        uint64_t host_ns = s.host_done_ns.load(std::memory_order_relaxed);
        latest = done = host_ns >= l.issue_ns && host_ns <= seen_ns ? host_ns : seen_ns;
      }
      complete(t, l, done, latest, exact);
      events++;
    }
    // What is left was not done at the loads above, which came after the round's start.
    if (q.empty())
      t.busy_slots &= ~(uint64_t{1} << i);
    else
      t.looked_ns[i] = now_ns;
  }
  return events;
}

void SchedCore::complete(Tenant& t, const Launch& l, uint64_t done_ns, uint64_t latest_ns,
                         bool exact) {
  t.info.outstanding--;
  t.progress_ns = round_ns_;
  if (round_ns_ > l.seen_ns) t.longest_ns = std::max(t.longest_ns, round_ns_ - l.seen_ns);
  if (l.lp) lp_done(t);
  if (ops_->on_complete)
    ops_->on_complete(policy_state_, t.info,
                      Completion{.position = l.position,
                                 .kernel_key = l.key,
                                 .issue_ns = l.issue_ns,
                                 .done_ns = done_ns,
                                 .exact = exact,
                                 .latest_ns = latest_ns});
  if (t.info.outstanding == 0) {
    if (done_ns > t.busy_since_ns) t.busy_ns += done_ns - t.busy_since_ns;
    t.info.idle_since_ns = done_ns;
    if (ops_->on_idle) ops_->on_idle(policy_state_, t.info, done_ns);
  }
}

void SchedCore::lp_done(Tenant& t) {
  t.info.lp_in_flight--;
  lp_in_flight_--;
}

// An LP grant in flight ends without a completion: the policy forgets it.
void SchedCore::revoke(Tenant& t, uint32_t position) {
  lp_done(t);
  if (ops_->on_revoke) ops_->on_revoke(policy_state_, t.info, position);
}

uint32_t SchedCore::expire_grants(Tenant& t, uint64_t now_ns) {
  uint32_t events = 0;
  while (cfg_.grant_timeout_ns != 0 && !t.grants.empty() && now_ns > t.grants.front().granted_ns &&
         now_ns - t.grants.front().granted_ns > cfg_.grant_timeout_ns) {
    uint32_t position = t.grants.front().position;
    FIKIT_LOG_WARN(
        "tenant %u (pid %d): grant of request %u not launched within %llu us: taken back",
        t.info.id, t.info.pid, position,
        static_cast<unsigned long long>(cfg_.grant_timeout_ns / 1000));
    t.expired.push_back(position);
    if (t.expired.size() > kMaxExpiredRemembered) t.expired.pop_front();
    t.grants.pop_front();
    t.expired_count++;
    revoke(t, position);
    events++;
  }
  return events;
}

// A tenant whose outstanding launches have not moved for longer than any launch of it took (it
// died mid-launch without its reaper noticing yet, stopped synchronizing, lost its markers) is
// taken as drained: its launches complete now, not exactly. Its next launches count again.
uint32_t SchedCore::expire_silent(Tenant& t, uint64_t now_ns) {
  uint64_t limit = std::min(t.longest_ns, kSilentLongestMaxNs) + kSilentMarginNs;
  if (t.info.outstanding == 0 || now_ns <= t.progress_ns + limit) return 0;
  FIKIT_LOG_WARN(
      "tenant %u (pid %d, \"%s\"): %u launches outstanding without progress for %llu ms: taken as "
      "drained",
      t.info.id, t.info.pid, t.info.name, t.info.outstanding,
      static_cast<unsigned long long>((now_ns - t.progress_ns) / 1'000'000));
  uint32_t events = 0;
  uint64_t longest = t.longest_ns;  // these launches' time is not a launch's length
  for (uint64_t bits = t.busy_slots; bits != 0; bits &= bits - 1) {
    Fifo<Launch>& q = t.slots[static_cast<uint32_t>(__builtin_ctzll(bits))];
    for (; !q.empty(); events++) {
      Launch l = q.front();
      q.pop_front();
      complete(t, l, now_ns, now_ns, false);
    }
  }
  t.busy_slots = 0;
  t.longest_ns = longest;
  return events;
}

void SchedCore::publish_grants() {
  bool any = false;
  for (auto& t : active_) {
    if (t->burst_dirty) {
      t->burst_dirty = false;
      BrokerWords& b = t->seg->broker;
      // Release pairs with the client's acquire load of burst_until_ns: burst_end first.
      b.burst_end.store(t->burst_end, std::memory_order_relaxed);
      b.burst_until_ns.store(t->burst_until_ns, std::memory_order_release);
    }
    if (!t->grant_dirty) continue;
    // Release pairs with the client's acquire load of granted: nothing else is published with it,
    // but it keeps the word's updates ordered after our reads of the ring.
    t->seg->broker.granted.store(t->granted_word, std::memory_order_release);
    any = true;
  }
  if (!any) return;
  // Full fence between the stores of `granted` and the loads of `waiters`: pairs with the client's
  // fence between incrementing waiters and re-reading granted, so either it sees the new grant or
  // we see it waiting (no lost wake-up).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  for (auto& t : active_) {
    if (!t->grant_dirty) continue;
    t->grant_dirty = false;
    if (t->seg->broker.waiters.load(std::memory_order_relaxed) != 0)
      futex_wake(&t->seg->broker.granted, INT_MAX);
  }
}

void SchedCore::heartbeat(uint64_t now_ns) {
  last_heartbeat_ns_ = now_ns;
  for (auto* list : {&active_, &faulty_})
    for (auto& t : *list) t->seg->broker.heartbeat_ns.store(now_ns, std::memory_order_relaxed);
}

// Mark t faulty in its segment and let every waiting client thread go (it fails open).
void SchedCore::make_faulty(Tenant& t) {
  FIKIT_LOG_WARN("tenant %u (pid %d, \"%s\") is faulty: %s; its launches now bypass the broker",
                 t.info.id, t.info.pid, t.info.name, t.fault.c_str());
  release(t, TenantState::kFaulty);
}

// Let every waiting request go, publish `state` and wake every waiter (its client fails open).
void SchedCore::release(Tenant& t, TenantState state) {
  if (!t.waiting.empty()) t.granted_word = t.waiting.back().position + 1;
  t.waiting.clear();
  t.info.waiting = 0;
  Segment* seg = t.seg;
  seg->broker.granted.store(t.granted_word, std::memory_order_release);
  seg->broker.state.store(static_cast<uint32_t>(state), std::memory_order_release);
  // Full fence: pairs with the client's fence before it sleeps (see publish_grants).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  futex_wake(&seg->broker.granted, INT_MAX);
}

// Move tenants that became faulty this round out of scheduling (kept for status until reaped).
void SchedCore::retire_faulty() {
  for (size_t i = 0; i < active_.size();) {
    Tenant& t = *active_[i];
    if (t.fault.empty()) {
      i++;
      continue;
    }
    make_faulty(t);
    lp_in_flight_ -= t.info.lp_in_flight;
    if (ops_->on_tenant_remove) ops_->on_tenant_remove(policy_state_, t.info);
    tenants_left_ = true;
    faulty_.push_back(std::move(active_[i]));
    active_.erase(active_.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

void SchedCore::set_sleeping(bool sleeping) {
  for (auto& t : active_)
    t->seg->broker.broker_sleeping.store(sleeping ? 1 : 0, std::memory_order_relaxed);
}

size_t SchedCore::doorbells(struct futex_waitv* out, size_t max) const {
  size_t n = 0;
  for (const auto& t : active_) {
    if (n == max) break;
    std::atomic<uint32_t>* word = &t->seg->broker.doorbell;
    out[n].val = word->load(std::memory_order_relaxed);
    out[n].uaddr = reinterpret_cast<uintptr_t>(word);
    out[n].flags = FUTEX_32;
    out[n].__reserved = 0;
    n++;
  }
  return n;
}

bool SchedCore::rings_ready() const {
  return std::any_of(active_.begin(), active_.end(), [](const auto& t) {
    return ring__ready(&t->seg->ring, t->head) ||
           t->seg->client.syncs.load(std::memory_order_acquire) != t->seen_syncs ||
           (t->info.priority == kPriorityHigh &&
            t->seg->client.hp_issuing_ns.load(std::memory_order_acquire) != t->seen_issuing);
  });
}

TenantStatus SchedCore::status_of(const Tenant& t) const {
  TenantStatus s;
  const TenantDesc& d = *t.desc;
  s.id = d.id;
  s.gpu = d.gpu;
  s.pid = d.pid;
  s.uid = d.uid;
  s.priority = d.priority;
  s.name = d.name;
  s.admitted_ns = d.admitted_ns;
  s.state = t.fault.empty() ? TenantState::kActive : TenantState::kFaulty;
  s.fault = t.fault;
  s.launches = t.launches;
  s.granted = t.granted;
  s.burst_granted = t.burst_granted;
  s.expired = t.expired_count;
  s.passed_through = t.seg->client.passed_through.load(std::memory_order_relaxed);
  s.dropped = t.seg->client.dropped.load(std::memory_order_relaxed);
  s.lp_waiting = static_cast<uint32_t>(t.waiting.size());
  s.lp_in_flight = t.info.lp_in_flight;
  s.outstanding = t.info.outstanding;
  s.kube = d.kube;
  s.busy_ns = t.busy_ns;
  if (t.info.outstanding > 0) {
    const uint64_t now = ::fikit::now_ns();
    if (now > t.busy_since_ns) s.busy_ns += now - t.busy_since_ns;
  }
  s.grant_latency = t.grant_latency;
  if (ops_->tenant_stats && t.fault.empty()) {
    s.policy_json = ops_->tenant_stats(policy_state_, t.info.id, true);
    s.policy_text = ops_->tenant_stats(policy_state_, t.info.id, false);
  }
  return s;
}

std::vector<TenantStatus> SchedCore::status() const {
  std::vector<TenantStatus> out;
  for (const auto* list : {&active_, &faulty_})
    for (const auto& t : *list) out.push_back(status_of(*t));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return out;
}

}  // namespace fikit::broker
