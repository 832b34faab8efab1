// What the broker gives policies beyond grants, and its command line for them: idle hints
// (PolicyOps::on_hint_idle), per-tenant statistics in status (PolicyOps::tenant_stats) and in the
// log when a tenant leaves, HP marker sampling (SchedulerApi::set_marker_every), the client's sync
// count (TenantInfo::host_syncs), the policy's log line, --profile-dir, --policy-opts and
// `fikit-broker profile ...`.
#include <fikit/protocol.h>
#include <fikit/ring.h>
#include <fikit/util.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "control/status.h"
#include "options.h"
#include "sched/sched_core.h"
#include "t_command.h"
#include "t_segment.h"

namespace fikit::broker {
namespace {

struct t_Seen {
  std::vector<std::pair<uint64_t, uint64_t>> hints;  // (idle_ns, t_ns)
  uint32_t marker_every = 0;
  std::vector<uint64_t> host_syncs;  // TenantInfo::host_syncs at each submission
  void* state = nullptr;
};
t_Seen g_seen;

// Records hints, answers statistics, and asks tenant 0 for a marker after 1 in 7 launches.
const PolicyOps kHookPolicy = {
    .name = "hooks",
    .description = "test: records hints, has statistics",
    .init = [](const PolicyConfig& cfg) -> void* {
      if (cfg.log) cfg.log(1, "hello from the policy");
      return &g_seen;
    },
    .exit = nullptr,
    .on_tenant_add = nullptr,
    .on_tenant_remove = nullptr,
    .on_submit = [](void*, TenantInfo& t,
                    const Submission&) { g_seen.host_syncs.push_back(t.host_syncs); },
    .on_complete = nullptr,
    .on_idle = nullptr,
    .dispatch = [](void*, SchedulerApi& s, uint64_t) { s.set_marker_every(0, 7); },
    .tenant_stats = [](void*, uint32_t id, bool json) -> std::string {
      return json ? "{\"kernels\":" + std::to_string(id * 10) + "}"
                  : "    kernels " + std::to_string(id * 10) + "\n";
    },
    .on_hint_idle =
        [](void*, TenantInfo&, uint64_t idle_ns, uint64_t t_ns) {
          g_seen.hints.push_back({idle_ns, t_ns});
        },
};

class PolicyHooks : public ::testing::Test {
 protected:
  void SetUp() override { g_seen = t_Seen{}; }
  t_Segment hp{1, kPriorityHigh};
  t_Segment lp{2, kPriorityLow};

  // An HP launch record from tenant `hp`, then a scheduler round; false if the ring refused it.
  bool hp_launch(SchedCore& core) {
    uint32_t pos;
    if (!ring__push(&hp.seg->ring, {EntryKind::kHpLaunch, 0, 0, 0, 1, now_ns()}, &pos))
      return false;
    core.poll(now_ns());
    return true;
  }
};

TEST_F(PolicyHooks, HintIdleEntriesReachThePolicy) {
  SchedCore core(&kHookPolicy, PolicyConfig{});
  core.add(hp.desc, now_ns());
  uint32_t pos;
  ASSERT_TRUE(ring__push(&hp.seg->ring, {EntryKind::kHintIdle, 0, 0, 0, 123456, 42}, &pos));
  core.poll(now_ns());
  ASSERT_EQ(g_seen.hints.size(), 1u);
  EXPECT_EQ(g_seen.hints[0], std::make_pair(uint64_t{123456}, uint64_t{42}));
  EXPECT_EQ(core.status()[0].fault, "") << "a hint is not a fault";
}

TEST_F(PolicyHooks, MarkerShareIsWrittenToTheSegment) {
  SchedCore core(&kHookPolicy, PolicyConfig{});
  core.add(hp.desc, now_ns());
  ASSERT_TRUE(hp_launch(core));
  EXPECT_EQ(hp.seg->broker.hp_marker_every.load(), 7u);
}

TEST_F(PolicyHooks, SubmissionsCarryTheClientsSyncCount) {
  SchedCore core(&kHookPolicy, PolicyConfig{});
  core.add(hp.desc, now_ns());
  ASSERT_TRUE(hp_launch(core));
  hp.seg->client.syncs.store(3);  // the client synchronized (three drains) before its next launch
  ASSERT_TRUE(hp_launch(core));
  EXPECT_EQ(g_seen.host_syncs, (std::vector<uint64_t>{0, 3}));
}

TEST_F(PolicyHooks, StatusCarriesPolicyStatsAsJsonAndTable) {
  SchedCore core(&kHookPolicy, PolicyConfig{});
  core.add(hp.desc, now_ns());
  core.add(lp.desc, now_ns());
  std::vector<TenantStatus> st = core.status();
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(st[1].policy_json, "{\"kernels\":20}");
  std::string doc = status_json(BrokerInfo{}, st, now_ns(), kStatusMax);
  auto j = nlohmann::json::parse(doc);
  EXPECT_EQ(j["tenants"][1]["policy"]["kernels"], 20);
  EXPECT_EQ(j["tenants"][0]["policy_text"], "    kernels 10\n");
  Result<std::string> text = status_text(doc);
  ASSERT_TRUE(text.ok()) << text.status().message();
  EXPECT_NE(text->find("    kernels 20\n"), std::string::npos) << *text;
}

TEST_F(PolicyHooks, StatusOfAPolicyWithoutStatsHasAnEmptyObject) {
  SchedCore core(policy_find("priority"), PolicyConfig{});
  core.add(lp.desc, now_ns());
  auto j = nlohmann::json::parse(status_json(BrokerInfo{}, core.status(), now_ns(), kStatusMax));
  EXPECT_TRUE(j["tenants"][0]["policy"].is_object());
  EXPECT_TRUE(j["tenants"][0]["policy"].empty());
}

TEST_F(PolicyHooks, PolicyLogsAndLeavingTenantsStatsGoToTheBrokerLog) {
  testing::internal::CaptureStderr();
  {
    SchedCore core(&kHookPolicy, PolicyConfig{});
    core.add(lp.desc, now_ns());
    EXPECT_TRUE(core.remove(2));
  }
  std::string log = testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("INFO policy: hello from the policy"), std::string::npos) << log;
  EXPECT_NE(log.find("tenant 2 (pid " + std::to_string(getpid()) +
                     ", \"tenant-2\") policy stats: {\"kernels\":20}"),
            std::string::npos)
      << log;
}

Result<Options> t_parse(std::vector<std::string> args) {
  std::vector<char*> argv = {const_cast<char*>("fikit-broker")};
  for (std::string& a : args) argv.push_back(a.data());
  return parse_options(static_cast<int>(argv.size()), argv.data());
}

TEST(BrokerOptions, ProfileDirDefaultsAndIsMadeAbsolute) {
  Result<Options> o = t_parse({"start"});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->policy, "fikit");
  EXPECT_EQ(o->policy_cfg.profile_dir, "/var/lib/fikit/profiles");
  o = t_parse({"start", "--socket", "/tmp/x.sock"});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->policy_cfg.profile_dir, "/tmp/profiles") << "a private broker's are beside it";
  o = t_parse({"start", "--socket", "/tmp/x.sock", "--profile-dir", "rel/p"});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->policy_cfg.profile_dir, std::filesystem::current_path().string() + "/rel/p");
  o = t_parse({"start", "--socket", "/tmp/x.sock", "--profile-dir", ""});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->policy_cfg.profile_dir, "") << "'' keeps no profiles";
}

TEST(BrokerOptions, PolicyOptsAreCheckedAtParseTime) {
  Result<Options> o = t_parse({"start", "--policy-opts", "gap_quantile=0.05,measure_gap_us=500"});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->policy_cfg.opts, "gap_quantile=0.05,measure_gap_us=500");
  o = t_parse({"start", "--policy-opts", "gap_quantile=7"});
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.status().message().find("gap_quantile"), std::string::npos);
  o = t_parse({"start", "--policy", "none", "--policy-opts", "gap_quantile=0.1"});
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.status().message().find("takes no options"), std::string::npos);
  o = t_parse({"status", "--policy-opts", "gap_quantile=0.1"});
  EXPECT_FALSE(o.ok()) << "start only";
}

TEST(BrokerOptions, ProfileCommandLine) {
  Result<Options> o =
      t_parse({"profile", "export", "serve", "--file", "x.json", "--profile-dir", "/tmp/p"});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->command, Command::kProfile);
  EXPECT_EQ(o->profile_action, "export");
  EXPECT_EQ(o->profile_name, "serve");
  EXPECT_EQ(o->profile_file, "x.json");
  EXPECT_EQ(o->policy_cfg.profile_dir, "/tmp/p");
  o = t_parse({"profile", "list", "--profile-dir=/tmp/q"});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->policy_cfg.profile_dir, "/tmp/q");
  for (auto bad : std::vector<std::vector<std::string>>{{"profile"},
                                                        {"profile", "show"},
                                                        {"profile", "frobnicate", "x"},
                                                        {"profile", "list", "extra"},
                                                        {"profile", "show", "x", "--file", "f"},
                                                        {"profile", "show", "x", "--bogus"}}) {
    o = t_parse(bad);
    EXPECT_FALSE(o.ok()) << bad.size();
  }
}

// The real binary: import, list, show and export round trip; errors are clear and exit 1.
TEST(BrokerProfileCli, ImportListShowExport) {
  if (access(t_broker_bin().c_str(), X_OK) != 0) GTEST_SKIP() << t_broker_bin() << " not built";
  char tmpl[] = "/tmp/fikit-profile-cli-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl, src = dir + "/in.json", out;
  std::ofstream(src) << R"({"format": "fikit-profile", "version": 1, "tenant": "other",
    "priority": 0, "saved_unix_s": 1, "histogram": {"sub_bits": 4, "min_shift": 8,
    "buckets": 464}, "tenant_gaps": [[212, 40]], "grant_delays": [],
    "keys": [{"key": "0x00000000000000ab", "seen": 12, "duration_samples": 3, "gap_samples": 40,
    "duration": [[180, 3]], "gap": [[212, 40]], "pred_hits": 30, "pred_misses": 2,
    "fill_misses": 0, "pred_sum_ns": 0, "actual_sum_ns": 0, "factor": 1.0}]})";
  std::string b = t_broker_bin() + " profile ", d = " --profile-dir " + dir + "/p";
  ASSERT_EQ(t_run(b + "import serve --file " + src + d, &out), 0) << out;
  ASSERT_EQ(t_run(b + "list" + d, &out), 0) << out;
  EXPECT_EQ(out, "serve\n");
  ASSERT_EQ(t_run(b + "show serve" + d, &out), 0) << out;
  EXPECT_NE(out.find("0x00000000000000ab"), std::string::npos) << out;
  ASSERT_EQ(t_run(b + "export serve" + d, &out), 0) << out;
  EXPECT_EQ(nlohmann::json::parse(out)["tenant"], "serve");
  EXPECT_EQ(t_run(b + "show nobody" + d, &out), 1);
  EXPECT_NE(out.find("no profile named 'nobody'"), std::string::npos) << out;
  std::ofstream(src) << "{not json";
  EXPECT_EQ(t_run(b + "import serve --file " + src + d, &out), 1);
  EXPECT_NE(out.find("failed to import profile for 'serve'"), std::string::npos) << out;
  EXPECT_EQ(t_run(b + "show" + d, &out), 2) << "usage error";
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace fikit::broker
