// A real fikit-broker with its GPU-driver observer pointed at a test device (the hidden
// --bpf-test-device): a process that issues NVIDIA-shaped ioctls without registering is an
// unmanaged tenant in `status --json` with its device memory, and its exit is seen; a registered
// tenant that issues them is merged (not unmanaged) and gets its memory; audit mode counts an
// unmanaged process's launches. Root and BPF are required (exit 77 otherwise).
#include <fcntl.h>
#include <linux/ioctl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gpu_observer.h"
#include "integration/harness.h"
#include "integration/operator_users.h"
#include "integration/status_query.h"
#include "raw_tenant.h"
#include "t_bpf.h"
#include "t_driver.h"

namespace fikit::test {
namespace {

using nlohmann::json;

const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new t::BpfEnvironment);

// A broker whose observer decodes the test device as the NVIDIA driver; up once the observer is
// loaded (the socket listens before that).
class ObservedBroker {
 public:
  explicit ObservedBroker(const t::TestDevice& dev, std::vector<std::string> extra = {}) {
    const t::TestDevice& d = dev;
    extra.insert(extra.begin(), {"--bpf-test-device", std::to_string(d.id().major) + ":" +
                                                          std::to_string(d.id().minor)});
    broker_ = std::make_unique<t_Broker>(dir_, "none", extra);
    json doc;
    loaded_ = t_eventually(
        [&] {
          doc = t_status(broker_->socket());
          return doc.is_object() && doc.contains("gpu");
        },
        std::chrono::seconds(20));
    EXPECT_TRUE(loaded_) << "no status from the broker: " << log();
    if (loaded_) {
      EXPECT_EQ(doc["gpu"]["observer"], "loaded") << doc["gpu"].dump();
      loaded_ = doc["gpu"]["observer"] == "loaded";
    }
  }
  bool loaded() const { return loaded_; }
  const std::string& socket() const { return broker_->socket(); }
  std::string log() const { return t_read_file(broker_->proc().err_path); }

  // Poll the status until `pid`'s GPU entry satisfies `done`; return it (null json on timeout).
  json wait_process(pid_t pid, const std::function<bool(const json&)>& done) {
    json p;
    bool ok = t_eventually(
        [&] {
          last_ = t_status(socket());
          p = t_gpu_process(last_, pid);
          return !p.is_null() && done(p);
        },
        std::chrono::seconds(20));
    return ok ? p : json();
  }
  const json& last() const { return last_; }
  bool log_has(const std::string& text) {
    return t_eventually([&] { return log().find(text) != std::string::npos; },
                        std::chrono::seconds(20));
  }

 private:
  t_TempDir dir_;
  std::unique_ptr<t_Broker> broker_;
  bool loaded_ = false;
  json last_;
};

// With two test devices standing for /dev/nvidia0 and /dev/nvidia1, status splits the process's
// contexts and device memory by GPU (JSON and table), with the unattributed share apart. (No
// NVIDIA driver here: the GPUs have no index or UUID.)
TEST(BrokerObserver, StatusShowsMemoryAndContextsPerGpu) {
  t::TestDevice dev, gpu0(5), gpu1(7);
  ObservedBroker broker(dev, {"--bpf-test-gpu-device", "1:5,1:7"});
  ASSERT_TRUE(broker.loaded());
  t::Child child(
      {t::build_file("tests/fikit_bpf_test_child"), "gpus", dev.path(), gpu0.path(), gpu1.path()});
  const pid_t pid = child.pid();
  ASSERT_EQ(child.read_line(), "ready");
  json p = broker.wait_process(
      pid, [](const json& p) { return p["device_bytes"] == (14 << 20) && p["gpus"].size() == 3; });
  ASSERT_FALSE(p.is_null()) << broker.last().dump(1);
  const json& gpus = p["gpus"];
  EXPECT_EQ(gpus[0]["minor"], 0);
  EXPECT_EQ(gpus[0]["contexts"], 1);
  EXPECT_EQ(gpus[0]["device_bytes"], t::kGpuVidmemBytes[0]);
  EXPECT_EQ(gpus[1]["minor"], 1);
  EXPECT_EQ(gpus[1]["device_bytes"], t::kGpuVidmemBytes[1]);
  EXPECT_TRUE(gpus[2]["minor"].is_null());
  EXPECT_EQ(gpus[2]["device_bytes"], t::kGpuVidmemBytes[2]);
  t_TempDir d;
  t_Proc st =
      t_spawn({t_bin("fikit-broker"), "status", "--socket", broker.socket()}, {}, d.file("status"));
  ASSERT_TRUE(t_wait(st, std::chrono::seconds(10)));
  const std::string text = t_read_file(st.out_path);
  const std::string pre = "pid " + std::to_string(pid) + ": ";
  EXPECT_NE(text.find(pre + "/dev/nvidia1 1 ctx 4.0M"), std::string::npos) << text;
  EXPECT_NE(text.find(pre + "unattributed 1 ctx 8.0M"), std::string::npos) << text;
  child.go();
  EXPECT_EQ(WEXITSTATUS(child.wait()), 0);
}

TEST(BrokerObserver, UnmanagedProcessShownWithItsMemoryAndExit) {
  t::TestDevice dev;
  ObservedBroker broker(dev);
  ASSERT_TRUE(broker.loaded());
  // The MPS server makes its clients' GPU objects: listed as such, never warned about. (Started
  // first, so its grace period would end before the other's.)
  t_TempDir bin;
  const std::string mps = bin.file("nvidia-cuda-mps-server");
  ASSERT_EQ(symlink(t::build_file("tests/fikit_bpf_test_child").c_str(), mps.c_str()), 0);
  t::Child server({mps, "script", dev.path()});
  ASSERT_EQ(server.read_line(), "phase1");
  t::Child child({t::build_file("tests/fikit_bpf_test_child"), "script", dev.path()});
  const pid_t pid = child.pid();
  ASSERT_EQ(child.read_line(), "phase1");
  json p = broker.wait_process(pid, [](const json& p) {
    return p["device_bytes"] == t::kVidmem1Bytes + t::kVidmem2Bytes && p["streams"] == 2 &&
           p["mapped_bytes"] == t::kMap1Bytes + t::kMap2Bytes;
  });
  ASSERT_FALSE(p.is_null()) << broker.last().dump(1);
  EXPECT_EQ(p["kind"], "unmanaged");
  EXPECT_EQ(p["tenant"], 0);
  EXPECT_EQ(p["state"], "running");
  EXPECT_EQ(p["name"], "fikit_bpf_test_");
  EXPECT_EQ(p["clients"], 1);
  EXPECT_EQ(p["contexts"], 2);
  EXPECT_EQ(p["channels"], 2);
  EXPECT_GE(broker.last()["gpu"]["unmanaged"].get<int>(), 1);
  EXPECT_TRUE(t_tenant(broker.last(), pid).is_null());
  // The log names it once its grace period (libfikit registers at its first launch) is over.
  EXPECT_TRUE(broker.log_has("unmanaged GPU process: pid " + std::to_string(pid))) << broker.log();
  json s = broker.wait_process(server.pid(), [](const json& p) { return p["device_bytes"] > 0; });
  EXPECT_EQ(s["kind"], "mps-server") << s.dump();
  EXPECT_EQ(broker.log().find("unmanaged GPU process: pid " + std::to_string(server.pid())),
            std::string::npos)
      << broker.log();

  child.go();
  ASSERT_EQ(child.read_line(), "phase2");
  p = broker.wait_process(pid, [](const json& p) { return p["device_bytes"] == t::kVidmem2Bytes; });
  ASSERT_FALSE(p.is_null()) << "the free was not seen: " << broker.last().dump(1);
  EXPECT_EQ(p["contexts"], 1);
  EXPECT_EQ(p["streams"], 1);

  child.go();
  const int status = child.wait();
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == t::kScriptExitCode);
  p = broker.wait_process(pid, [](const json& p) { return p["state"] == "exited"; });
  ASSERT_FALSE(p.is_null()) << "the exit was not seen: " << broker.last().dump(1);
  EXPECT_EQ(p["kind"], "unmanaged");
  EXPECT_EQ(p["exit_code"], t::kScriptExitCode);
  EXPECT_EQ(p["device_bytes"], 0);
  EXPECT_EQ(p["peak_device_bytes"], t::kVidmem1Bytes + t::kVidmem2Bytes);
  EXPECT_GE(p["ioctls"].get<uint64_t>(), t::kScriptRmAllocs);
  EXPECT_TRUE(broker.log_has("unmanaged GPU process pid " + std::to_string(pid) + " (")) << "exit";
}

TEST(BrokerObserver, TableListsTheUnmanagedProcess) {
  t::TestDevice dev;
  ObservedBroker broker(dev);
  ASSERT_TRUE(broker.loaded());
  t::Child child({t::build_file("tests/fikit_bpf_test_child"), "script", dev.path()});
  ASSERT_EQ(child.read_line(), "phase1");
  ASSERT_FALSE(
      broker
          .wait_process(child.pid(),
                        [](const json& p) { return p["device_bytes"].get<uint64_t>() > 0; })
          .is_null());
  t_TempDir d;
  t_Proc st =
      t_spawn({t_bin("fikit-broker"), "status", "--socket", broker.socket()}, {}, d.file("status"));
  ASSERT_TRUE(t_wait(st, std::chrono::seconds(10)));
  const std::string table = t_read_file(st.out_path);
  EXPECT_EQ(t_exit_code(st), 0) << t_read_file(st.err_path);
  EXPECT_NE(table.find("GPU observer: loaded (test device 1:3)"), std::string::npos) << table;
  EXPECT_NE(table.find(std::to_string(child.pid()) + " fikit_bpf_test  UNMGD running"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("6.0M"), std::string::npos) << table;
}

// gpu.processes in `status` is filtered like the tenants: a user who is not an admin sees the
// GPU processes that are theirs (by uid) and a count of the others'; root sees all, with uids.
TEST(BrokerObserver, StatusShowsOthersGpuProcessesToAdminsOnly) {
  if (!t_can_make_users()) GTEST_SKIP() << "needs root, useradd and groupadd";
  t_User viewer("gpuview");
  ASSERT_TRUE(viewer.ok());
  t::TestDevice dev;
  ObservedBroker broker(dev, {"--admin-group", "", "--tenant-group", ""});
  ASSERT_TRUE(broker.loaded());
  std::string socket_dir = broker.socket().substr(0, broker.socket().rfind('/'));
  ASSERT_EQ(chmod(socket_dir.c_str(), 0755), 0);  // the viewer reaches the socket
  t::Child root_child({t::build_file("tests/fikit_bpf_test_child"), "script", dev.path()});
  ASSERT_EQ(root_child.read_line(), "phase1");
  // The viewer's process: /dev/null has the test device's numbers and is open to everyone.
  t::Child own({"/usr/bin/setpriv", "--reuid", std::to_string(viewer.uid()), "--regid",
                std::to_string(viewer.gid()), "--clear-groups",
                t::build_file("tests/fikit_bpf_test_child"), "script", "/dev/null"});
  ASSERT_EQ(own.read_line(), "phase1");
  auto has_memory = [](const json& p) { return p["device_bytes"].get<uint64_t>() > 0; };
  ASSERT_FALSE(broker.wait_process(root_child.pid(), has_memory).is_null()) << broker.last();
  json mine = broker.wait_process(own.pid(), has_memory);
  ASSERT_FALSE(mine.is_null()) << broker.last();
  EXPECT_EQ(mine["uid"], viewer.uid());
  EXPECT_EQ(t_gpu_process(broker.last(), root_child.pid())["uid"], 0) << "root sees every uid";

  t_TempDir d;
  std::string out;
  ASSERT_EQ(t_run({t_bin("fikit-broker"), "status", "--json", "--socket", broker.socket()}, d, &out,
                  &viewer),
            0)
      << out;
  json seen = json::parse(out, nullptr, false);
  ASSERT_TRUE(seen.is_object()) << out;
  EXPECT_FALSE(t_gpu_process(seen, own.pid()).is_null()) << "the viewer's own process: " << out;
  EXPECT_TRUE(t_gpu_process(seen, root_child.pid()).is_null()) << "root's process hidden: " << out;
  EXPECT_GE(seen["gpu"]["processes_of_others"].get<int>(), 1) << out;
}

// --bpf-stats: the observer's programs are listed with the kernel's run count and time, which grow
// with the ioctls they trace (the metrics' fikit_bpf_program_runs_total and _run_seconds_total).
TEST(BrokerObserver, BpfStatsCountTheProgramsRuns) {
  t::TestDevice dev;
  ObservedBroker broker(dev, {"--bpf-stats"});
  ASSERT_TRUE(broker.loaded());
  t::Child child({t::build_file("tests/fikit_bpf_test_child"), "script", dev.path()});
  ASSERT_EQ(child.read_line(), "phase1");
  ASSERT_FALSE(
      broker
          .wait_process(child.pid(),
                        [](const json& p) { return p["device_bytes"].get<uint64_t>() > 0; })
          .is_null());
  const json& g = broker.last()["gpu"];
  EXPECT_EQ(g["run_stats"], true) << g.dump();
  uint64_t runs = 0, run_ns = 0;
  for (const json& p : g["programs"]) {
    EXPECT_FALSE(p["name"].get<std::string>().empty());
    runs += p["runs"].get<uint64_t>();
    run_ns += p["run_ns"].get<uint64_t>();
  }
  EXPECT_GE(g["programs"].size(), 2u) << g.dump();
  EXPECT_GE(runs, t::kScriptRmAllocs) << g.dump();
  EXPECT_GT(run_ns, 0u) << g.dump();
}

// Issue the driver calls of a process with one context and 2 MiB of device memory.
void gpu_calls(const std::string& dev) {
  const int fd = open(dev.c_str(), O_RDWR | O_CLOEXEC);
  auto nv = [](uint32_t nr, uint32_t size) {
    return _IOC(_IOC_READ | _IOC_WRITE, FIKIT_NV_IOCTL_MAGIC, nr, size);
  };
  auto alloc = [&](uint32_t parent, uint32_t handle, uint32_t cls, void* params) {
    t::Nvos64 p{t::kClient, parent, handle, cls, reinterpret_cast<uintptr_t>(params),
                0,          0,      0,      0,   0};
    (void)!ioctl(fd, nv(FIKIT_NV_ESC_RM_ALLOC, sizeof(p)), &p);
  };
  t::Nvos64 client{0, 0, t::kClient, FIKIT_CLASS_ROOT_CLIENT, 0, 0, 0, 0, 0, 0};
  (void)!ioctl(fd, nv(FIKIT_NV_ESC_RM_ALLOC, sizeof(client)), &client);
  alloc(t::kClient, t::kDevice, FIKIT_CLASS_DEVICE, nullptr);
  alloc(t::kDevice, t::kTsg, FIKIT_CLASS_CHANNEL_GROUP, nullptr);
  t::MemoryParams mem{};
  mem.size = t::kVidmem1Bytes;
  alloc(t::kDevice, t::kVidmem1, FIKIT_CLASS_MEMORY_LOCAL_USER, &mem);
  close(fd);
}

// A forked process that registers as a tenant by hand, then makes GPU driver calls; it prints
// its tenant id and exits with code 5 when told.
class TenantChild {
 public:
  TenantChild(const std::string& socket, const std::string& dev) {
    int up[2], down[2];
    if (pipe(up) != 0 || pipe(down) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      close(up[0]);
      close(down[1]);
      RawTenant tenant;
      if (!tenant.connect_and_register(socket, 0, "bpf-tenant")) _exit(2);
      gpu_calls(dev);
      dprintf(up[1], "%u\n", tenant.reply().tenant_id);
      char c;
      (void)!read(down[0], &c, 1);
      _exit(5);
    }
    close(up[1]);
    close(down[0]);
    from_ = up[0];
    to_ = down[1];
  }
  ~TenantChild() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(from_);
    close(to_);
  }
  pid_t pid() const { return pid_; }
  // The tenant id it printed, or 0 (it failed to register).
  unsigned tenant_id() {
    char buf[32] = {};
    ssize_t n = read(from_, buf, sizeof(buf) - 1);
    return n > 0 ? static_cast<unsigned>(std::stoul(buf)) : 0;
  }
  int exit_and_wait() {
    (void)!write(to_, "x", 1);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_ = -1;
  int from_ = -1;
  int to_ = -1;
};

TEST(BrokerObserver, RegisteredTenantIsMergedAndGetsItsMemory) {
  t::TestDevice dev;
  ObservedBroker broker(dev);
  ASSERT_TRUE(broker.loaded());
  TenantChild child(broker.socket(), dev.path());
  const pid_t pid = child.pid();
  const unsigned id = child.tenant_id();
  ASSERT_NE(id, 0u) << "the child failed to register: " << broker.log();
  json p = broker.wait_process(pid, [](const json& p) { return p["device_bytes"] > 0; });
  ASSERT_FALSE(p.is_null()) << broker.last().dump(1);
  EXPECT_EQ(p["kind"], "tenant");
  EXPECT_EQ(p["tenant"], id);
  EXPECT_EQ(p["device_bytes"], t::kVidmem1Bytes);
  EXPECT_EQ(p["contexts"], 1);
  EXPECT_FALSE(t_tenant(broker.last(), pid).is_null()) << "listed as a tenant too";

  const int status = child.exit_and_wait();
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 5);
  p = broker.wait_process(pid, [](const json& p) { return p["state"] == "exited"; });
  ASSERT_FALSE(p.is_null()) << broker.last().dump(1);
  EXPECT_EQ(p["kind"], "tenant") << "still the tenant's, though it was reaped";
  EXPECT_EQ(p["tenant"], id);
  EXPECT_EQ(p["exit_code"], 5);
  EXPECT_EQ(p["peak_device_bytes"], t::kVidmem1Bytes);
  EXPECT_TRUE(t_tenant(broker.last(), pid).is_null()) << "reaped";
  EXPECT_TRUE(broker.log_has("tenant " + std::to_string(id) + " (pid " + std::to_string(pid) +
                             ", \"bpf-tenant\") exited (exit code 5)"))
      << broker.log();
  EXPECT_EQ(broker.log().find("unmanaged GPU process: pid " + std::to_string(pid)),
            std::string::npos);
}

TEST(BrokerObserver, AuditModeCountsTheLaunchesOfAnUnmanagedProcess) {
  t::TestDevice dev;
  ObservedBroker broker(dev, {"--bpf-test-audit", t::build_file("tests/libfikit_bpf_testlib.so") +
                                                      ":fikit_test_launch,fikit_test_launch_ex"});
  ASSERT_TRUE(broker.loaded());
  constexpr int kLaunches = 1000;
  t::Child child({t::build_file("tests/fikit_bpf_test_child"), "launch", dev.path(),
                  std::to_string(kLaunches)});
  const pid_t pid = child.pid();
  ASSERT_EQ(child.read_line(), "ready");
  json p = broker.wait_process(pid, [](const json& p) { return p["audited"] == true; });
  ASSERT_FALSE(p.is_null()) << broker.log();
  child.go();
  ASSERT_EQ(child.read_line(), "done");
  p = broker.wait_process(pid, [](const json& p) { return p["launches"] == kLaunches * 3 / 2; });
  EXPECT_FALSE(p.is_null()) << broker.last().dump(1);
  child.go();
  EXPECT_EQ(child.wait(), 0);
  p = broker.wait_process(pid, [](const json& p) { return p["state"] == "exited"; });
  ASSERT_FALSE(p.is_null());
  EXPECT_EQ(p["launches"], kLaunches * 3 / 2) << "kept with its final statistics";
  EXPECT_TRUE(broker.log_has("auditing the kernel launches of pid " + std::to_string(pid)));
}

}  // namespace
}  // namespace fikit::test
