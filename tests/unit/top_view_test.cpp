// fikit-top's view from status documents made by hand: the GPU's busy, filled and idle shares
// between two samples (its sparklines), the HP latency and slowdown columns from the fields the
// broker may add (request_latency, slowdown, budget) or "-" without them, and 80x24.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "view.h"

namespace fikit::top {
namespace {

using nlohmann::json;

json t_doc(double hp_busy_s, uint64_t lp_fill_ns, bool latency) {
  json hp{{"id", 1},          {"name", "serve"}, {"priority", 0}, {"state", "active"},
          {"launches", 1000}, {"granted", 0},    {"gpu", 0},      {"busy_s", hp_busy_s}};
  if (latency) {
    hp["request_latency"] = {{"count", 10}, {"p50_us", 850.0}, {"p99_us", 12'400.0}};
    hp["slowdown"] = {{"p50", 1.04}, {"p99", 1.21}};
  } else {
    hp["slowdown"] = nullptr;  // unknown
  }
  json lp{{"id", 2},           {"name", "train"}, {"priority", 2},
          {"state", "active"}, {"launches", 500}, {"granted", 500},
          {"gpu", 0},          {"lp_waiting", 0}, {"policy", {{"fill_busy_ns", lp_fill_ns}}}};
  json doc{{"broker", {{"pid", 42}, {"policy", "fikit"}}},
           {"gpus", json::array({{{"index", 0}, {"uuid", "GPU-x"}, {"model", "H200"}}})},
           {"tenants", json::array({hp, lp})}};
  if (latency) doc["budget"] = {{"p50", nullptr}, {"p99", 1.1}};
  return doc;
}

std::string t_screen(const View& v) {
  std::string out;
  for (const std::string& l : v.lines(Settings{}, 80, 24)) {
    EXPECT_LE(l.size(), 80u) << l;
    out += l + "\n";
  }
  EXPECT_LE(v.lines(Settings{}, 80, 24).size(), 24u);
  return out;
}

TEST(TopView, GpuTimeSplitIntoBusyFilledAndIdle) {
  View v;
  v.update(t_doc(10.0, 0, false), 100.0);
  // 2 s later: HP busy 1 s of them, LP filled 0.5 s: 50% busy, 25% filled, 25% idle.
  v.update(t_doc(11.0, 500'000'000, false), 102.0);
  const std::string s = t_screen(v);
  EXPECT_NE(s.find("  busy   ["), std::string::npos) << s;
  EXPECT_NE(s.find("] 50%\n"), std::string::npos) << s;
  EXPECT_NE(s.find("  filled ["), std::string::npos) << s;
  EXPECT_NE(s.find("  idle   ["), std::string::npos) << s;
  EXPECT_NE(s.find("] 25%\n"), std::string::npos) << s;
  // The HP columns without the broker's latency fields: "-".
  EXPECT_NE(s.find("P50     P99 SLOW50/99"), std::string::npos) << s;
  EXPECT_NE(s.find("      -       - -"), std::string::npos) << s;
}

TEST(TopView, HpLatencyAndSlowdownFromTheStatusFields) {
  View v;
  v.update(t_doc(10.0, 0, true), 100.0);
  v.update(t_doc(10.5, 0, true), 101.0);
  const std::string s = t_screen(v);
  EXPECT_NE(s.find(" 850us  12.4ms 1.04/1.21"), std::string::npos) << s;
  EXPECT_NE(s.find("budget p99<=1.10"), std::string::npos) << s;
  EXPECT_LT(s.find("serve"), s.find("train")) << "HP first";
}

TEST(TopView, SparklineScaledToTheTop) {
  EXPECT_EQ(sparkline({0, 0.5, 1.0}, 10, 1.0), " -#");
  EXPECT_EQ(sparkline({1, 2, 3, 4}, 2), "+#");
}

}  // namespace
}  // namespace fikit::top
