// The status document (schema version 2: time, version, per-GPU sections, rates) and its table:
// at most 80 columns whatever the tenants' names, priorities, counts and policy lines; names cut
// with a marker; rates over the time since an earlier status; the legend; no broker running.
#include <fikit/protocol.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "control/status.h"
#include "t_command.h"

namespace fikit::broker {
namespace {

using nlohmann::json;

constexpr uint64_t kSecond = 1'000'000'000;

TenantStatus tenant(uint32_t id, uint32_t priority, const std::string& name) {
  TenantStatus t;
  t.id = id;
  t.pid = 4000000 + static_cast<pid_t>(id);
  t.uid = 60000;
  t.priority = priority;
  t.name = name;
  t.state = TenantState::kActive;
  t.launches = 123'456'789'012ull;
  t.granted = 987'654'321ull;
  t.passed_through = 12;
  t.dropped = 3;
  t.lp_waiting = 1000;
  t.lp_in_flight = 64;
  t.admitted_ns = 1 * kSecond;
  // A policy line of 110 columns, as fikit's can be.
  t.policy_text = "    " + std::string(50, 'x') + " " + std::string(55, 'y') + "\n";
  return t;
}

StatusInput input(const std::vector<TenantStatus>& tenants) {
  StatusInput in;
  in.info.policy = "fikit";
  in.info.socket = "/run/fikit/" + std::string(90, 's') + "/broker.sock";
  in.info.unix_time = 1.8e9;
  in.info.gpu_uuid = "GPU-8c1d2e3f-0000-1111-2222-333344445555";
  in.info.gpu_model = "NVIDIA H200";
  in.tenants = tenants;
  in.now_ns = 100 * kSecond;
  in.max_len = kStatusMax - 1;
  in.parts.push_back({"substrate", [](uint64_t, size_t) {
                        return json{{"kind", "mps"},
                                    {"why", "auto: " + std::string(70, 'w')},
                                    {"mps_pipe_dir", "/run/fikit/mps-pipe"},
                                    {"switch_cost_us", 0.3},
                                    {"switch_cost_source", "mps"}};
                      }});
  return in;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

TEST(Status, DocumentHasSchemaTimeVersionAndPerGpuSections) {
  StatusInput in = input({tenant(1, 0, "serve"), tenant(2, 5, "train")});
  in.rates[2] = TenantRate{1500.5, 250.25, 2.0};
  json doc = json::parse(status_json(in));
  EXPECT_EQ(doc["schema_version"], kStatusSchemaVersion);
  EXPECT_EQ(doc["schema_version"], 2);
  EXPECT_DOUBLE_EQ(doc["time"].get<double>(), 1.8e9);
  EXPECT_FALSE(doc["version"].get<std::string>().empty());
  ASSERT_EQ(doc["gpus"].size(), 1u);
  EXPECT_EQ(doc["gpus"][0]["index"], 0);
  EXPECT_EQ(doc["gpus"][0]["uuid"], "GPU-8c1d2e3f-0000-1111-2222-333344445555");
  EXPECT_EQ(doc["gpus"][0]["model"], "NVIDIA H200");
  EXPECT_EQ(doc["gpus"][0]["tenants"], json::parse("[1, 2]"));
  ASSERT_EQ(doc["tenants"].size(), 2u);
  for (const json& t : doc["tenants"]) {
    EXPECT_EQ(t["gpu"], 0);
    for (const char* key : {"launches_per_s", "grants_per_s", "rate_window_s", "age_s"})
      EXPECT_TRUE(t[key].is_number()) << key;
  }
  EXPECT_DOUBLE_EQ(doc["tenants"][1]["launches_per_s"].get<double>(), 1500.5);
  EXPECT_DOUBLE_EQ(doc["tenants"][1]["grants_per_s"].get<double>(), 250.25);
  EXPECT_DOUBLE_EQ(doc["tenants"][0]["rate_window_s"].get<double>(), 0.0) << "no rate given";
  EXPECT_EQ(doc["broker"]["tenants"], 2);
  EXPECT_EQ(doc["substrate"]["kind"], "mps");
}

TEST(Status, OmittedTenantsAreNotListedInTheirGpuEither) {
  std::vector<TenantStatus> many;
  for (uint32_t i = 1; i <= 400; i++) many.push_back(tenant(i, 1, "t" + std::to_string(i)));
  StatusInput in = input(many);
  in.max_len = 20000;
  std::string text = status_json(in);
  EXPECT_LE(text.size(), 20000u);
  json doc = json::parse(text);
  size_t omitted = doc["broker"]["tenants_omitted"].get<size_t>();
  EXPECT_GT(omitted, 0u);
  EXPECT_EQ(doc["tenants"].size() + omitted, 400u);
  EXPECT_EQ(doc["gpus"][0]["tenants"].size(), doc["tenants"].size());
}

TEST(Status, TableFitsEightyColumnsWithLongNamesAndLevelFivePriorities) {
  TenantStatus faulty = tenant(3, 5, "a-tenant-name-much-longer-than-fourteen-bytes");
  faulty.state = TenantState::kFaulty;
  faulty.fault = "ring entry " + std::string(100, 'z');
  StatusInput in = input({tenant(1, 0, "serve"), tenant(2, 5, "caf\xc3\xa9-training-job"), faulty});
  in.rates[1] = {123456.0, 0, 2};
  in.rates[2] = {12.5, 99999999.0, 2};
  Result<std::string> text = status_text(status_json(in));
  ASSERT_TRUE(text.ok()) << text.status().message();
  for (const std::string& l : lines(*text)) EXPECT_LE(l.size(), 80u) << l;
  EXPECT_NE(text->find("level 5"), std::string::npos) << *text;
  EXPECT_NE(text->find("a-tenant-name~"), std::string::npos) << "cut with a marker\n" << *text;
  EXPECT_NE(text->find("caf\xc3\xa9-trainin~"), std::string::npos) << "cut at a character\n"
                                                                   << *text;
  EXPECT_EQ(text->find("a-tenant-name-"), std::string::npos) << *text;
  EXPECT_NE(text->find("L/s"), std::string::npos);
  EXPECT_NE(text->find("123.5k"), std::string::npos) << *text;
  EXPECT_NE(text->find("100.0M"), std::string::npos) << *text;
  EXPECT_NE(text->find("passed through 12, dropped 3"), std::string::npos) << *text;
  EXPECT_NE(text->find("GPU 0: NVIDIA H200 GPU-8c1d2e3f"), std::string::npos) << *text;
  EXPECT_NE(text->find("tenant 3 faulty: ring entry"), std::string::npos) << *text;
}

TEST(Status, RatesAreOverTheTimeSinceAnEarlierStatus) {
  TenantRates rates;
  TenantStatus t = tenant(7, 2, "lp");
  t.launches = 100;
  t.granted = 50;
  t.admitted_ns = 10 * kSecond;
  auto r = rates.update({t}, 20 * kSecond);
  EXPECT_DOUBLE_EQ(r[7].window_s, 10.0) << "first: since it registered";
  EXPECT_DOUBLE_EQ(r[7].launches_per_s, 10.0);
  EXPECT_DOUBLE_EQ(r[7].grants_per_s, 5.0);
  t.launches = 400;
  t.granted = 350;
  r = rates.update({t}, 22 * kSecond);
  EXPECT_DOUBLE_EQ(r[7].window_s, 2.0);
  EXPECT_DOUBLE_EQ(r[7].launches_per_s, 150.0);
  EXPECT_DOUBLE_EQ(r[7].grants_per_s, 150.0);
  // Half a second later: still against the sample at least 1 s old.
  t.launches = 500;
  r = rates.update({t}, 22 * kSecond + kSecond / 2);
  EXPECT_DOUBLE_EQ(r[7].window_s, 2.5) << "the 22 s sample is not 1 s old: the 20 s one is";
  EXPECT_DOUBLE_EQ(r[7].launches_per_s, 160.0);
}

TEST(Status, LegendDefinesEveryColumnInEightyColumns) {
  const std::string legend = status_legend();
  for (const std::string& l : lines(legend)) EXPECT_LE(l.size(), 80u) << l;
  for (const char* term : {"PRIO", "STATE", "LAUNCH", "GRANT", "L/s", "WAIT", "INFL", "name~",
                           "passed through", "above-busy", "no-room", "fill-miss", "overruns"})
    EXPECT_NE(legend.find(term), std::string::npos) << term;
}

TEST(Status, WithoutABrokerJsonSaysNotRunningAndTheCodeIsThree) {
  std::string out;
  const std::string cmd = t_broker_bin() + " status --json --socket /nonexistent/fikit.sock";
  EXPECT_EQ(t_run("(" + cmd + " 2>/dev/null)", &out), kStatusNotRunningExit);
  EXPECT_EQ(json::parse(out), json::parse(R"({"running": false})")) << out;
  EXPECT_EQ(t_run(t_broker_bin() + " status --socket /nonexistent/fikit.sock", &out), 3);
  EXPECT_NE(out.find("no fikit-broker is running"), std::string::npos) << out;
}

}  // namespace
}  // namespace fikit::broker
