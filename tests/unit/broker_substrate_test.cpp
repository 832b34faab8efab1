// Substrates (broker/substrate.h) without a GPU: the choice of `auto`, the MPS control daemon run
// by the broker (against a fake nvidia-cuda-mps-control first on PATH that records what it was
// asked and acts like the daemon's -d / quit), fikit-run joining it, the switch-back cost
// calibration on the simulated driver, and the HP idleness measurement on the simulated driver.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "harness.h"
#include "substrate/calibration.h"
#include "substrate/mps_daemon.h"
#include "substrate/substrate.h"

namespace fikit::broker {
namespace {

using fikit::test::Env;
using fikit::test::t_bin;
using fikit::test::t_build_dir;
using fikit::test::t_eventually;
using fikit::test::t_exit_code;
using fikit::test::t_Proc;
using fikit::test::t_read_file;
using fikit::test::t_spawn;
using fikit::test::t_TempDir;
using fikit::test::t_wait;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char kFakeMps[] = R"sh(#!/bin/bash
# Fake nvidia-cuda-mps-control: records its arguments, MPS variables and stdin.
rec=${FAKE_MPS_RECORD:?}
echo "args=$* pipe=$CUDA_MPS_PIPE_DIRECTORY log=$CUDA_MPS_LOG_DIRECTORY" >>"$rec"
pidf=$CUDA_MPS_PIPE_DIRECTORY/nvidia-cuda-mps-control.pid
running() { [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; }
if [ "${1:-}" = -d ]; then
  [ -n "${FAKE_MPS_FAIL:-}" ] && { echo "$FAKE_MPS_FAIL" >&2; exit 1; }
  running && { echo "An instance of this daemon is already running" >&2; exit 1; }
  sleep 300 </dev/null >/dev/null 2>&1 &
  echo $! >"$pidf"
  exit 0
fi
read -r cmd
echo "stdin=$cmd" >>"$rec"
if [ "$cmd" = quit ] && running; then kill "$(cat "$pidf")"; rm -f "$pidf"; fi
exit 0
)sh";

// A fake MPS control program in dir/fakebin, recording into dir/mps.record.
struct t_FakeMps {
  std::string bin_dir, program, record;
  explicit t_FakeMps(const t_TempDir& dir)
      : bin_dir(dir.file("fakebin")),
        program(bin_dir + "/nvidia-cuda-mps-control"),
        record(dir.file("mps.record")) {
    mkdir(bin_dir.c_str(), 0755);
    std::ofstream(program) << kFakeMps;
    chmod(program.c_str(), 0755);
    setenv("FAKE_MPS_RECORD", record.c_str(), 1);  // in-process MpsDaemon children see it
  }
  Env env() const {
    return {{"PATH", bin_dir + ":" + getenv("PATH")}, {"FAKE_MPS_RECORD", record}};
  }
  std::string log() const { return t_read_file(record); }
};

// The fake daemons this test started: kill what is left (a failed test must not leave sleepers).
void t_kill_daemon(const std::string& pipe_dir) {
  if (pid_t pid = mps_daemon_pid(pipe_dir)) kill(pid, SIGKILL);
}

// A private simulated GPU.
struct t_Sim {
  std::string name;
  explicit t_Sim() {
    static std::atomic<int> n{0};
    name = "/fikit-sub-" + std::to_string(getpid()) + "-" + std::to_string(n++);
  }
  ~t_Sim() { shm_unlink(name.c_str()); }
  Env env(int switch_us) const {
    return {{"LD_LIBRARY_PATH", t_build_dir() + "/sim"},
            {"FIKIT_SIM_GPU", name},
            {"FIKIT_SIM_SWITCH_US", std::to_string(switch_us)}};
  }
};

// `fikit-broker status --json` on `socket`, parsed; null if it does not answer.
json t_status(const t_TempDir& dir, const std::string& socket) {
  t_Proc p = t_spawn({t_bin("fikit-broker"), "status", "--socket", socket, "--json"}, {},
                     dir.file("status"));
  if (!t_wait(p, seconds(10)) || t_exit_code(p) != 0) return nullptr;
  return json::parse(t_read_file(p.out_path), nullptr, false);
}

// fikit-broker start --foreground on dir/broker.sock with run dir `dir`; SIGTERM on destruction.
struct t_SubBroker {
  const t_TempDir& dir;
  std::string socket;
  t_Proc proc;
  json status;  // the first status that answered (null if none)

  t_SubBroker(const t_TempDir& d, const std::vector<std::string>& extra, const Env& env)
      : dir(d), socket(d.file("broker.sock")) {
    std::vector<std::string> argv = {
        t_bin("fikit-broker"), "start",  "--foreground", "--socket", socket,
        "--run-dir",           d.path(), "--policy",     "none"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc = t_spawn(argv, env, d.file("broker"));
    t_eventually(
        [&] {
          if (t_wait(proc, milliseconds(0))) return true;  // exited: give up
          if (access(socket.c_str(), F_OK) != 0) return false;
          status = t_status(dir, socket);
          return !status.is_null();
        },
        seconds(30));
  }
  ~t_SubBroker() { stop(); }
  std::string log() const { return t_read_file(proc.err_path); }
  // SIGTERM; return the exit code (-1 if it did not end).
  int stop() {
    if (proc.pid <= 0) return t_exit_code(proc);
    kill(proc.pid, SIGTERM);
    if (!t_wait(proc, seconds(20))) {
      kill(proc.pid, SIGKILL);
      t_wait(proc, seconds(5));
      return -1;
    }
    return t_exit_code(proc);
  }
};

TEST(SubstrateChoice, AutoPicksMpsOnlyWithControlGpuAndRoot) {
  SubstrateFacts all{"/usr/bin/nvidia-cuda-mps-control", true, true, 0};
  EXPECT_EQ(choose_substrate(SubstrateKind::kAuto, all).kind, SubstrateKind::kMps);
  SubstrateFacts no_gpu = all;
  no_gpu.gpu = false;
  SubstrateChoice c = choose_substrate(SubstrateKind::kAuto, no_gpu);
  EXPECT_EQ(c.kind, SubstrateKind::kTimeslice);
  EXPECT_NE(c.why.find("no GPU"), std::string::npos) << c.why;
  SubstrateFacts no_bin = all;
  no_bin.mps_control = "";
  EXPECT_EQ(choose_substrate(SubstrateKind::kAuto, no_bin).kind, SubstrateKind::kTimeslice);
  SubstrateFacts no_root = all;
  no_root.root = false;
  c = choose_substrate(SubstrateKind::kAuto, no_root);
  EXPECT_EQ(c.kind, SubstrateKind::kTimeslice);
  EXPECT_NE(c.why.find("not root"), std::string::npos) << c.why;
  SubstrateFacts running{"", false, false, 1234};
  EXPECT_EQ(choose_substrate(SubstrateKind::kAuto, running).kind, SubstrateKind::kMps);
  // Explicit choices are taken as given.
  EXPECT_EQ(choose_substrate(SubstrateKind::kMps, SubstrateFacts{}).kind, SubstrateKind::kMps);
  EXPECT_EQ(choose_substrate(SubstrateKind::kTimeslice, all).kind, SubstrateKind::kTimeslice);
}

TEST(SubstrateChoice, ParsesTheOption) {
  SubstrateConfig c;
  EXPECT_TRUE(parse_substrate("mps", &c).ok());
  EXPECT_EQ(c.kind, SubstrateKind::kMps);
  EXPECT_TRUE(parse_substrate("timeslice", &c).ok());
  EXPECT_EQ(c.kind, SubstrateKind::kTimeslice);
  EXPECT_TRUE(parse_substrate("auto", &c).ok());
  EXPECT_EQ(c.kind, SubstrateKind::kAuto);
  EXPECT_FALSE(parse_substrate("mig", &c).ok());
}

TEST(MpsDaemon, StartsWithItsDirectoriesAndQuits) {
  t_TempDir dir;
  t_FakeMps fake(dir);
  MpsDirs dirs = mps_dirs(dir.path());
  pid_t pid = 0;
  {
    MpsDaemon d(fake.program, dirs);
    ASSERT_TRUE(d.start().ok());
    pid = d.pid();
    EXPECT_GT(pid, 0);
    EXPECT_EQ(mps_daemon_pid(dirs.pipe_dir), pid);
    EXPECT_NE(fake.log().find("args=-d pipe=" + dirs.pipe_dir + " log=" + dirs.log_dir),
              std::string::npos)
        << fake.log();
    EXPECT_EQ(d.env()[0], "CUDA_MPS_PIPE_DIRECTORY=" + dirs.pipe_dir);
  }  // destruction quits it
  EXPECT_NE(fake.log().find("stdin=quit"), std::string::npos) << fake.log();
  EXPECT_EQ(mps_daemon_pid(dirs.pipe_dir), 0);
  EXPECT_NE(access(dirs.owner_file.c_str(), F_OK), 0);
  t_kill_daemon(dirs.pipe_dir);
}

TEST(MpsDaemon, UsesARunningDaemonAndLeavesItUnlessItsBrokerDied) {
  t_TempDir dir;
  t_FakeMps fake(dir);
  MpsDirs dirs = mps_dirs(dir.path());
  MpsDaemon first(fake.program, dirs);
  ASSERT_TRUE(first.start().ok());
  {
    MpsDaemon second(fake.program, dirs);  // owner file: this (live) process
    ASSERT_TRUE(second.start().ok());
    EXPECT_EQ(second.pid(), first.pid());
    EXPECT_NE(second.origin().find("already runs"), std::string::npos) << second.origin();
  }
  EXPECT_EQ(fake.log().find("stdin=quit"), std::string::npos) << "quit someone else's daemon";
  EXPECT_EQ(mps_daemon_pid(dirs.pipe_dir), first.pid());
  // The owner file names a broker that is gone: the next one takes the daemon over.
  std::ofstream(dirs.owner_file, std::ios::trunc) << "999999\n";
  {
    MpsDaemon heir(fake.program, dirs);
    ASSERT_TRUE(heir.start().ok());
    EXPECT_NE(heir.origin().find("taking it over"), std::string::npos) << heir.origin();
  }
  EXPECT_NE(fake.log().find("stdin=quit"), std::string::npos) << fake.log();
  EXPECT_EQ(mps_daemon_pid(dirs.pipe_dir), 0);
  t_kill_daemon(dirs.pipe_dir);
}

TEST(MpsDaemon, FailureSaysWhy) {
  t_TempDir dir;
  t_FakeMps fake(dir);
  setenv("FAKE_MPS_FAIL", "no GPU here", 1);
  MpsDaemon d(fake.program, mps_dirs(dir.path()));
  Status s = d.start();
  unsetenv("FAKE_MPS_FAIL");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("failed to start the MPS control daemon"), std::string::npos);
  EXPECT_NE(s.message().find("no GPU here"), std::string::npos) << s.message();
}

TEST(BrokerMps, RunsTheDaemonTenantsJoinItAndItStopsWithTheBroker) {
  t_TempDir dir;
  t_FakeMps fake(dir);
  MpsDirs dirs = mps_dirs(dir.path());
  t_SubBroker b(dir, {"--substrate", "mps"}, fake.env());
  ASSERT_FALSE(b.status.is_null()) << b.log();
  const json& s = b.status["substrate"];
  EXPECT_EQ(s["kind"], "mps");
  EXPECT_EQ(s["mps_pipe_dir"], dirs.pipe_dir);
  EXPECT_EQ(s["mps_log_dir"], dirs.log_dir);
  EXPECT_EQ(s["switch_cost_source"], "mps");
  EXPECT_EQ(s["switch_cost_us"], 0);
  pid_t daemon = mps_daemon_pid(dirs.pipe_dir);
  EXPECT_GT(daemon, 0);
  // fikit-run puts its tenant on the broker's MPS daemon; a pipe directory already set is kept.
  auto run_env = [&](const Env& env, std::vector<std::string> opts) {
    std::vector<std::string> argv = {t_bin("fikit-run"), "--priority", "high", "--socket",
                                     b.socket};
    argv.insert(argv.end(), opts.begin(), opts.end());
    argv.insert(argv.end(), {"--", "/usr/bin/env"});
    t_Proc p = t_spawn(argv, env, dir.file("run"));
    EXPECT_TRUE(t_wait(p, seconds(20)));
    return t_read_file(p.out_path) + t_read_file(p.err_path);
  };
  std::string out = run_env({}, {});
  EXPECT_NE(out.find("CUDA_MPS_PIPE_DIRECTORY=" + dirs.pipe_dir + "\n"), std::string::npos) << out;
  EXPECT_NE(out.find("CUDA_MPS_LOG_DIRECTORY=" + dirs.log_dir + "\n"), std::string::npos) << out;
  EXPECT_NE(out.find("CUDA_MPS_CLIENT_PRIORITY=0\n"), std::string::npos) << out;
  // Below the highest priority the tenant's thread blocks yield to the highest level's.
  out = run_env({}, {"--priority", "low"});
  EXPECT_NE(out.find("CUDA_MPS_CLIENT_PRIORITY=1\n"), std::string::npos) << out;
  out = run_env({{"CUDA_MPS_CLIENT_PRIORITY", "0"}}, {"--priority", "low"});  // the user's wins
  EXPECT_NE(out.find("CUDA_MPS_CLIENT_PRIORITY=0\n"), std::string::npos) << out;
  out = run_env({}, {"--no-mps"});
  EXPECT_EQ(out.find("CUDA_MPS_PIPE_DIRECTORY=" + dirs.pipe_dir), std::string::npos) << out;
  out = run_env({{"CUDA_MPS_PIPE_DIRECTORY", "/elsewhere"}}, {});
  EXPECT_NE(out.find("CUDA_MPS_PIPE_DIRECTORY=/elsewhere\n"), std::string::npos) << out;
  EXPECT_NE(out.find("does not join the broker's MPS daemon"), std::string::npos) << out;
  EXPECT_EQ(b.stop(), 0) << b.log();
  EXPECT_NE(fake.log().find("stdin=quit"), std::string::npos) << fake.log();
  EXPECT_EQ(mps_daemon_pid(dirs.pipe_dir), 0) << b.log();
  t_kill_daemon(dirs.pipe_dir);
}

TEST(BrokerMps, StartFailsWhenMpsCannotRun) {
  t_TempDir dir;
  t_FakeMps fake(dir);
  Env env = fake.env();
  env.push_back({"FAKE_MPS_FAIL", "MPS is not supported here"});
  t_SubBroker b(dir, {"--substrate", "mps"}, env);
  EXPECT_TRUE(b.status.is_null());
  EXPECT_EQ(b.stop(), 1);
  EXPECT_NE(b.log().find("MPS is not supported here"), std::string::npos) << b.log();
  EXPECT_NE(access(b.socket.c_str(), F_OK), 0) << "socket left behind";
}

TEST(BrokerAuto, WithoutAGpuIsTimeslice) {
  if (access("/dev/nvidia0", F_OK) == 0) GTEST_SKIP() << "this machine has a GPU";
  t_TempDir dir;
  t_FakeMps fake(dir);  // on PATH, but there is no GPU
  Env env = fake.env();
  env.push_back({"FIKIT_CALIBRATE", "/nonexistent/fikit-calibrate"});
  t_SubBroker b(dir, {}, env);
  ASSERT_FALSE(b.status.is_null()) << b.log();
  EXPECT_EQ(b.status["substrate"]["kind"], "timeslice");
  EXPECT_NE(b.status["substrate"]["why"].get<std::string>().find("no GPU"), std::string::npos);
  // Calibration could not run: the default cost, said in the log.
  EXPECT_EQ(b.status["substrate"]["switch_cost_source"], "default");
  EXPECT_EQ(b.status["substrate"]["switch_cost_us"], 200);
  EXPECT_NE(b.log().find("failed to measure the switch-back cost"), std::string::npos);
  EXPECT_EQ(fake.log(), "") << "auto ran MPS without a GPU";
}

TEST(Calibration, OnTheSimulatedDriverMeasuresItsSwitchCost) {
  t_Sim sim;
  std::vector<std::string> env;
  for (auto& [k, v] : sim.env(300)) env.push_back(k + "=" + v);
  Calibration c = run_calibration(t_bin("fikit-calibrate"), env, 20'000);
  ASSERT_TRUE(c.ok) << c.detail;
  EXPECT_EQ(c.device, "fikit simulated GPU");
  EXPECT_GT(c.switch_us, 0.3 * 300) << c.detail;
  EXPECT_LT(c.switch_us, 3 * 300) << c.detail;
}

TEST(BrokerCalibration, TimeslicingMeasuresAtStartUpUnlessGiven) {
  t_TempDir dir;
  t_Sim sim;
  {
    t_SubBroker b(dir, {"--substrate", "timeslice"}, sim.env(300));
    ASSERT_FALSE(b.status.is_null()) << b.log();
    const json& s = b.status["substrate"];
    EXPECT_EQ(s["kind"], "timeslice");
    EXPECT_EQ(s["switch_cost_source"], "measured") << b.log();
    EXPECT_GT(s["switch_cost_us"].get<double>(), 0.3 * 300) << b.log();
    EXPECT_LT(s["switch_cost_us"].get<double>(), 3 * 300) << b.log();
    EXPECT_NE(b.log().find("measured on fikit simulated GPU"), std::string::npos) << b.log();
  }
  t_SubBroker given(dir, {"--substrate", "timeslice", "--switch-cost-us", "150"}, sim.env(300));
  ASSERT_FALSE(given.status.is_null()) << given.log();
  EXPECT_EQ(given.status["substrate"]["switch_cost_source"], "given");
  EXPECT_EQ(given.status["substrate"]["switch_cost_us"], 150);
}

TEST(HpIdle, OnTheSimulatedDriverMostOfTheChainsIdleTimeIsRecognized) {
  t_TempDir dir;
  t_Sim sim;
  Env env = sim.env(200);
  t_SubBroker b(
      dir, {"--substrate", "timeslice", "--switch-cost-us", "0", "--hp-marker-every", "1"}, env);
  ASSERT_FALSE(b.status.is_null()) << b.log();
  ASSERT_TRUE(b.status.contains("hp_idle")) << b.status.dump();
  // 20 requests of 5 kernels of 200 us, 300 us of host work after each (synchronized), 2 ms
  // between requests: ~3.2 ms of true idle per request, all of it after a synchronize.
  t_Proc hp = t_spawn({t_bin("fikit-run"), "--priority", "high", "--socket", b.socket, "--",
                       t_bin("fikit-chain"), "hp", "--requests", "20", "--kernels", "5",
                       "--kernel-us", "200", "--gap-us", "300", "--request-gap-us", "2000"},
                      env, dir.file("hp"));
  ASSERT_TRUE(t_wait(hp, seconds(60)));
  ASSERT_EQ(t_exit_code(hp), 0) << t_read_file(hp.err_path);
  json h;
  ASSERT_TRUE(t_eventually(
      [&] {
        h = t_status(dir, b.socket)["hp_idle"];
        return h.is_object() && h["gaps"].get<int>() >= 20;
      },
      seconds(10)))
      << h.dump() << b.log();
  EXPECT_EQ(h["marker_every"], 1);
  EXPECT_GT(h["drained_gaps"].get<int>(), 0) << h.dump();
  EXPECT_GT(h["idle_ms"].get<double>(), 10) << h.dump();
  EXPECT_LT(h["idle_ms"].get<double>(), 1000) << h.dump();
  EXPECT_GT(h["recognized_share"].get<double>(), 0.1) << h.dump();
  EXPECT_LE(h["recognized_share"].get<double>(), 1.0) << h.dump();
  EXPECT_EQ(h["lost_records"], 0);
  EXPECT_EQ(b.stop(), 0);
  EXPECT_NE(b.log().find("HP idleness"), std::string::npos) << b.log();
}

}  // namespace
}  // namespace fikit::broker
