// SchedCore: consuming a tenant's submission ring. Every entry is copied out of shared memory
// (ring__peek), checked for shape (entry__check) and then for sequence: who may send which kind,
// and that kLpLaunched/kLpAbort name a granted request of this tenant not yet launched. The first
// bad entry makes the tenant faulty; nothing a tenant writes can crash the broker.
#include <cstdio>

#include "sched/sched_core.h"

namespace fikit::broker {
namespace {

Submission submission_of(const EntryCopy& e) {
  return Submission{.position = e.position,
                    .kernel_key = e.kernel_key,
                    .t_ns = e.t_ns,
                    .stream_slot = e.stream_slot,
                    .flags = e.flags};
}

std::string fault_text(uint32_t position, const char* why) {
  char buf[160];
  snprintf(buf, sizeof(buf), "ring position %u: %s", position, why);
  return buf;
}

}  // namespace

uint32_t SchedCore::consume(Tenant& t) {
  uint32_t n = 0;
  EntryCopy e;
  // At most one lap per round, so that one busy tenant cannot starve the others.
  while (n < kRingEntries) {
    PeekResult r = ring__peek(&t.seg->ring, t.head, &e);
    if (r == PeekResult::kEmpty) break;
    const char* why = r == PeekResult::kCorrupt ? "corrupt commit word" : entry__check(e);
    if (!why) why = handle_entry(t, e);
    if (why) {
      t.fault = fault_text(t.head, why);
      break;
    }
    t.head++;
    n++;
  }
  if (n > 0) ring__consume(&t.seg->ring, t.head);
  return n;
}

// Apply one well-formed entry. Return why it breaks the protocol, or nullptr.
const char* SchedCore::handle_entry(Tenant& t, const EntryCopy& e) {
  bool hp = t.info.priority == kPriorityHigh;
  switch (static_cast<EntryKind>(e.kind)) {
    case EntryKind::kHpLaunch:
      if (!hp) return "kHpLaunch from a tenant below the highest priority";
      track(t, e.stream_slot,
            Launch{.position = e.position,
                   .marker = (e.flags & kFlagMarker) != 0,
                   .lp = false,
                   .key = e.kernel_key,
                   .issue_ns = e.t_ns,
                   .seen_ns = 0});
      t.info.last_key = e.kernel_key;
      if (meter_) meter_->on_hp_record(t.info.id, e.stream_slot, e.position, e.t_ns);
      submit(t, e);
      return nullptr;
    case EntryKind::kLpRequest:
      if (hp) return "kLpRequest from a tenant of the highest priority (it never waits)";
      // A client thread waits on its request until it is launched: more than a ring's worth
      // waiting or granted is a flood, which must not grow the broker.
      if (t.waiting.size() + t.grants.size() >= kMaxQueuedRequests)
        return "too many LP requests waiting or granted and not launched (flooding its ring)";
      if (e.flags & kFlagBurst) return burst_grant(t, e);
      t.waiting.push_back(submission_of(e));
      t.info.waiting++;
      submit(t, e);
      return nullptr;
    case EntryKind::kLpLaunched:
    case EntryKind::kLpAbort:
      if (hp) return "kLpLaunched/kLpAbort from a tenant of the highest priority";
      return handle_lp_end(t, e);
    case EntryKind::kHintIdle:
      // kernel_key carries the idle time; policies without the op ignore hints.
      if (ops_->on_hint_idle) ops_->on_hint_idle(policy_state_, t.info, e.kernel_key, e.t_ns);
      return nullptr;
  }
  return "unknown entry kind";
}

// kLpLaunched / kLpAbort: `ref` must be a granted request not yet launched (or one whose grant
// expired: the client was slow, not wrong).
const char* SchedCore::handle_lp_end(Tenant& t, const EntryCopy& e) {
  bool launched = static_cast<EntryKind>(e.kind) == EntryKind::kLpLaunched;
  bool counted = false;
  uint64_t key = e.kernel_key;
  size_t i = 0;
  for (; i < t.grants.size(); i++)
    if (t.grants[i].position == e.ref) break;
  if (i < t.grants.size()) {
    key = t.grants[i].key;
    t.grants.erase_at(i);
    counted = true;
  } else {
    size_t j = 0;
    while (j < t.expired.size() && t.expired[j] != e.ref) j++;
    if (j == t.expired.size()) return "ref names no granted, unlaunched request";
    t.expired.erase_at(j);
  }
  if (!launched) {
    if (counted) revoke(t, e.ref);
    return nullptr;
  }
  t.info.last_key = key;
  // An LP launch is known by its request's position: its marker and the client's drains write
  // ref + 1.
  if (e.flags & kFlagMarker) {
    track(t, e.stream_slot,
          Launch{.position = e.ref,
                 .marker = true,
                 .lp = counted,
                 .key = key,
                 .issue_ns = e.t_ns,
                 .seen_ns = 0});
    return nullptr;
  }
  // No marker: nothing will say when it ends, so it counts as complete once issued.
  if (counted) lp_done(t);
  if (ops_->on_complete)
    ops_->on_complete(policy_state_, t.info,
                      Completion{.position = e.ref,
                                 .kernel_key = key,
                                 .issue_ns = e.t_ns,
                                 .done_ns = e.t_ns,
                                 .exact = false});
  return nullptr;
}

// A request the client launched at once inside t's burst: it must lie in the burst's positions
// (a client cannot grant itself more); it is granted now, as the policy's burst said.
const char* SchedCore::burst_grant(Tenant& t, const EntryCopy& e) {
  if (e.position - t.burst_start >= t.burst_end - t.burst_start)
    return "kFlagBurst on a request outside the broker's burst";
  submit(t, e);
  record_grant(t, e.position, e.kernel_key, round_ns_, 0);  // it did not wait
  t.burst_granted++;
  if (ops_->on_burst_grant) ops_->on_burst_grant(policy_state_, t.info, submission_of(e));
  return nullptr;
}

// Count an HP record or LP request and tell the policy.
void SchedCore::submit(Tenant& t, const EntryCopy& e) {
  t.launches++;
  t.info.last_submit_ns = e.t_ns;
  // Read after the entry (acquired): a sync the client made before this launch is counted.
  t.info.host_syncs = t.seg->client.syncs.load(std::memory_order_relaxed);
  if (ops_->on_submit) ops_->on_submit(policy_state_, t.info, submission_of(e));
}

}  // namespace fikit::broker
