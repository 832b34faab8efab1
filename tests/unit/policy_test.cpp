// Policies `none` and `priority` against a fake SchedulerApi, and the policy registry.
#include "policy/policy.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace fikit::broker {
namespace {

// Tenants with a waiting count and an outstanding count; grant() records who was granted.
class t_FakeScheduler : public SchedulerApi {
 public:
  std::vector<TenantInfo> tenants;
  std::vector<uint32_t> granted;  // tenant index per grant, in order

  void add(uint32_t priority, uint32_t waiting, uint32_t outstanding) {
    TenantInfo t{};
    t.id = static_cast<uint32_t>(tenants.size()) + 1;
    t.priority = priority;
    t.waiting = waiting;
    t.outstanding = outstanding;
    t.name = "t";
    tenants.push_back(t);
  }
  uint32_t tenant_count() const override { return static_cast<uint32_t>(tenants.size()); }
  TenantInfo& tenant(uint32_t i) override { return tenants[i]; }
  // Requests exist only as a count here: each is made up when asked for.
  const Submission* request(uint32_t i, uint32_t k) const override {
    if (k >= tenants[i].waiting) return nullptr;
    request_ = Submission{.position = k, .kernel_key = 0, .t_ns = 0, .stream_slot = 0, .flags = 0};
    return &request_;
  }
  bool grant(uint32_t i) override {
    if (tenants[i].waiting == 0) return false;
    tenants[i].waiting--;
    tenants[i].lp_in_flight++;
    granted.push_back(i);
    return true;
  }
  uint32_t lp_in_flight() const override {
    uint32_t n = 0;
    for (const auto& t : tenants) n += t.lp_in_flight;
    return n;
  }
  bool busy_above(uint32_t priority) const override {
    for (const auto& t : tenants)
      if (t.priority < priority && t.outstanding > 0) return true;
    return false;
  }
  void wake_at(uint64_t) override {}

 private:
  mutable Submission request_{};
};

// Run one dispatch of `ops` (with its own state) on `sched`.
void t_dispatch(const char* policy, t_FakeScheduler& sched) {
  const PolicyOps* ops = policy_find(policy);
  ASSERT_NE(ops, nullptr) << policy;
  void* state = ops->init ? ops->init(PolicyConfig{}) : nullptr;
  for (auto& t : sched.tenants)
    if (ops->on_tenant_add) ops->on_tenant_add(state, t);
  ops->dispatch(state, sched, 1000);
  for (auto& t : sched.tenants)
    if (ops->on_tenant_remove) ops->on_tenant_remove(state, t);
  if (ops->exit) ops->exit(state);
}

TEST(PolicyRegistry, ListsFikitFirstAndFindsByName) {
  const PolicyOps* const* list = policy_list();
  ASSERT_NE(list[0], nullptr);
  EXPECT_STREQ(list[0]->name, "fikit");  // the default (issue 3)
  EXPECT_NE(policy_find("oracle"), nullptr);
  EXPECT_EQ(policy_find(list[0]->name), list[0]);
  EXPECT_NE(policy_find("priority"), nullptr);
  EXPECT_NE(policy_find("none"), nullptr);
  EXPECT_EQ(policy_find("no-such-policy"), nullptr);
  EXPECT_EQ(policy_find(nullptr), nullptr);
  for (const PolicyOps* const* p = list; *p; p++) {
    EXPECT_NE((*p)->dispatch, nullptr) << (*p)->name;
    EXPECT_GT(strlen((*p)->description), 0u) << (*p)->name;
  }
}

TEST(PolicyNone, GrantsEverythingEvenWhenHpIsBusy) {
  t_FakeScheduler s;
  s.add(0, 0, 5);  // busy HP
  s.add(2, 3, 0);
  s.add(1, 1, 0);
  t_dispatch("none", s);
  EXPECT_EQ(s.granted, (std::vector<uint32_t>{1, 1, 1, 2}));
  EXPECT_EQ(s.tenants[1].waiting, 0u);
  EXPECT_EQ(s.tenants[2].waiting, 0u);
}

TEST(PolicyPriority, HoldsLpWhileHpHasOutstandingLaunches) {
  t_FakeScheduler s;
  s.add(0, 0, 1);
  s.add(2, 2, 0);
  t_dispatch("priority", s);
  EXPECT_TRUE(s.granted.empty());
  EXPECT_EQ(s.tenants[1].waiting, 2u);
}

TEST(PolicyPriority, GrantsAllOnceHpDrained) {
  t_FakeScheduler s;
  s.add(0, 0, 0);
  s.add(2, 2, 0);
  t_dispatch("priority", s);
  EXPECT_EQ(s.granted, (std::vector<uint32_t>{1, 1}));
}

TEST(PolicyPriority, EachLevelFillsOnlyBelowBusyLevels) {
  t_FakeScheduler s;
  s.add(0, 0, 0);  // HP idle
  s.add(1, 1, 3);  // normal: busy, and waiting itself
  s.add(2, 1, 0);  // low: must wait for normal
  t_dispatch("priority", s);
  EXPECT_EQ(s.granted, (std::vector<uint32_t>{1}));
  EXPECT_EQ(s.tenants[2].waiting, 1u);
}

TEST(PolicyPriority, SameLevelDoesNotBlockItself) {
  t_FakeScheduler s;
  s.add(2, 1, 4);
  s.add(2, 1, 0);
  t_dispatch("priority", s);
  EXPECT_EQ(s.granted, (std::vector<uint32_t>{0, 1}));
}

}  // namespace
}  // namespace fikit::broker
