// Multi-GPU nodes on the simulated driver (FIKIT_SIM_DEVICES): one scheduling domain per GPU under
// one broker (docs/MULTIGPU.md). Checked through the policy's decision counts that the broker logs
// when a tenant leaves, the registrations in its log and the simulated GPUs' traces and shared
// state; never through timings.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "harness.h"
#include "sim/sim_devices.h"
#include "sim/sim_shared.h"

namespace fikit::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class MultiGpu : public ::testing::Test {
 protected:
  t_TempDir dir;
  t_SimGpu gpu{dir};
  int n = 0;

  void use_gpus(int count) { gpu.devices = count; }

  // The UUID the simulated driver gives GPU `index` of this node.
  std::string uuid_of(int index) const {
    sim::Config cfg;
    cfg.shm_name = gpu.name;
    cfg.devices = static_cast<uint32_t>(gpu.devices);
    return sim::node_devices(cfg)[static_cast<size_t>(index)].uuid_text;
  }

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

  void finish(t_Proc& p, std::chrono::milliseconds timeout = 120s) {
    EXPECT_TRUE(t_wait(p, timeout)) << "workload did not finish: " << t_read_file(p.err_path);
    EXPECT_EQ(t_exit_code(p), 0) << t_read_file(p.err_path);
  }

  // The policy statistics the broker logged when the registration of `name` left (null if none).
  static json logged_stats(t_Broker& b, const std::string& name) {
    std::string log = t_read_file(b.proc().err_path);
    const std::string marker = "\"" + name + "\") policy stats: ";
    size_t at = log.find(marker);
    if (at == std::string::npos) return nullptr;
    size_t start = at + marker.size(), end = log.find('\n', start);
    return json::parse(log.substr(start, end == std::string::npos ? end : end - start), nullptr,
                       false);
  }

  // The GPU indices the broker logged for the registrations of process `pid`, in order.
  static std::vector<int> registered_gpus(t_Broker& b, pid_t pid) {
    std::string log = t_read_file(b.proc().err_path);
    const std::string marker = "registered: pid " + std::to_string(pid) + ",";
    std::vector<int> out;
    for (size_t at = log.find(marker); at != std::string::npos; at = log.find(marker, at + 1)) {
      size_t end = log.find('\n', at);
      size_t g = log.rfind(", GPU ", end);
      if (g != std::string::npos && g > at) out.push_back(std::stoi(log.substr(g + 6)));
    }
    return out;
  }

  // The UUID of the broker's GPU `index` (its status "gpus").
  static std::string broker_uuid(const t_Broker& b, int index) {
    json doc = json::parse(b.status_json(), nullptr, false);
    if (doc.is_discarded() || !doc.contains("gpus") ||
        doc["gpus"].size() <= static_cast<size_t>(index))
      return "";
    return doc["gpus"][static_cast<size_t>(index)].value("uuid", std::string());
  }

  // Kernels of each stream of `trace_file` tagged 1..n exactly once in order; return the total.
  static size_t exactly_once_in_order(const std::string& trace_file) {
    size_t total = 0;
    for (auto& [stream, seq] : t_trace_tags(trace_file, "spin")) {
      for (size_t i = 0; i < seq.size(); i++)
        if (seq[i] != i + 1) {
          ADD_FAILURE() << trace_file << " stream " << stream << ": kernel " << i << " has tag "
                        << seq[i] << " (lost, duplicated or reordered)";
          break;
        }
      total += seq.size();
    }
    return total;
  }

  // The policy decided at least once because of an HP tenant in the domain: a grant into its gap,
  // or a request held while it was busy.
  static bool held_by_hp(const json& stats) {
    return stats.value("grants_fill", 0) > 0 || stats["held_ns"].value("above_busy", 0) > 0;
  }

  std::string trace_of(pid_t pid, int gpu_index) const {
    std::string g = gpu_index == 0 ? "" : ".gpu" + std::to_string(gpu_index);
    return gpu.trace_prefix + g + "." + std::to_string(pid);
  }

  // Kernels completed on simulated GPU `index`, from its shared state.
  uint64_t kernels_on(int index) const {
    std::string name = index == 0 ? gpu.name : gpu.name + "-" + std::to_string(index);
    int fd = shm_open(name.c_str(), O_RDONLY, 0);
    if (fd < 0) return 0;
    void* m = mmap(nullptr, sizeof(sim::SimShared), PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return 0;
    uint64_t k = static_cast<const sim::SimShared*>(m)->kernels_total;
    munmap(m, sizeof(sim::SimShared));
    return k;
  }
};

const std::vector<std::string> kHp = {"hp",  "--requests",       "300", "--kernels",
                                      "5",   "--kernel-us",      "300", "--gap-us",
                                      "200", "--request-gap-us", "300", "--gap-sleep"};
const std::vector<std::string> kLp = {"lp", "--kernels", "300", "--kernel-us", "100"};

class MultiGpuNode : public MultiGpu, public ::testing::WithParamInterface<int> {};

// An LP tenant alone on the last GPU is granted at full speed every time (no gap of GPU 0's HP
// tenant holds it), while one on GPU 0 beside that HP tenant is held for it or granted into its
// gaps.
TEST_P(MultiGpuNode, LpOnAGpuWithoutHpIsNotHeldByAnotherGpusGaps) {
  const int last = GetParam() - 1;
  use_gpus(GetParam());
  t_Broker broker(dir, "fikit");
  t_Proc hp = tenant(broker.socket(), "high", "hp", kHp);
  ASSERT_TRUE(t_eventually([&] { return !registered_gpus(broker, hp.pid).empty(); }, 20s));
  t_Proc far = tenant(broker.socket(), "low", "lp-far", kLp,
                      {{"CUDA_VISIBLE_DEVICES", std::to_string(last)}});
  t_Proc near = tenant(broker.socket(), "low", "lp-near", kLp);
  pid_t far_pid = far.pid;
  finish(far);
  finish(near);
  std::vector<int> far_gpus = registered_gpus(broker, far_pid);
  ASSERT_EQ(far_gpus.size(), 1u);
  EXPECT_EQ(broker_uuid(broker, far_gpus[0]), uuid_of(last));
  kill(hp.pid, SIGTERM);
  t_wait(hp, 30s);
  json fs, ns;
  ASSERT_TRUE(t_eventually([&] { return !(fs = logged_stats(broker, "lp-far")).is_null(); }, 20s));
  ASSERT_TRUE(t_eventually([&] { return !(ns = logged_stats(broker, "lp-near")).is_null(); }, 20s));
  EXPECT_EQ(fs.value("grants_fill", -1), 0) << fs.dump();
  EXPECT_EQ(fs.value("grants_full", -1), 300) << fs.dump();
  EXPECT_EQ(fs["held_ns"].value("above_busy", -1), 0) << fs.dump();
  EXPECT_TRUE(held_by_hp(ns)) << "GPU 0's LP tenant shares its domain with the HP tenant: "
                              << ns.dump();
  EXPECT_EQ(kernels_on(last), 300u);
}

INSTANTIATE_TEST_SUITE_P(Gpus, MultiGpuNode, ::testing::Values(2, 8));

// A tensor-parallel HP tenant on GPUs 0 and 1 registers on both and takes part in those domains
// only: the LP tenant on GPU 1 fills its gaps, the one on GPU 2 runs at full speed.
TEST_F(MultiGpu, TensorParallelHpTakesPartInItsTwoDomainsOnly) {
  use_gpus(3);
  t_Broker broker(dir, "fikit");
  std::vector<std::string> hp_args = kHp;
  hp_args.insert(hp_args.end(), {"--devices", "0,1"});
  t_Proc hp = tenant(broker.socket(), "high", "tp", hp_args);
  ASSERT_TRUE(t_eventually([&] { return registered_gpus(broker, hp.pid).size() == 2; }, 20s))
      << t_read_file(broker.proc().err_path);
  t_Proc lp1 = tenant(broker.socket(), "low", "lp-gpu1", kLp, {{"CUDA_VISIBLE_DEVICES", "1"}});
  t_Proc lp2 = tenant(broker.socket(), "low", "lp-gpu2", kLp, {{"CUDA_VISIBLE_DEVICES", "2"}});
  finish(lp1);
  finish(lp2);
  std::vector<int> hp_gpus = registered_gpus(broker, hp.pid);
  ASSERT_EQ(hp_gpus.size(), 2u);
  EXPECT_EQ(broker_uuid(broker, hp_gpus[0]), uuid_of(0));
  EXPECT_EQ(broker_uuid(broker, hp_gpus[1]), uuid_of(1));
  kill(hp.pid, SIGTERM);
  t_wait(hp, 30s);
  json s1, s2;
  ASSERT_TRUE(t_eventually([&] { return !(s1 = logged_stats(broker, "lp-gpu1")).is_null(); }, 20s));
  ASSERT_TRUE(t_eventually([&] { return !(s2 = logged_stats(broker, "lp-gpu2")).is_null(); }, 20s));
  EXPECT_TRUE(held_by_hp(s1)) << s1.dump();
  EXPECT_EQ(s2.value("grants_fill", -1), 0) << s2.dump();
  EXPECT_EQ(s2.value("grants_full", -1), 300) << s2.dump();
}

// CUDA_VISIBLE_DEVICES by index and by UUID reaches the right physical GPU: its trace, its
// kernel count and the broker's domain of that UUID.
TEST_F(MultiGpu, CudaVisibleDevicesByIndexAndByUuid) {
  use_gpus(4);
  t_Broker broker(dir, "priority");
  const std::vector<std::string> order = {"order", "--kernels", "200", "--streams", "2"};
  t_Proc by_index =
      tenant(broker.socket(), "low", "by-index", order, {{"CUDA_VISIBLE_DEVICES", "2"}});
  t_Proc by_uuid =
      tenant(broker.socket(), "low", "by-uuid", order, {{"CUDA_VISIBLE_DEVICES", uuid_of(3)}});
  pid_t a = by_index.pid, b = by_uuid.pid;
  finish(by_index);
  finish(by_uuid);
  EXPECT_EQ(exactly_once_in_order(trace_of(a, 2)), 200u);
  EXPECT_EQ(exactly_once_in_order(trace_of(b, 3)), 200u);
  EXPECT_EQ(kernels_on(2), 200u);
  EXPECT_EQ(kernels_on(3), 200u);
  EXPECT_EQ(kernels_on(0) + kernels_on(1), 0u);
  std::vector<int> ga = registered_gpus(broker, a), gb = registered_gpus(broker, b);
  ASSERT_EQ(ga.size(), 1u);
  ASSERT_EQ(gb.size(), 1u);
  EXPECT_EQ(broker_uuid(broker, ga[0]), uuid_of(2));
  EXPECT_EQ(broker_uuid(broker, gb[0]), uuid_of(3));
}

class MultiGpuSwitch : public MultiGpu, public ::testing::WithParamInterface<int> {};

// One thread launching on every GPU in turn (cuCtxSetCurrent before each launch) registers once
// per GPU; every launch runs exactly once, in order per stream, on its own GPU, beside an HP
// tenant on GPU 0.
TEST_P(MultiGpuSwitch, AThreadSwitchingDeviceBetweenLaunches) {
  const int gpus = GetParam();
  use_gpus(gpus);
  t_Broker broker(dir, "fikit");
  std::string devices;
  for (int d = 0; d < gpus; d++) devices += (d ? "," : "") + std::to_string(d);
  t_Proc hp = tenant(broker.socket(), "high", "hp", kHp);
  const int per_stream = 50;
  t_Proc sw = tenant(broker.socket(), "low", "switcher",
                     {"order", "--kernels", std::to_string(per_stream * gpus), "--streams",
                      std::to_string(gpus), "--devices", devices});
  pid_t pid = sw.pid;
  finish(sw);
  kill(hp.pid, SIGTERM);
  t_wait(hp, 30s);
  std::vector<int> reg = registered_gpus(broker, pid);
  EXPECT_EQ(reg.size(), static_cast<size_t>(gpus)) << t_read_file(broker.proc().err_path);
  for (int d = 0; d < gpus; d++) {
    EXPECT_EQ(exactly_once_in_order(trace_of(pid, d)), static_cast<size_t>(per_stream))
        << "GPU " << d;
    EXPECT_GE(kernels_on(d), static_cast<uint64_t>(per_stream));
  }
}

INSTANTIATE_TEST_SUITE_P(Gpus, MultiGpuSwitch, ::testing::Values(2, 8));

// The broker knows the simulated node's GPUs from CUDA (fikit-calibrate --list) and locks each one
// under its run directory: a second broker on the same GPUs is refused even on another socket,
// with the running broker's pid and socket.
TEST_F(MultiGpu, ASecondBrokerOnTheSameGpusIsRefused) {
  use_gpus(2);
  t_Broker first(dir, "fikit", {"--switch-cost-us", "100"}, gpu.env());
  ASSERT_TRUE(first.running());
  t_Proc second = t_spawn({t_bin("fikit-broker"), "start", "--foreground", "--socket",
                           dir.file("other.sock"), "--run-dir", dir.path(), "--policy", "fikit",
                           "--switch-cost-us", "100", "--profile-dir", dir.file("profiles")},
                          gpu.env(), dir.file("second"));
  ASSERT_FALSE(first.status_json().empty());  // answered: its GPUs are locked
  if (!t_wait(second, 30s)) {
    kill(second.pid, SIGKILL);
    t_wait(second, 10s);
    FAIL() << "the second broker kept running: " << t_read_file(second.err_path)
           << "\nthe first: " << t_read_file(first.proc().err_path);
  }
  EXPECT_NE(t_exit_code(second), 0);
  std::string err = t_read_file(second.err_path);
  EXPECT_NE(err.find("is already scheduled by the fikit-broker with pid " +
                     std::to_string(first.proc().pid) + " on socket " + first.socket()),
            std::string::npos)
      << err;
  EXPECT_NE(err.find(uuid_of(0)), std::string::npos) << err;
  EXPECT_TRUE(first.running());
}

// The switch-back cost is measured per GPU and stored with its UUID; a broker restarted while
// tenants keep both GPUs busy uses the stored costs and measures nothing.
TEST_F(MultiGpu, ARestartUnderLoadUsesTheStoredCalibration) {
  use_gpus(2);
  Env env = gpu.env();
  env.push_back({"FIKIT_SIM_SWITCH_US", "300"});
  {
    t_Broker first(dir, "fikit", {"--substrate", "timeslice"}, env);
    ASSERT_FALSE(first.status_json().empty());  // answered: calibrated and running
    std::string log = t_read_file(first.proc().err_path);
    EXPECT_NE(log.find("switch-back cost of GPU 0 (" + uuid_of(0) + "): "), std::string::npos)
        << log;
    EXPECT_NE(log.find("switch-back cost of GPU 1 (" + uuid_of(1) + "): "), std::string::npos)
        << log;
    json doc = json::parse(first.status_json(), nullptr, false);
    ASSERT_FALSE(doc.is_discarded());
    for (int i = 0; i < 2; i++)
      EXPECT_EQ(doc["substrate"]["gpus"][i]["switch_cost_source"], "measured") << log;
  }
  std::vector<std::string> hp_args = kHp;
  hp_args[2] = "100000";  // runs until killed
  hp_args.insert(hp_args.end(), {"--devices", "0,1"});
  t_Proc load =
      tenant(dir.file("broker.sock"), "high", "load", hp_args, {{"FIKIT_SIM_SWITCH_US", "300"}});
  ASSERT_TRUE(t_eventually([&] { return kernels_on(1) > 20; }, 20s));
  t_Broker second(dir, "fikit", {"--substrate", "timeslice"}, env);
  ASSERT_FALSE(second.status_json().empty());
  std::string log = t_read_file(second.proc().err_path);
  EXPECT_EQ(log.find("measured on"), std::string::npos) << "measured under load: " << log;
  json doc = json::parse(second.status_json(), nullptr, false);
  ASSERT_FALSE(doc.is_discarded());
  for (int i = 0; i < 2; i++) {
    EXPECT_EQ(doc["substrate"]["gpus"][i]["switch_cost_source"], "stored") << log;
    EXPECT_GT(doc["substrate"]["gpus"][i]["switch_cost_us"].get<double>(), 0) << log;
  }
  kill(load.pid, SIGTERM);
  t_wait(load, 30s);
}

// A measured cost of about 0 (FIKIT_SIM_SWITCH_US=0) is a failed measurement: rejected, the
// default used, and a warning that says what it costs.
TEST_F(MultiGpu, AZeroSwitchCostMeasurementIsRejected) {
  Env env = gpu.env();
  env.push_back({"FIKIT_SIM_SWITCH_US", "0"});
  t_Broker broker(dir, "fikit", {"--substrate", "timeslice"}, env);
  ASSERT_FALSE(broker.status_json().empty());
  std::string log = t_read_file(broker.proc().err_path);
  EXPECT_NE(log.find("rejected"), std::string::npos) << log;
  EXPECT_NE(log.find(" WARN "), std::string::npos) << log;
  json doc = json::parse(broker.status_json(), nullptr, false);
  ASSERT_FALSE(doc.is_discarded());
  EXPECT_EQ(doc["substrate"]["switch_cost_source"], "default") << log;
  EXPECT_EQ(doc["substrate"]["switch_cost_us"], 200) << log;
}

}  // namespace
}  // namespace fikit::test
