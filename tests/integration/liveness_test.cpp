// Liveness and memory against a real broker on the simulated driver: whatever a higher-priority
// tenant does (killed while busy, leaves with a launch outstanding, goes quiet with one), a
// waiting LP tenant finishes; a tenant flooding its ring with requests is made faulty and the
// broker's memory stays bounded. The HP and flooding tenants speak the protocol by hand
// (RawTenant), as a hostile or broken client would.
#include <fikit/ring.h>
#include <fikit/util.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "harness.h"
#include "raw_tenant.h"

namespace fikit::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

const std::vector<std::string> kLp = {"lp", "--kernels", "300", "--kernel-us", "20"};

class Liveness : public ::testing::Test {
 protected:
  t_TempDir dir;
  t_SimGpu gpu{dir};

  t_Proc lp_tenant(const t_Broker& b) {
    std::vector<std::string> argv = {t_bin("fikit-run"), "--priority", "low",
                                     "--name",           "lp",         "--socket",
                                     b.socket(),         "--",         t_bin("fikit-chain")};
    argv.insert(argv.end(), kLp.begin(), kLp.end());
    return t_spawn(argv, gpu.env(), dir.file("lp"));
  }

  static json find_tenant(const t_Broker& b, const std::string& name) {
    json j = json::parse(b.status_json(), nullptr, false);
    if (j.is_discarded() || !j.contains("tenants")) return nullptr;
    for (auto& t : j["tenants"])
      if (t.value("name", "") == name) return t;
    return nullptr;
  }

  // Wait until tenant `name` has a launch outstanding (held by the broker).
  static bool outstanding(const t_Broker& b, const std::string& name) {
    return t_eventually(
        [&] {
          json t = find_tenant(b, name);
          return !t.is_null() && t.value("outstanding", 0) > 0;
        },
        10s);
  }

  // Wait until the LP tenant has a request waiting (held by the busy HP).
  static bool lp_waits(const t_Broker& b) {
    return t_eventually(
        [&] {
          json t = find_tenant(b, "lp");
          return !t.is_null() && t.value("lp_waiting", 0) > 0;
        },
        20s);
  }

  void expect_lp_finishes(t_Proc& lp) {
    if (!t_wait(lp, 60s)) {
      kill(lp.pid, SIGKILL);
      t_wait(lp, 10s);
      FAIL() << "the LP tenant waited for ever: " << t_read_file(lp.err_path);
    }
    EXPECT_EQ(t_exit_code(lp), 0) << t_read_file(lp.err_path);
    EXPECT_EQ(t_kv(t_read_file(lp.out_path))["kernels"], "300") << t_read_file(lp.out_path);
  }
};

// Register as HP and push one launch that nothing will ever say is complete.
bool t_hp_launch_once(RawTenant& hp, const std::string& socket) {
  if (!hp.connect_and_register(socket, kPriorityHigh, "hp") ||
      !hp.wait_state(TenantState::kActive, 5'000'000'000))
    return false;
  uint32_t pos;
  return ring__push(&hp.segment()->ring, {EntryKind::kHpLaunch, 0, 0, 0, 0x77, now_ns()}, &pos);
}

class LivenessPolicy : public Liveness, public ::testing::WithParamInterface<const char*> {};

volatile sig_atomic_t g_leave = 0;
void on_leave(int) { g_leave = 1; }

// A forked raw HP tenant that stays busy: it always has a launch outstanding, and completes the
// one before every 50 ms (so it is never silent). SIGUSR1 makes it leave (close its connection)
// with a launch outstanding and stay alive; it is SIGKILLed (at the latest) on destruction.
struct t_BusyHpProcess {
  pid_t pid = -1;
  bool ready = false;
  explicit t_BusyHpProcess(const std::string& socket) {
    int p[2];
    if (pipe(p) != 0) return;
    pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
      signal(SIGUSR1, on_leave);
      close(p[0]);
      auto hp = std::make_unique<RawTenant>();
      char ok = t_hp_launch_once(*hp, socket) ? 1 : 0;
      if (write(p[1], &ok, 1) != 1 || !ok) _exit(1);
      Segment* seg = hp->segment();
      for (uint32_t done = 0; !g_leave; done++) {
        usleep(50'000);
        uint32_t pos;
        ring__push(&seg->ring, {EntryKind::kHpLaunch, 0, 0, 0, 0x77, now_ns()}, &pos);
        seg->slots[0].host_done_ns.store(now_ns(), std::memory_order_relaxed);
        seg->slots[0].host_done.store(done + 1, std::memory_order_release);
      }
      hp.reset();
      for (;;) pause();
    }
    close(p[1]);
    char ok = 0;
    ready = pid > 0 && read(p[0], &ok, 1) == 1 && ok == 1;
    close(p[0]);
  }
  void leave() { kill(pid, SIGUSR1); }
  void kill9() {
    if (pid <= 0) return;
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    pid = -1;
  }
  ~t_BusyHpProcess() { kill9(); }
};

TEST_P(LivenessPolicy, HpKilledWhileBusy) {
  t_Broker broker(dir, GetParam());
  t_BusyHpProcess hp(broker.socket());
  ASSERT_TRUE(hp.ready);
  ASSERT_TRUE(outstanding(broker, "hp"));
  t_Proc lp = lp_tenant(broker);
  EXPECT_TRUE(lp_waits(broker));
  hp.kill9();
  expect_lp_finishes(lp);
}

TEST_P(LivenessPolicy, HpLeavesWithALaunchOutstanding) {
  t_Broker broker(dir, GetParam());
  t_BusyHpProcess hp(broker.socket());
  ASSERT_TRUE(hp.ready);
  ASSERT_TRUE(outstanding(broker, "hp"));
  t_Proc lp = lp_tenant(broker);
  EXPECT_TRUE(lp_waits(broker));
  hp.leave();
  expect_lp_finishes(lp);
}

// The HP stays registered but never launches again nor synchronizes: its launch is taken as
// drained after the bound (docs/POLICY.md), and the LP runs.
TEST_P(LivenessPolicy, RawHpThatLaunchedOnceAndWentQuiet) {
  t_Broker broker(dir, GetParam());
  RawTenant hp;
  ASSERT_TRUE(t_hp_launch_once(hp, broker.socket())) << hp.error();
  ASSERT_TRUE(outstanding(broker, "hp"));
  t_Proc lp = lp_tenant(broker);
  expect_lp_finishes(lp);
  json t = find_tenant(broker, "hp");
  ASSERT_FALSE(t.is_null());
  EXPECT_EQ(t.value("state", ""), "active");
  EXPECT_EQ(t.value("outstanding", -1), 0);
}

INSTANTIATE_TEST_SUITE_P(Policies, LivenessPolicy, ::testing::Values("fikit", "priority"));

// VmRSS of `pid` in KiB (0 if unknown).
uint64_t t_rss_kib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  return 0;
}

// A tenant that floods its ring with LP requests it never waits for is made faulty once a
// ring's worth waits, and what it sent is dropped: the broker's memory does not grow with it.
TEST_F(Liveness, FloodingTenantIsFaultyAndTheBrokerStaysSmall) {
  t_Broker broker(dir, "priority");
  RawTenant hp;  // holds every LP request
  ASSERT_TRUE(t_hp_launch_once(hp, broker.socket())) << hp.error();
  ASSERT_TRUE(outstanding(broker, "hp"));
  uint64_t before = t_rss_kib(broker.proc().pid);
  ASSERT_GT(before, 0u);
  {
    RawTenant flood;
    ASSERT_TRUE(flood.connect_and_register(broker.socket(), kPriorityLow, "flood") &&
                flood.wait_state(TenantState::kActive, 5'000'000'000))
        << flood.error();
    uint64_t pushed = 0;
    auto end = Clock::now() + 3s;
    while (Clock::now() < end) {
      uint32_t pos;
      if (ring__push(&flood.segment()->ring, {EntryKind::kLpRequest, 0, 0, 0, 1, now_ns()}, &pos))
        pushed++;
    }
    EXPECT_GT(pushed, uint64_t{kRingEntries});
    json t = find_tenant(broker, "flood");
    ASSERT_FALSE(t.is_null());
    EXPECT_EQ(t.value("state", ""), "faulty");
    EXPECT_NE(t.value("fault", "").find("too many LP requests"), std::string::npos) << t.dump();
    EXPECT_LT(t_rss_kib(broker.proc().pid), before + 16 * 1024);
  }
  EXPECT_TRUE(t_eventually([&] { return find_tenant(broker, "flood").is_null(); }, 10s));
  EXPECT_LT(t_rss_kib(broker.proc().pid), before + 16 * 1024);
  EXPECT_NE(broker.status_json(), "");
}

}  // namespace
}  // namespace fikit::test
