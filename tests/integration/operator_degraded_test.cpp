// Degraded modes (broker/degraded.h) on start's terminal and in status: a broker without its BPF
// observer (a BTF file that is not BTF), without MPS (auto finds no nvidia-cuda-mps-control on
// this machine's PATH) and without calibration (fikit-calibrate finds no driver here).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "harness.h"
#include "operator_users.h"
#include "status_query.h"

namespace fikit::test {
namespace {

TEST(OperatorDegraded, PrintedOnStartsTerminalAndShownInStatus) {
  t_TempDir dir;
  const std::string socket = dir.file("run/broker.sock");
  std::string out;
  // PATH without nvidia-cuda-mps-control; no LD_LIBRARY_PATH: no driver for fikit-calibrate.
  ASSERT_EQ(t_run({"/usr/bin/env", "PATH=/usr/bin:/bin", "LD_LIBRARY_PATH=", t_bin("fikit-broker"),
                   "start", "--socket", socket, "--policy", "none", "--bpf-btf",
                   dir.file("run/broker.sock.lock")},
                  dir, &out),
            0)
      << out;
  EXPECT_NE(out.find("fikit-broker: degraded: BPF unavailable: "), std::string::npos) << out;
  EXPECT_NE(out.find("fikit-broker: degraded: MPS unavailable: "), std::string::npos) << out;
  EXPECT_NE(out.find("fikit-broker: degraded: calibration not done"), std::string::npos) << out;
  nlohmann::json doc = t_status(socket);
  ASSERT_TRUE(doc.is_object());
  ASSERT_TRUE(doc["degraded"].is_array()) << doc.dump();
  EXPECT_EQ(doc["degraded"].size(), 3u) << doc["degraded"].dump();
  std::string table;
  EXPECT_EQ(t_run({t_bin("fikit-broker"), "status", "--socket", socket}, dir, &table), 0);
  EXPECT_NE(table.find("degraded: BPF unavailable"), std::string::npos) << table;
  out.clear();
  EXPECT_EQ(t_run({t_bin("fikit-broker"), "stop", "--socket", socket}, dir, &out), 0) << out;
}

TEST(OperatorDegraded, NoneWhenNothingIsMissingOnPurpose) {
  t_TempDir dir;
  t_Broker broker(dir, "none", {"--no-bpf", "--substrate", "timeslice", "--switch-cost-us", "0"});
  ASSERT_TRUE(broker.running());
  nlohmann::json doc = t_status(broker.socket());
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc["degraded"], nlohmann::json::array()) << "choices are not degradations";
}

}  // namespace
}  // namespace fikit::test
