// On a real NVIDIA GPU: the observer, with its default device filter (major 195 and nvidia-uvm
// from /proc/devices), sees a CUDA program and a PyTorch program become GPU clients, create
// contexts and streams, allocate and free device memory, and exit. Exit 77 without a GPU, root or
// BPF; the PyTorch test skips without torch.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "t_bpf.h"

namespace fikit::bpf {
namespace {

class GpuEnvironment : public t::BpfEnvironment {
 public:
  void SetUp() override {
    if (access("/dev/nvidiactl", F_OK) != 0) {
      std::fprintf(stderr, "skipping GPU observer tests: no /dev/nvidiactl\n");
      std::exit(77);
    }
    t::BpfEnvironment::SetUp();
  }
};

const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new GpuEnvironment);
constexpr uint64_t kMiB = 1 << 20;

std::unique_ptr<BpfObserver> open_observer() {
  Result<std::unique_ptr<BpfObserver>> obs = BpfObserver::open(BpfConfig{});
  EXPECT_TRUE(obs.ok()) << (obs.ok() ? "" : obs.status().message());
  if (!obs.ok()) return nullptr;
  EXPECT_NE(obs.value()->config().uvm_major, 0u) << "nvidia-uvm not found in /proc/devices";
  return std::move(obs.value());
}

void print_usage(const char* when, const ProcessUsage& u) {
  uint64_t ioctls = 0;
  for (const IoctlStat& s : u.ioctls) ioctls += s.count;
  std::printf(
      "%s: clients %u contexts %u channels %u streams %u device %.1f MiB mapped %.1f MiB "
      "(created: %u contexts, %u channels, %u streams) ioctls %llu\n",
      when, u.clients, u.contexts, u.channels, u.streams,
      static_cast<double>(u.device_bytes) / kMiB, static_cast<double>(u.mapped_bytes) / kMiB,
      u.contexts_created, u.channels_created, u.streams_created,
      static_cast<unsigned long long>(ioctls));
}

// Step `child` (which prints "allocated", then "freed") and check what the observer saw.
void check_lifecycle(BpfObserver& obs, t::Child& child, uint64_t bytes, uint32_t streams) {
  const pid_t pid = child.pid();
  std::vector<ProcessUsage> snap;
  const ProcessUsage* u = nullptr;
  auto usage = [&] {
    snap = obs.snapshot();
    u = t::find_usage(snap, pid);
    return u;
  };
  ASSERT_EQ(child.read_line(), "allocated");
  ASSERT_TRUE(t::pump(obs, [&] { return usage() && u->device_bytes >= bytes; }))
      << "device memory never seen";
  print_usage("allocated", *u);
  EXPECT_GE(u->clients, 1u);
  EXPECT_GE(u->contexts, 1u);
  EXPECT_GE(u->channels, 1u);
  EXPECT_GE(u->streams, streams);
  EXPECT_GE(u->mapped_bytes, bytes);
  const uint64_t device_before = u->device_bytes;
  const uint32_t streams_before = u->streams;

  child.go();
  ASSERT_EQ(child.read_line(), "freed");
  ASSERT_TRUE(t::pump(obs, [&] { return usage() && u->device_bytes + bytes <= device_before; }))
      << "the free of device memory never seen";
  print_usage("freed", *u);
  EXPECT_LE(u->streams + streams, streams_before);

  child.go();
  const int status = child.wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_TRUE(t::pump(obs, [&] { return usage() && u->exited; })) << "no exit event";
  print_usage("exited", *u);
  EXPECT_EQ(u->device_bytes, 0u);
  EXPECT_GE(u->peak_device_bytes, bytes);
  const ObserverCounters c = obs.counters();
  EXPECT_EQ(c.drop_ringbuf + c.drop_stats + c.drop_objects, 0u);
  EXPECT_EQ(c.error_count, 0u) << "impossible state at gpu_observer.bpf.c:" << c.error_line;
}

TEST(GpuObserver, CudaProgramLifecycle) {
  std::unique_ptr<BpfObserver> obs = open_observer();
  ASSERT_TRUE(obs);
  t::Child child({t::build_file("tests/fikit_bpf_gpu_workload"), "lifecycle"});
  check_lifecycle(*obs, child, 256 * kMiB, 3);
}

TEST(GpuObserver, PyTorchProgramLifecycle) {
  if (std::system("python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null") != 0)
    GTEST_SKIP() << "no PyTorch with CUDA";
  std::unique_ptr<BpfObserver> obs = open_observer();
  ASSERT_TRUE(obs);
  const char* script =
      "import sys, torch\n"
      "x = torch.empty(512 << 20, dtype=torch.uint8, device='cuda')\n"
      "s = [torch.cuda.Stream() for _ in range(2)]\n"
      "torch.cuda.synchronize()\n"
      "print('allocated', flush=True); sys.stdin.readline()\n"
      "del x, s; torch.cuda.synchronize(); torch.cuda.empty_cache()\n"
      "print('freed', flush=True); sys.stdin.readline()\n";
  t::Child child({"/usr/bin/env", "python3", "-c", script});
  check_lifecycle(*obs, child, 512 * kMiB, 0);
}

}  // namespace
}  // namespace fikit::bpf
