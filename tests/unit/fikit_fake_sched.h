// A fake scheduler for fikit policy tests: fake tenants, the scheduler's bookkeeping (waiting
// requests, which the policy reads through SchedulerApi::request, grants, outstanding launches,
// LP in flight, idle times) and helpers that feed the policy the events the real scheduler would,
// on a synthetic clock.
#pragma once

#include <fikit/abi.h>
#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "policy/fikit/fikit.h"
#include "policy/policy.h"

namespace fikit::broker {

struct t_Launch {
  uint32_t position;
  uint64_t key;
  uint64_t t_ns;
};

struct t_Tenant {
  TenantInfo info{};
  std::string name;
  uint32_t next_pos = 0;
  std::deque<Submission> waiting;  // LP requests not granted, as SchedulerApi::request shows them
  std::deque<t_Launch> granted;    // LP granted, not complete
  std::deque<t_Launch> running;    // HP launches outstanding
  uint32_t burst_end = 0;          // its burst (open_burst), once enable_bursts()
  uint64_t burst_until = 0;        // 0: closed
  uint32_t bursts = 0;             // open_burst calls that opened one
};

class t_FakeSched : public SchedulerApi {
 public:
  explicit t_FakeSched(PolicyConfig cfg = {}, const PolicyOps* ops = &kFikitPolicy)
      : ops_(ops), state_(ops->init(cfg)) {}
  ~t_FakeSched() override {
    for (auto& t : tenants_) ops_->on_tenant_remove(state_, t->info);
    ops_->exit(state_);
  }

  // SchedulerApi.
  uint32_t tenant_count() const override { return static_cast<uint32_t>(tenants_.size()); }
  TenantInfo& tenant(uint32_t i) override { return tenants_[i]->info; }
  const Submission* request(uint32_t i, uint32_t k) const override {
    const std::deque<Submission>& w = tenants_[i]->waiting;
    return k < w.size() ? &w[k] : nullptr;
  }
  bool grant(uint32_t i) override {
    t_Tenant& t = *tenants_[i];
    if (t.waiting.empty()) return false;
    const Submission& r = t.waiting.front();
    t.granted.push_back(t_Launch{r.position, r.kernel_key, r.t_ns});
    t.waiting.pop_front();
    grants_.push_back(i);
    sync(t);
    return true;
  }
  uint32_t lp_in_flight() const override {
    uint32_t n = 0;
    for (auto& t : tenants_) n += static_cast<uint32_t>(t->granted.size());
    return n;
  }
  bool busy_above(uint32_t priority) const override {
    for (auto& t : tenants_)
      if (t->info.priority < priority && t->info.outstanding) return true;
    return false;
  }
  void wake_at(uint64_t t_ns) override { wake_ = t_ns; }
  void quiet_until(uint64_t t_ns) override { quiet_ = t_ns; }
  void set_marker_every(uint32_t i, uint32_t n) override {
    markers_.push_back({tenants_[i]->info.id, n});
  }
  bool open_burst(uint32_t i, uint32_t positions, uint64_t until_ns) override {
    t_Tenant& t = *tenants_[i];
    if (!bursts_ || t.info.priority == kPriorityHigh || !t.waiting.empty()) return false;
    t.burst_end = t.next_pos + positions;
    t.burst_until = until_ns;
    t.bursts++;
    return true;
  }
  void close_burst(uint32_t i) override { tenants_[i]->burst_until = 0; }

  // Test side.
  uint32_t add(const char* name, uint32_t priority) {
    auto t = std::make_unique<t_Tenant>();
    t->name = name;
    t->info.id = next_id_++;
    t->info.priority = priority;
    t->info.pid = 1000 + static_cast<int32_t>(t->info.id);
    t->info.name = t->name.c_str();
    tenants_.push_back(std::move(t));
    ops_->on_tenant_add(state_, tenants_.back()->info);
    return tenant_count() - 1;
  }
  void remove(uint32_t i) {
    ops_->on_tenant_remove(state_, tenants_[i]->info);
    tenants_.erase(tenants_.begin() + i);
  }
  t_Tenant& t(uint32_t i) { return *tenants_[i]; }
  void* state() { return state_; }
  uint64_t wake() const { return wake_; }
  uint64_t quiet() const { return quiet_; }
  // set_marker_every calls so far: (tenant id, 1 in n).
  const std::vector<std::pair<uint32_t, uint32_t>>& markers() const { return markers_; }

  // An HP launch issued at t_ns; returns its position.
  uint32_t hp_launch(uint32_t i, uint64_t key, uint64_t t_ns) {
    t_Tenant& t = *tenants_[i];
    t_Launch l{t.next_pos++, key, t_ns};
    t.running.push_back(l);
    t.info.last_key = key;
    t.info.last_submit_ns = t_ns;
    sync(t);
    ops_->on_submit(state_, t.info, Submission{l.position, key, t_ns, 0, 0});
    return l.position;
  }
  // The oldest HP launch of i completes at done_ns (exact: through its own marker).
  void hp_complete(uint32_t i, uint64_t done_ns, bool exact = true) {
    t_Tenant& t = *tenants_[i];
    ASSERT_FALSE(t.running.empty());
    t_Launch l = t.running.front();
    t.running.pop_front();
    sync(t);
    ops_->on_complete(state_, t.info, Completion{l.position, l.key, l.t_ns, done_ns, exact});
    maybe_idle(t, done_ns);
  }
  // A LP request made at t_ns.
  void lp_request(uint32_t i, uint64_t key, uint64_t t_ns) {
    t_Tenant& t = *tenants_[i];
    Submission r{
        .position = t.next_pos, .kernel_key = key, .t_ns = t_ns, .stream_slot = 0, .flags = 0};
    t.next_pos += 2;  // the request, then its kLpLaunched entry
    t.waiting.push_back(r);
    t.info.last_submit_ns = t_ns;
    sync(t);
    ops_->on_submit(state_, t.info, r);
  }
  // Let the policy open LP bursts (the default, like a scheduler without them, refuses).
  void enable_bursts() { bursts_ = true; }
  // A LP launch of `key` at t_ns inside i's burst, as a 2.3 client makes it and the scheduler
  // grants it when consumed; false (nothing happens) if the burst does not cover it.
  bool lp_burst_launch(uint32_t i, uint64_t key, uint64_t t_ns) {
    t_Tenant& t = *tenants_[i];
    if (t.burst_until == 0 || t_ns >= t.burst_until ||
        !pos_at_or_after(t.burst_end, t.next_pos + 1))
      return false;
    Submission r{.position = t.next_pos,
                 .kernel_key = key,
                 .t_ns = t_ns,
                 .stream_slot = 0,
                 .flags = kFlagBurst};
    t.next_pos += 2;
    t.granted.push_back(t_Launch{r.position, key, t_ns});
    t.info.last_submit_ns = t_ns;
    sync(t);
    ops_->on_submit(state_, t.info, r);
    ops_->on_burst_grant(state_, t.info, r);
    return true;
  }
  // The oldest granted LP launch of i, launched at issue_ns, completes at done_ns.
  void lp_complete(uint32_t i, uint64_t issue_ns, uint64_t done_ns) {
    t_Tenant& t = *tenants_[i];
    ASSERT_FALSE(t.granted.empty());
    t_Launch l = t.granted.front();
    t.granted.pop_front();
    t.info.last_key = l.key;
    sync(t);
    // Like the scheduler: a LP launch is named by its request's position.
    ops_->on_complete(state_, t.info, Completion{l.position, l.key, issue_ns, done_ns, true});
    maybe_idle(t, done_ns);
  }
  // The scheduler takes back i's oldest grant, never launched (after grant_timeout_ns); return
  // its request's position.
  uint32_t revoke(uint32_t i) {
    t_Tenant& t = *tenants_[i];
    EXPECT_FALSE(t.granted.empty());
    if (t.granted.empty()) return 0;
    t_Launch l = t.granted.front();
    t.granted.pop_front();
    sync(t);
    if (ops_->on_revoke) ops_->on_revoke(state_, t.info, l.position);
    return l.position;
  }
  // Run dispatch at now_ns; return the tenant indexes granted, in order.
  std::vector<uint32_t> dispatch(uint64_t now_ns) {
    grants_.clear();
    ops_->dispatch(state_, *this, now_ns);
    return grants_;
  }

 private:
  void sync(t_Tenant& t) {
    t.info.outstanding = static_cast<uint32_t>(t.running.size() + t.granted.size());
    t.info.waiting = static_cast<uint32_t>(t.waiting.size());
    t.info.lp_in_flight = static_cast<uint32_t>(t.granted.size());
    if (t.info.outstanding) t.info.idle_since_ns = 0;
  }
  void maybe_idle(t_Tenant& t, uint64_t t_ns) {
    if (t.info.outstanding) return;
    t.info.idle_since_ns = t_ns;
    ops_->on_idle(state_, t.info, t_ns);
  }

  const PolicyOps* ops_;
  void* state_;
  std::vector<std::unique_ptr<t_Tenant>> tenants_;
  std::vector<uint32_t> grants_;
  uint32_t next_id_ = 1;
  bool bursts_ = false;
  uint64_t wake_ = 0;
  uint64_t quiet_ = 0;
  std::vector<std::pair<uint32_t, uint32_t>> markers_;
};

}  // namespace fikit::broker
