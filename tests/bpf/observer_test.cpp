// Loads and attaches the real GPU observer with its device filter on a test device, drives it
// with NVIDIA-shaped ioctls from a child process, and checks the counts, events and accounting
// the broker would get. Root and BPF are required (exit 77 otherwise).
#include "observer.h"

#include <fikit/util.h>
#include <sys/wait.h>

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "gpu_observer.h"
#include "t_bpf.h"
#include "t_driver.h"

namespace fikit::bpf {
namespace {

const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new t::BpfEnvironment);

std::unique_ptr<BpfObserver> open_observer(const t::TestDevice& dev) {
  BpfConfig config;
  config.test_device = dev.id();
  Result<std::unique_ptr<BpfObserver>> obs = BpfObserver::open(config);
  EXPECT_TRUE(obs.ok()) << (obs.ok() ? "" : obs.status().message());
  return obs.ok() ? std::move(obs.value()) : nullptr;
}

uint64_t calls(const ProcessUsage& u, uint32_t driver, uint32_t code) {
  for (const IoctlStat& s : u.ioctls)
    if (s.driver == driver && s.code == code) return s.count;
  return 0;
}

// Runs the test child's "script" under an observer and collects what the observer makes of it.
class ScriptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    obs_ = open_observer(dev_);
    ASSERT_TRUE(obs_);
    child_ = std::make_unique<t::Child>(std::vector<std::string>{
        t::build_file("tests/fikit_bpf_test_child"), "script", dev_.path()});
    pid_ = child_->pid();
  }

  // Pump events until the child's usage satisfies `done`; return it, or nullptr at the deadline.
  const ProcessUsage* usage_when(const std::function<bool(const ProcessUsage&)>& done) {
    const ProcessUsage* u = nullptr;
    auto collect = [&](const GpuEvent& e) {
      if (e.pid == pid_) events_.push_back(e);
    };
    auto check = [&] {
      snap_ = obs_->snapshot();
      u = t::find_usage(snap_, pid_);
      return u && done(*u);
    };
    return t::pump(*obs_, check, collect) ? u : nullptr;
  }

  void expect_final_calls(const ProcessUsage& u) {
    EXPECT_EQ(calls(u, FIKIT_DRIVER_NVIDIA, FIKIT_NV_ESC_RM_ALLOC), t::kScriptRmAllocs);
    EXPECT_EQ(calls(u, FIKIT_DRIVER_NVIDIA, FIKIT_NV_ESC_RM_FREE), t::kScriptRmFrees);
    EXPECT_EQ(calls(u, FIKIT_DRIVER_NVIDIA, FIKIT_NV_ESC_RM_CONTROL), uint64_t{t::kControls});
    EXPECT_EQ(calls(u, FIKIT_DRIVER_UVM, FIKIT_UVM_INITIALIZE), 1u);
    EXPECT_EQ(calls(u, FIKIT_DRIVER_UVM, FIKIT_UVM_CREATE_RANGE_GROUP), 2u);
    EXPECT_EQ(calls(u, FIKIT_DRIVER_UVM, FIKIT_UVM_DESTROY_RANGE_GROUP), 1u);
    EXPECT_EQ(calls(u, FIKIT_DRIVER_UVM, FIKIT_UVM_MAP_EXTERNAL_ALLOCATION), 2u);
    EXPECT_EQ(calls(u, FIKIT_DRIVER_UVM, FIKIT_UVM_FREE), 1u);
    for (const IoctlStat& s : u.ioctls) EXPECT_EQ(s.failed, s.count) << "ENOTTY on a test device";
  }

  void expect_event_counts() {
    std::map<GpuEventKind, int> seen;
    for (const GpuEvent& e : events_) seen[e.kind]++;
    EXPECT_EQ(seen[GpuEventKind::kGpuClient], 1);
    EXPECT_EQ(seen[GpuEventKind::kDeviceAlloc], 2);
    EXPECT_EQ(seen[GpuEventKind::kContextCreate], 2);  // not the one whose RM status failed
    EXPECT_EQ(seen[GpuEventKind::kChannelCreate], 2);
    EXPECT_EQ(seen[GpuEventKind::kMemAlloc], 2);
    EXPECT_EQ(seen[GpuEventKind::kMemMap], 2);
    EXPECT_EQ(seen[GpuEventKind::kStreamCreate], 2);
    EXPECT_EQ(seen[GpuEventKind::kStreamDestroy], 1);
    EXPECT_EQ(seen[GpuEventKind::kMemUnmap], 1);
    EXPECT_EQ(seen[GpuEventKind::kMemFree], 1);
    EXPECT_EQ(seen[GpuEventKind::kContextDestroy], 1);
    EXPECT_EQ(seen[GpuEventKind::kProcessExit], 1);
  }

  void expect_event_fields() {
    for (const GpuEvent& e : events_) {
      EXPECT_STREQ(e.comm, "fikit_bpf_test_") << "events name the process, not the thread";
      if (e.kind == GpuEventKind::kMemFree) {
        EXPECT_EQ(e.handle, t::kVidmem1);
        EXPECT_EQ(e.bytes, t::kVidmem1Bytes);
      }
      if (e.kind == GpuEventKind::kMemUnmap) {
        EXPECT_EQ(e.addr, t::kMapBase1);
        EXPECT_EQ(e.bytes, t::kMap1Bytes);
      }
      if (e.kind == GpuEventKind::kGpuClient) {
        EXPECT_EQ(e.client, t::kClient);
        EXPECT_NE(e.tid, pid_) << "the client was allocated in a worker thread";
      }
      if (e.kind == GpuEventKind::kProcessExit) {
        // The leader called pthread_exit long before; the process ends with the finisher. Which
        // thread passes the last exit tracepoint is not asserted: in 2 of about 100 runs here it
        // was the leader's (the test used to assert the finisher's, and failed then).
        EXPECT_GE(e.ts_ns, released_ns_) << "reported when the leader exited, not at the end";
      }
      if (e.kind == GpuEventKind::kChannelCreate) {
        EXPECT_EQ(e.rm_class, t::kClassGpfifoHopper);
      }
    }
  }

  t::TestDevice dev_;
  std::unique_ptr<BpfObserver> obs_;
  std::unique_ptr<t::Child> child_;
  pid_t pid_ = 0;
  uint64_t released_ns_ = 0;  // when the finisher thread was told to exit (CLOCK_MONOTONIC)
  std::vector<GpuEvent> events_;
  std::vector<ProcessUsage> snap_;
};

TEST_F(ScriptTest, DriverTrafficBecomesEventsAndAccounting) {
  // Phase 1: everything allocated and mapped (the maps come last).
  ASSERT_EQ(child_->read_line(), "phase1");
  const ProcessUsage* u =
      usage_when([](const auto& u) { return u.mapped_bytes == t::kMap1Bytes + t::kMap2Bytes; });
  ASSERT_NE(u, nullptr) << "phase 1 events never arrived";
  EXPECT_EQ(u->clients, 1u);
  EXPECT_EQ(u->contexts, 2u);  // the NVOS64 and the NVOS21 channel group; not the failed one
  EXPECT_EQ(u->channels, 2u);
  EXPECT_EQ(u->streams, 2u);
  EXPECT_EQ(u->device_bytes, t::kVidmem1Bytes + t::kVidmem2Bytes);
  EXPECT_EQ(u->comm, "fikit_bpf_test_");  // comm is 15 characters at most
  EXPECT_FALSE(u->exited);
  EXPECT_EQ(calls(*u, FIKIT_DRIVER_NVIDIA, FIKIT_NV_ESC_RM_CONTROL), uint64_t{t::kControls});

  // Phase 2: a stream destroyed, a mapping and a vidmem object freed, a channel group freed with
  // its channels.
  child_->go();
  ASSERT_EQ(child_->read_line(), "phase2");
  u = usage_when([](const auto& u) { return u.contexts == 1; });
  ASSERT_NE(u, nullptr) << "phase 2 events never arrived";
  EXPECT_EQ(u->channels, 0u) << "channels must go with their channel group";
  EXPECT_EQ(u->streams, 1u);
  EXPECT_EQ(u->device_bytes, t::kVidmem2Bytes);
  EXPECT_EQ(u->mapped_bytes, t::kMap2Bytes);

  // Exit: the process is reported once, with its final statistics.
  released_ns_ = fikit::now_ns();
  child_->go();
  const int status = child_->wait();
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), t::kScriptExitCode);
  u = usage_when([](const auto& u) { return u.exited; });
  ASSERT_NE(u, nullptr) << "no exit event";
  EXPECT_TRUE(WIFEXITED(u->exit_status));
  EXPECT_EQ(WEXITSTATUS(u->exit_status), t::kScriptExitCode);
  EXPECT_EQ(u->device_bytes + u->mapped_bytes, 0u);
  EXPECT_EQ(u->peak_device_bytes, t::kVidmem1Bytes + t::kVidmem2Bytes);
  EXPECT_EQ(u->peak_mapped_bytes, t::kMap1Bytes + t::kMap2Bytes);
  EXPECT_EQ(u->clients_created, 1u);
  EXPECT_EQ(u->contexts_created, 2u);
  EXPECT_EQ(u->channels_created, 2u);
  EXPECT_EQ(u->streams_created, 2u);
  expect_final_calls(*u);
  expect_event_counts();
  expect_event_fields();

  // Forgetting an exited process drops it; the observer stays healthy.
  obs_->forget(pid_);
  EXPECT_EQ(t::find_usage(obs_->snapshot(), pid_), nullptr);
  const ObserverCounters c = obs_->counters();
  EXPECT_GE(c.traced_ioctls, t::kScriptRmAllocs + t::kScriptRmFrees + t::kControls + 7);
  EXPECT_EQ(c.error_count, 0u) << "impossible state at gpu_observer.bpf.c:" << c.error_line;
  EXPECT_EQ(c.bad_events, 0u);
}

TEST(BpfObserver, IgnoresIoctlsOnOtherDevices) {
  t::TestDevice dev;
  std::unique_ptr<BpfObserver> obs = open_observer(dev);
  ASSERT_TRUE(obs);
  t::Child child({t::build_file("tests/fikit_bpf_test_child"), "foreign", dev.path(), "/dev/zero"});
  const pid_t pid = child.pid();
  ASSERT_EQ(WEXITSTATUS(child.wait()), 0);
  std::vector<ProcessUsage> snap;
  const ProcessUsage* u = nullptr;
  auto exited = [&] {
    snap = obs->snapshot();
    u = t::find_usage(snap, pid);
    return u && u->exited;
  };
  ASSERT_TRUE(t::pump(*obs, exited)) << "no exit event for a process that used the test device";
  ASSERT_EQ(u->ioctls.size(), 1u) << "only the one ioctl on the watched device counts";
  EXPECT_EQ(calls(*u, FIKIT_DRIVER_NVIDIA, FIKIT_NV_ESC_RM_CONTROL), 1u);
  EXPECT_EQ(u->clients, 0u);
}

// Two test devices stand for /dev/nvidia0 and /dev/nvidia1: contexts and device memory are split
// by the GPU their device was used through, and a device never used through one is unattributed.
TEST(BpfObserver, AttributesContextsAndMemoryToGpus) {
  t::TestDevice ctl, gpu0(5), gpu1(7);
  BpfConfig config;
  config.test_device = ctl.id();
  config.test_gpu_devices = {gpu0.id(), gpu1.id()};
  Result<std::unique_ptr<BpfObserver>> opened = BpfObserver::open(config);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  BpfObserver& obs = *opened.value();
  t::Child child(
      {t::build_file("tests/fikit_bpf_test_child"), "gpus", ctl.path(), gpu0.path(), gpu1.path()});
  ASSERT_EQ(child.read_line(), "ready");
  const pid_t pid = child.pid();
  std::vector<ProcessUsage> snap;
  const ProcessUsage* u = nullptr;
  std::vector<GpuEvent> binds;
  auto all_memory = [&] {
    snap = obs.snapshot();
    u = t::find_usage(snap, pid);
    return u && u->device_bytes == (14ull << 20) && u->contexts == 3;
  };
  ASSERT_TRUE(t::pump(obs, all_memory, [&](const GpuEvent& e) {
    if (e.pid == pid && e.kind == GpuEventKind::kGpuBind) binds.push_back(e);
  }));
  ASSERT_EQ(u->gpus.size(), 3u);
  EXPECT_EQ(u->gpus[0].minor, 0);
  EXPECT_EQ(u->gpus[0].contexts, 1u);
  EXPECT_EQ(u->gpus[0].device_bytes, t::kGpuVidmemBytes[0]);
  EXPECT_EQ(u->gpus[1].minor, 1);
  EXPECT_EQ(u->gpus[1].contexts, 1u);
  EXPECT_EQ(u->gpus[1].device_bytes, t::kGpuVidmemBytes[1]);
  EXPECT_EQ(u->gpus[2].minor, GpuShare::kUnattributed);
  EXPECT_EQ(u->gpus[2].contexts, 1u);
  EXPECT_EQ(u->gpus[2].device_bytes, t::kGpuVidmemBytes[2]);
  // Three binds: the OS event on GPU 0, the map onto GPU 1, the event object on GPU 1; none from
  // the calls on nvidiactl or the failed map.
  ASSERT_EQ(binds.size(), 3u);
  EXPECT_EQ(binds[0].handle, t::kGpuDevice[0]);
  EXPECT_EQ(binds[0].minor, 0u);
  EXPECT_EQ(binds[1].handle, t::kGpuSubdevice[1]);
  EXPECT_EQ(binds[1].minor, 1u);
  EXPECT_EQ(binds[2].handle, t::kGpuSubdevice[1]);
  EXPECT_EQ(binds[2].minor, 1u);
  child.go();
  EXPECT_EQ(WEXITSTATUS(child.wait()), 0);
  auto exited = [&] {
    snap = obs.snapshot();
    u = t::find_usage(snap, pid);
    return u && u->exited;
  };
  ASSERT_TRUE(t::pump(obs, exited));
  EXPECT_TRUE(u->gpus.empty());
}

TEST(BpfObserver, ReapsProcessesWhoseExitEventWasNotSeen) {
  t::TestDevice dev;
  std::unique_ptr<BpfObserver> obs = open_observer(dev);
  ASSERT_TRUE(obs);
  t::Child child({t::build_file("tests/fikit_bpf_test_child"), "foreign", dev.path(), "/dev/zero"});
  const pid_t pid = child.pid();
  ASSERT_EQ(WEXITSTATUS(child.wait()), 0);
  // The exit event still waits in the ring buffer: as if it had been lost.
  std::vector<pid_t> reaped;
  EXPECT_GE(obs->reap_vanished([&](const GpuEvent& e) { reaped.push_back(e.pid); }), 1);
  ASSERT_NE(std::find(reaped.begin(), reaped.end(), pid), reaped.end());
  std::vector<ProcessUsage> snap = obs->snapshot();
  const ProcessUsage* u = t::find_usage(snap, pid);
  ASSERT_NE(u, nullptr);
  EXPECT_TRUE(u->exited);
  EXPECT_EQ(u->exit_status, -1) << "unknown until the real exit event arrives";
  EXPECT_EQ(calls(*u, FIKIT_DRIVER_NVIDIA, FIKIT_NV_ESC_RM_CONTROL), 1u);

  // The late exit event brings the real status and keeps the final statistics.
  ASSERT_TRUE(t::pump(*obs, [&] {
    snap = obs->snapshot();
    u = t::find_usage(snap, pid);
    return u && u->exit_status != -1;
  }));
  EXPECT_TRUE(WIFEXITED(u->exit_status) && WEXITSTATUS(u->exit_status) == 0);
  EXPECT_EQ(calls(*u, FIKIT_DRIVER_NVIDIA, FIKIT_NV_ESC_RM_CONTROL), 1u);
  reaped.clear();
  obs->reap_vanished([&](const GpuEvent& e) { reaped.push_back(e.pid); });
  EXPECT_EQ(std::find(reaped.begin(), reaped.end(), pid), reaped.end()) << "reaped only once";
}

TEST(BpfObserver, MissingBtfFailsWithAClearMessage) {
  BpfConfig config;
  config.btf_path = "/nonexistent/vmlinux";
  Result<std::unique_ptr<BpfObserver>> obs = BpfObserver::open(config);
  ASSERT_FALSE(obs.ok());
  EXPECT_EQ(obs.status().code(), StatusCode::kNotFound);
  EXPECT_NE(obs.status().message().find("BTF"), std::string::npos) << obs.status().message();
}

TEST(BpfObserver, UnprivilegedOpenFailsWithAClearMessage) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534)) _exit(2);
    Result<std::unique_ptr<BpfObserver>> obs = BpfObserver::open(BpfConfig{});
    const std::string msg = obs.ok() ? "" : obs.status().message();
    (void)!write(fds[1], msg.data(), msg.size());
    _exit(obs.ok() ? 1 : 0);
  }
  close(fds[1]);
  std::string msg;
  char buf[256];
  for (ssize_t n; (n = read(fds[0], buf, sizeof(buf))) > 0;)
    msg.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << "an unprivileged open must fail";
  EXPECT_NE(msg.find("failed to"), std::string::npos) << msg;
  EXPECT_NE(msg.find("root"), std::string::npos) << "the message should say what to do: " << msg;
}

TEST(BpfObserver, AuditNeedsAuditMode) {
  t::TestDevice dev;
  std::unique_ptr<BpfObserver> obs = open_observer(dev);
  ASSERT_TRUE(obs);
  Result<int> r = obs->audit_process(getpid());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(obs->program_fds().size(), 3u) << "nothing is loaded for audit mode while it is off";
}

}  // namespace
}  // namespace fikit::bpf
