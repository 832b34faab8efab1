// What the broker wires into the fikit policy: the ops table's optional members (tenant_stats,
// on_hint_idle), --policy-opts, logging through PolicyConfig::log, HP marker sampling, and
// duration samples of launches that queued behind an unmeasured one.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fikit_fake_sched.h"
#include "policy/fikit/markers.h"
#include "policy/fikit/params.h"
#include "policy/fikit/policy_state.h"
#include "policy/policy.h"

namespace fikit::broker {
namespace {

namespace fp = fikit_policy;

constexpr uint64_t kUs = 1000, kMs = 1000000;
constexpr uint64_t kNow = 1000000000;
constexpr uint64_t kKeyHp = 0x1111;

fp::FikitState& t_state(t_FakeSched& s) { return *static_cast<fp::FikitState*>(s.state()); }
fp::TenantData& t_data(t_FakeSched& s, uint32_t i) {
  return *static_cast<fp::TenantData*>(s.t(i).info.policy_data);
}

std::vector<std::string> g_log;
void t_log(int level, const char* text) { g_log.push_back(std::to_string(level) + " " + text); }

TEST(FikitWiring, OpsTablesSetTheOptionalMembers) {
  EXPECT_NE(kFikitPolicy.tenant_stats, nullptr);
  EXPECT_EQ(kFikitPolicy.on_hint_idle, nullptr) << "fikit predicts; hints are the oracle's";
  EXPECT_NE(kOraclePolicy.on_hint_idle, nullptr);
  EXPECT_NE(kOraclePolicy.tenant_stats, nullptr);
}

TEST(FikitWiring, TenantStatsOpGivesJsonAndText) {
  t_FakeSched s;
  uint32_t hp = s.add("serve", kPriorityHigh);
  s.hp_launch(hp, kKeyHp, kNow);
  s.hp_complete(hp, kNow + 100 * kUs);
  uint32_t id = s.t(hp).info.id;
  auto j = nlohmann::json::parse(kFikitPolicy.tenant_stats(s.state(), id, true));
  EXPECT_EQ(j.value("tenant", ""), "serve");
  EXPECT_EQ(j.value("kernels", 0), 1);
  EXPECT_EQ(j.value("keys", 0), 1);
  std::string text = kFikitPolicy.tenant_stats(s.state(), id, false);
  EXPECT_NE(text.find("kernels 1"), std::string::npos) << text;
  EXPECT_EQ(kFikitPolicy.tenant_stats(s.state(), 999, true), "{}");
  EXPECT_EQ(kFikitPolicy.tenant_stats(s.state(), 999, false), "");
}

TEST(FikitWiring, OracleTakesHintsThroughItsOp) {
  t_FakeSched s({}, &kOraclePolicy);
  uint32_t hp = s.add("serve", kPriorityHigh);
  kOraclePolicy.on_hint_idle(s.state(), s.t(hp).info, 500 * kUs, kNow);
  EXPECT_EQ(t_data(s, hp).hint_end_ns, kNow + 500 * kUs);
}

TEST(FikitWiring, PolicyOptsOverrideTheEnvironment) {
  setenv("FIKIT_POLICY_OPTS", "gap_quantile=0.2,measure_gap_us=700", 1);
  PolicyConfig cfg;
  cfg.opts = "gap_quantile=0.05,hp_marker_every=16";
  fp::FikitParams p = fp::params_for(cfg);
  unsetenv("FIKIT_POLICY_OPTS");
  EXPECT_DOUBLE_EQ(p.gap_quantile, 0.05);
  EXPECT_EQ(p.measure_gap_ns, 700 * kUs);
  EXPECT_EQ(p.hp_marker_every, 16u);
  std::string err;
  EXPECT_TRUE(fikit_policy_opts_check("switch_gap_factor=4,inactive_ms=50", &err)) << err;
  EXPECT_FALSE(fikit_policy_opts_check("inactive=50", &err)) << "a duration needs a unit";
  EXPECT_NE(err.find("inactive"), std::string::npos) << err;
}

TEST(FikitWiring, BadOptsAreLoggedThroughTheBrokerLog) {
  g_log.clear();
  PolicyConfig cfg;
  cfg.opts = "no_such_option=1";
  cfg.log = t_log;
  fp::FikitParams p = fp::params_for(cfg);
  EXPECT_DOUBLE_EQ(p.gap_quantile, fp::FikitParams{}.gap_quantile);
  ASSERT_EQ(g_log.size(), 1u);
  EXPECT_EQ(g_log[0].rfind("2 ignoring --policy-opts", 0), 0u) << g_log[0];
}

TEST(FikitWiring, MarkerShareFollowsWhatIsKnown) {
  fp::FikitParams p;
  fp::TenantData td(1, "serve", kPriorityHigh, p);
  EXPECT_EQ(fp::marker_every_for(td, p, kNow), p.hp_marker_every);
  td.unmeasured_ns = kNow;  // launched a key with too few measured durations
  EXPECT_EQ(fp::marker_every_for(td, p, kNow + 1 * kMs), p.hp_marker_learn_every);
  EXPECT_EQ(fp::marker_every_for(td, p, kNow + p.inactive_ns), p.hp_marker_every);
  td.submits_since_idle = p.hp_nosync_submits;  // never drains: a marker after every launch
  EXPECT_EQ(fp::marker_every_for(td, p, kNow + p.inactive_ns), 1u);
  p.hp_marker_every = 0;
  EXPECT_EQ(fp::marker_every_for(td, p, kNow), 0u);
}

TEST(FikitWiring, DispatchSetsHpMarkerSharesOnChangeOnly) {
  t_FakeSched s;
  uint32_t hp = s.add("serve", kPriorityHigh);
  uint32_t lp = s.add("train", kPriorityLow);
  uint32_t hp_id = s.t(hp).info.id;
  const fp::FikitParams& p = t_state(s).params;
  s.hp_launch(hp, kKeyHp, kNow);  // a new key: learn its duration
  s.dispatch(kNow + 1 * kUs);
  s.dispatch(kNow + 2 * kUs);
  ASSERT_EQ(s.markers().size(), 1u) << "set once, not on every dispatch";
  EXPECT_EQ(s.markers()[0], std::make_pair(hp_id, p.hp_marker_learn_every));
  s.hp_complete(hp, kNow + 100 * kUs);
  s.dispatch(kNow + p.inactive_ns + 1 * kMs);  // long after: sparse again
  ASSERT_EQ(s.markers().size(), 2u);
  EXPECT_EQ(s.markers()[1], std::make_pair(hp_id, p.hp_marker_every));
  for (auto& [id, n] : s.markers()) EXPECT_NE(id, s.t(lp).info.id) << "LP launches all have one";
}

TEST(FikitWiring, HpThatNeverDrainsGetsAMarkerOnEveryLaunch) {
  t_FakeSched s;
  uint32_t hp = s.add("serve", kPriorityHigh);
  const fp::FikitParams& p = t_state(s).params;
  for (uint32_t i = 0; i < p.hp_nosync_submits; i++) s.hp_launch(hp, kKeyHp, kNow + i * kUs);
  s.dispatch(kNow + 1 * kMs);
  ASSERT_FALSE(s.markers().empty());
  EXPECT_EQ(s.markers().back().second, 1u);
}

// `launches` HP launches, all complete, then a synchronizing call (seen at the next launch).
uint64_t t_request_then_sync(t_FakeSched& s, uint32_t hp, uint32_t launches, uint64_t t_ns) {
  for (uint32_t i = 0; i < launches; i++) s.hp_launch(hp, kKeyHp, t_ns + i * kUs);
  for (uint32_t i = 0; i < launches; i++) s.hp_complete(hp, t_ns + (launches + i) * kUs, false);
  s.t(hp).info.host_syncs++;
  return t_ns + 3 * launches * kUs;
}

// Eager ResNet-50 makes 342 launches per request, then synchronizes: markers on its last 86
// would only repeat what its sync says.
TEST(FikitWiring, HpThatSynchronizesGetsMarkersOnEveryLaunchOnlyPastTwiceItsRuns) {
  t_FakeSched s;
  uint32_t hp = s.add("serve", kPriorityHigh);
  const fp::FikitParams& p = t_state(s).params;
  fp::TenantData& td = t_data(s, hp);
  EXPECT_EQ(fp::nosync_limit(td, p), p.hp_nosync_submits) << "nothing learned yet";
  uint64_t t = kNow;
  for (int r = 0; r < 3; r++) t = t_request_then_sync(s, hp, 342, t);
  s.hp_launch(hp, kKeyHp, t);  // the first launch after the last sync counts it
  EXPECT_EQ(fp::nosync_limit(td, p), 2 * 342u);
  for (uint32_t i = 1; i < 342; i++) s.hp_launch(hp, kKeyHp, t + i * kUs);
  EXPECT_NE(fp::marker_every_for(td, p, t + 1 * kMs), 1u) << "342 launches: within its runs";
  for (uint32_t i = 342; i < 2 * 342; i++) s.hp_launch(hp, kKeyHp, t + i * kUs);
  EXPECT_EQ(fp::marker_every_for(td, p, t + 1 * kMs), 1u) << "twice its runs: it stopped syncing";
}

TEST(FikitWiring, LearnedNosyncLimitIsCappedAndDecays) {
  t_FakeSched s;
  uint32_t hp = s.add("serve", kPriorityHigh);
  const fp::FikitParams& p = t_state(s).params;
  fp::TenantData& td = t_data(s, hp);
  uint64_t t = t_request_then_sync(s, hp, 20000, kNow);
  s.hp_launch(hp, kKeyHp, t);
  EXPECT_EQ(fp::nosync_limit(td, p), fp::kNosyncLearnedMax * p.hp_nosync_submits) << "capped";
  for (int r = 0; r < 100; r++) t = t_request_then_sync(s, hp, 10, t + 1 * kMs);
  s.hp_launch(hp, kKeyHp, t);
  EXPECT_EQ(fp::nosync_limit(td, p), p.hp_nosync_submits) << "short runs since: back to the floor";
}

// LP kernels queued on one stream and seen complete together (one marker covering both): the
// second one's issue-to-done counts the first one's run, so it gives no sample.
TEST(FikitWiring, QueuedLaunchBehindAnUnmeasuredOneGivesNoSample) {
  t_FakeSched s;
  uint32_t hp = s.add("serve", kPriorityHigh);
  s.hp_launch(hp, kKeyHp, kNow);
  s.hp_launch(hp, kKeyHp, kNow + 1 * kUs);
  s.hp_complete(hp, kNow + 300 * kUs, /*exact=*/false);  // covered by the next one's marker
  s.hp_complete(hp, kNow + 300 * kUs, /*exact=*/true);
  const fp::KeyStats* k = t_data(s, hp).keys.find(kKeyHp);
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->duration_samples, 0u);
  // Issued after the previous one completed: a clean sample.
  s.hp_launch(hp, kKeyHp, kNow + 400 * kUs);
  s.hp_complete(hp, kNow + 550 * kUs, /*exact=*/true);
  EXPECT_EQ(k->duration_samples, 1u);
  EXPECT_LE(k->duration.quantile_high(1.0), 150 * kUs * 17 / 16);
}

}  // namespace
}  // namespace fikit::broker
