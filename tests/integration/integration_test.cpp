// End to end on the simulated driver: a real fikit-broker, real client processes (fikit-run +
// libfikit.so + the fikit-chain workload), checked through the simulated GPU's kernel traces and
// the broker's status.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include "harness.h"

namespace fikit::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class Integration : public ::testing::Test {
 protected:
  t_TempDir dir;
  t_SimGpu gpu{dir};
  int n = 0;

  // Run the workload as a tenant: fikit-run --priority P --name N --socket S -- fikit-chain ARGS...
  t_Proc tenant(const std::string& socket, const std::string& priority, const std::string& name,
                const std::vector<std::string>& args, Env extra = {}) {
    std::vector<std::string> argv = {
        t_bin("fikit-run"),  "--priority", priority, "--name", name, "--socket", socket, "--",
        t_bin("fikit-chain")};
    argv.insert(argv.end(), args.begin(), args.end());
    Env env = gpu.env();
    env.insert(env.end(), extra.begin(), extra.end());
    return t_spawn(argv, env, dir.file(name + std::to_string(n++)));
  }

  // Wait for a workload and expect it to succeed; return its result line.
  std::map<std::string, std::string> finish(t_Proc& p, std::chrono::milliseconds timeout = 60s) {
    EXPECT_TRUE(t_wait(p, timeout)) << "workload did not finish: " << t_read_file(p.err_path);
    EXPECT_EQ(t_exit_code(p), 0) << t_read_file(p.err_path);
    return t_kv(t_read_file(p.out_path));
  }

  // Each stream of process `pid` ran kernels tagged 1..n exactly once, in order; return the total.
  size_t expect_exactly_once_in_order(pid_t pid) {
    auto tags = t_trace_tags(gpu.trace_prefix + "." + std::to_string(pid), "spin");
    size_t total = 0;
    for (auto& [stream, seq] : tags) {
      for (size_t i = 0; i < seq.size(); i++) {
        if (seq[i] != i + 1) {
          ADD_FAILURE() << "stream " << stream << ": kernel " << i << " has tag " << seq[i]
                        << " (lost, duplicated or reordered)";
          break;
        }
      }
      total += seq.size();
    }
    return total;
  }

  static json tenants(const t_Broker& b) {
    std::string s = b.status_json();
    if (s.empty()) return json::array();
    json j = json::parse(s, nullptr, false);
    return j.is_discarded() || !j.contains("tenants") ? json::array() : j["tenants"];
  }

  static json find_tenant(const t_Broker& b, const std::string& name) {
    for (auto& t : tenants(b))
      if (t.value("name", "") == name) return t;
    return nullptr;
  }
};

const std::vector<std::string> kOrder = {"order", "--kernels", "3000", "--streams", "4"};
const std::vector<std::string> kHp = {"hp",  "--requests",       "40",  "--kernels",
                                      "5",   "--kernel-us",      "200", "--gap-us",
                                      "100", "--request-gap-us", "300"};

class IntegrationPolicy : public Integration, public ::testing::WithParamInterface<const char*> {};

// Every intercepted launch runs exactly once, in per-stream order, whatever the broker does.
TEST_P(IntegrationPolicy, EveryLaunchRunsExactlyOnceInOrder) {
  t_Broker broker(dir, GetParam());
  t_Proc hp = tenant(broker.socket(), "high", "hp", kHp);
  t_Proc lp = tenant(broker.socket(), "low", "lp", kOrder);
  pid_t lp_pid = lp.pid, hp_pid = hp.pid;
  auto lp_out = finish(lp);
  auto hp_out = finish(hp);
  EXPECT_EQ(expect_exactly_once_in_order(lp_pid), 3000u);
  auto hp_tags = t_trace_tags(gpu.trace_prefix + "." + std::to_string(hp_pid), "spin");
  size_t hp_kernels = 0;
  for (auto& [s, v] : hp_tags) hp_kernels += v.size();
  EXPECT_EQ(hp_kernels, 40u * 5u);
}

INSTANTIATE_TEST_SUITE_P(Policies, IntegrationPolicy, ::testing::Values("none", "priority"));

TEST_F(Integration, WithoutBrokerLaunchesFailOpen) {
  t_Proc lp = tenant(dir.file("no-broker.sock"), "low", "lp", kOrder);
  pid_t pid = lp.pid;
  auto out = finish(lp);
  EXPECT_EQ(expect_exactly_once_in_order(pid), 3000u);
}

TEST_F(Integration, StatusShowsTenantsAndCounters) {
  t_Broker broker(dir, "priority");
  t_Proc lp = tenant(broker.socket(), "low", "trainer",
                     {"lp", "--seconds", "3", "--kernel-us", "200", "--batch", "4"});
  json t;
  ASSERT_TRUE(t_eventually(
      [&] {
        t = find_tenant(broker, "trainer");
        return !t.is_null() && t.value("granted", 0) > 0;
      },
      20s))
      << broker.status_json();
  EXPECT_EQ(t.value("pid", 0), lp.pid);
  EXPECT_EQ(t.value("priority_name", ""), "low");
  EXPECT_EQ(t.value("state", ""), "active");
  EXPECT_GT(t.value("launches", 0), 0);
  finish(lp);
  EXPECT_TRUE(t_eventually([&] { return find_tenant(broker, "trainer").is_null(); }, 10s))
      << "an exited tenant is still listed";
}

TEST_F(Integration, UnknownPriorityIsRefusedBeforeRunning) {
  t_Proc p = tenant(dir.file("none.sock"), "urgent", "bad", kOrder);
  ASSERT_TRUE(t_wait(p, 10s));
  EXPECT_EQ(t_exit_code(p), 2);
  EXPECT_NE(t_read_file(p.err_path).find("priority"), std::string::npos) << t_read_file(p.err_path);
  EXPECT_TRUE(t_trace_files(gpu.trace_prefix).empty()) << "the program ran anyway";
}

TEST_F(Integration, SecondBrokerOnTheSameSocketIsRefused) {
  t_Broker first(dir, "priority");
  t_Proc second =
      t_spawn({t_bin("fikit-broker"), "start", "--foreground", "--socket", first.socket()}, {},
              dir.file("second"));
  ASSERT_TRUE(t_wait(second, 10s));
  EXPECT_EQ(t_exit_code(second), 1);
  EXPECT_NE(t_read_file(second.err_path).find("is running"), std::string::npos)
      << t_read_file(second.err_path);
  EXPECT_NE(first.status_json(), "") << "the first broker was disturbed";
}

TEST_F(Integration, ClientOfAnotherAbiIsRefusedWithAMessage) {
  t_Broker broker(dir, "priority");
  t_Proc rogue = t_spawn({t_build_dir() + "/tests/rogue_client", broker.socket(), "abi"}, {},
                         dir.file("rogue"));
  ASSERT_TRUE(t_wait(rogue, 10s));
  EXPECT_EQ(t_exit_code(rogue), 0) << t_read_file(rogue.out_path) << t_read_file(rogue.err_path);
  EXPECT_NE(broker.status_json(), "");
}

TEST_F(Integration, CorruptRingEntryMakesOnlyThatTenantFaulty) {
  t_Broker broker(dir, "priority");
  t_Proc lp = tenant(broker.socket(), "low", "lp", kOrder);
  pid_t lp_pid = lp.pid;
  t_Proc rogue = t_spawn({t_build_dir() + "/tests/rogue_client", broker.socket(), "corrupt"}, {},
                         dir.file("rogue"));
  ASSERT_TRUE(t_wait(rogue, 20s));
  EXPECT_EQ(t_exit_code(rogue), 0)
      << "the broker did not mark the corrupt tenant faulty: " << t_read_file(rogue.err_path);
  finish(lp);
  EXPECT_EQ(expect_exactly_once_in_order(lp_pid), 3000u);
  EXPECT_NE(broker.status_json(), "") << "the broker died of a tenant's mistake";
}

TEST_F(Integration, TenantKilledWhileHoldingAGrantIsReaped) {
  t_Broker broker(dir, "priority");
  t_Proc rogue = t_spawn({t_build_dir() + "/tests/rogue_client", broker.socket(), "hold"}, {},
                         dir.file("rogue"));
  ASSERT_TRUE(t_eventually(
      [&] { return t_read_file(rogue.out_path).find("granted") != std::string::npos; }, 20s))
      << t_read_file(rogue.err_path);
  kill(rogue.pid, SIGKILL);
  t_wait(rogue, 5s);
  EXPECT_TRUE(t_eventually([&] { return find_tenant(broker, "rogue").is_null(); }, 10s));
  // The broker carries on: a new LP tenant gets all its launches granted.
  t_Proc lp = tenant(broker.socket(), "low", "lp", kOrder);
  pid_t pid = lp.pid;
  finish(lp);
  EXPECT_EQ(expect_exactly_once_in_order(pid), 3000u);
}

TEST_F(Integration, BrokerKilledClientsFailOpenThenReconnect) {
  auto broker = std::make_unique<t_Broker>(dir, "priority");
  t_Proc lp =
      tenant(broker->socket(), "low", "lp", {"order", "--kernels", "20000", "--streams", "2"});
  pid_t lp_pid = lp.pid;
  ASSERT_TRUE(t_eventually(
      [&] {
        json t = find_tenant(*broker, "lp");
        return !t.is_null() && t.value("granted", 0) > 0;
      },
      20s));
  broker->kill9();
  finish(lp);  // fails open within the test's deadline, nothing lost
  EXPECT_EQ(expect_exactly_once_in_order(lp_pid), 20000u);

  // A long-running tenant reconnects to a broker that comes back on the same socket.
  broker = std::make_unique<t_Broker>(dir, "priority");
  t_Proc trainer = tenant(broker->socket(), "low", "trainer",
                          {"lp", "--seconds", "6", "--kernel-us", "200", "--batch", "4"});
  ASSERT_TRUE(t_eventually([&] { return !find_tenant(*broker, "trainer").is_null(); }, 20s));
  broker->kill9();
  broker.reset();
  broker = std::make_unique<t_Broker>(dir, "priority");
  EXPECT_TRUE(t_eventually([&] { return !find_tenant(*broker, "trainer").is_null(); }, 10s))
      << "the tenant did not reconnect";
  finish(trainer);
}

}  // namespace
}  // namespace fikit::test
