// The observer's user-space logic without BPF: decoding ring-buffer records, per-process
// accounting (cascading frees, exit, pid reuse), command names and run-time discovery helpers.
#include "accounting.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "bpf_env.h"
#include "gpu_event.h"
#include "gpu_observer.h"

namespace fikit::bpf {
namespace {

GpuEvent rm(GpuEventKind kind, ObjectKind obj, uint32_t parent, uint32_t handle, uint64_t bytes = 0,
            pid_t pid = 100) {
  GpuEvent e;
  e.kind = kind;
  e.object = obj;
  e.pid = pid;
  e.client = 1;
  e.parent = parent;
  e.handle = handle;
  e.bytes = bytes;
  std::strcpy(e.comm, "python");
  return e;
}

GpuEvent simple(GpuEventKind kind, uint64_t addr, uint64_t bytes = 0, pid_t pid = 100) {
  GpuEvent e;
  e.kind = kind;
  e.pid = pid;
  e.addr = addr;
  e.bytes = bytes;
  return e;
}

// A client with a device, a channel group with two channels, and 3 MiB of vidmem.
void build_tree(GpuAccounting& acc) {
  acc.apply(rm(GpuEventKind::kGpuClient, ObjectKind::kClient, 0, 1));
  acc.apply(rm(GpuEventKind::kDeviceAlloc, ObjectKind::kDevice, 1, 2));
  acc.apply(rm(GpuEventKind::kContextCreate, ObjectKind::kContext, 2, 3));
  acc.apply(rm(GpuEventKind::kChannelCreate, ObjectKind::kChannel, 3, 4));
  acc.apply(rm(GpuEventKind::kChannelCreate, ObjectKind::kChannel, 3, 5));
  acc.apply(rm(GpuEventKind::kMemAlloc, ObjectKind::kVidmem, 2, 6, 1 << 20));
  acc.apply(rm(GpuEventKind::kMemAlloc, ObjectKind::kVidmem, 2, 7, 2 << 20));
}

GpuEvent bind(uint32_t handle, uint32_t minor, pid_t pid = 100) {
  GpuEvent e;
  e.kind = GpuEventKind::kGpuBind;
  e.pid = pid;
  e.client = 1;
  e.handle = handle;
  e.minor = minor;
  return e;
}

const GpuShare* share(const ProcessUsage& u, int32_t minor) {
  for (const GpuShare& s : u.gpus)
    if (s.minor == minor) return &s;
  return nullptr;
}

// Two devices (GPUs), each with a context and memory; memory under an untracked parent.
TEST(GpuAccounting, SplitsContextsAndMemoryByGpu) {
  GpuAccounting acc;
  acc.apply(rm(GpuEventKind::kGpuClient, ObjectKind::kClient, 0, 1));
  GpuEvent dev0 = rm(GpuEventKind::kDeviceAlloc, ObjectKind::kDevice, 1, 2);
  dev0.minor = kMinorCtl;  // devices are allocated through nvidiactl: no GPU yet
  acc.apply(dev0);
  acc.apply(rm(GpuEventKind::kDeviceAlloc, ObjectKind::kDevice, 1, 20));
  acc.apply(rm(GpuEventKind::kDeviceAlloc, ObjectKind::kSubdevice, 20, 21));
  acc.apply(rm(GpuEventKind::kContextCreate, ObjectKind::kContext, 2, 3));
  acc.apply(rm(GpuEventKind::kMemAlloc, ObjectKind::kVidmem, 2, 6, 1 << 20));
  acc.apply(rm(GpuEventKind::kContextCreate, ObjectKind::kContext, 21, 23));  // under the subdevice
  acc.apply(rm(GpuEventKind::kMemAlloc, ObjectKind::kVidmem, 20, 26, 4 << 20));
  acc.apply(rm(GpuEventKind::kMemAlloc, ObjectKind::kVidmem, 99, 27, 8 << 20));  // parent unknown
  // Nothing bound yet: all of it is unattributed.
  const ProcessUsage* u = acc.find(100);
  ASSERT_EQ(u->gpus.size(), 1u);
  EXPECT_EQ(u->gpus[0].minor, GpuShare::kUnattributed);
  EXPECT_EQ(u->gpus[0].contexts, 2u);
  EXPECT_EQ(u->gpus[0].device_bytes, 13u << 20);

  // Device 2 is used through /dev/nvidia1 (an OS event on its context), device 20 through
  // /dev/nvidia0 (memory mapped through its subdevice): earlier objects move with their device.
  acc.apply(bind(3, 1));
  acc.apply(bind(21, 0));
  u = acc.find(100);
  ASSERT_EQ(u->gpus.size(), 3u);
  EXPECT_EQ(u->gpus[0].minor, 0);
  EXPECT_EQ(u->gpus[0].contexts, 1u);
  EXPECT_EQ(u->gpus[0].device_bytes, 4u << 20);
  EXPECT_EQ(u->gpus[1].minor, 1);
  EXPECT_EQ(u->gpus[1].contexts, 1u);
  EXPECT_EQ(u->gpus[1].device_bytes, 1u << 20);
  EXPECT_EQ(u->gpus[2].minor, GpuShare::kUnattributed);
  EXPECT_EQ(u->gpus[2].contexts, 0u);
  EXPECT_EQ(u->gpus[2].device_bytes, 8u << 20);

  // Later memory follows the binding; a free leaves the share.
  acc.apply(rm(GpuEventKind::kMemAlloc, ObjectKind::kVidmem, 2, 7, 2 << 20));
  acc.apply(rm(GpuEventKind::kMemFree, ObjectKind::kVidmem, 2, 6));
  EXPECT_EQ(share(*acc.find(100), 1)->device_bytes, 2u << 20);

  // A device seen through a second GPU's file is not guessed at: unattributed from then on.
  acc.apply(bind(2, 0));
  u = acc.find(100);
  EXPECT_EQ(share(*u, 1), nullptr);
  EXPECT_EQ(share(*u, GpuShare::kUnattributed)->device_bytes, (8u << 20) + (2u << 20));
  acc.apply(bind(2, 1));  // and stays so
  EXPECT_EQ(share(*acc.find(100), 1), nullptr);

  // Binds of unknown handles, of the client itself and for non-GPU minors change nothing.
  acc.apply(bind(12345, 3));
  acc.apply(bind(1, 3));
  acc.apply(bind(20, kMinorCtl));
  u = acc.find(100);
  EXPECT_EQ(share(*u, 3), nullptr);
  EXPECT_EQ(share(*u, 0)->contexts, 1u);

  // The exit releases every share.
  GpuEvent exit_event = simple(GpuEventKind::kProcessExit, 0);
  acc.apply(exit_event);
  EXPECT_TRUE(acc.find(100)->gpus.empty());
}

TEST(GpuAccounting, ObjectAllocatedThroughGpuFileBindsItsDevice) {
  GpuAccounting acc;
  acc.apply(rm(GpuEventKind::kGpuClient, ObjectKind::kClient, 0, 1));
  acc.apply(rm(GpuEventKind::kDeviceAlloc, ObjectKind::kDevice, 1, 2));
  GpuEvent ctx = rm(GpuEventKind::kContextCreate, ObjectKind::kContext, 2, 3);
  ctx.minor = 4;  // allocated on /dev/nvidia4's fd
  acc.apply(ctx);
  acc.apply(rm(GpuEventKind::kMemAlloc, ObjectKind::kVidmem, 2, 6, 1 << 20));
  const ProcessUsage* u = acc.find(100);
  ASSERT_EQ(u->gpus.size(), 1u);
  EXPECT_EQ(u->gpus[0].minor, 4);
  EXPECT_EQ(u->gpus[0].contexts, 1u);
  EXPECT_EQ(u->gpus[0].device_bytes, 1u << 20);
}

TEST(GpuEventDecode, GpuBindCarriesMinor) {
  fikit_gpu_event raw{};
  raw.kind = FIKIT_EV_GPU_BIND;
  raw.pid = 7;
  raw.client = 1;
  raw.handle = 0xcaf00001;
  raw.minor = 3;
  GpuEvent e;
  ASSERT_TRUE(decode_event(&raw, sizeof(raw), &e));
  EXPECT_EQ(e.kind, GpuEventKind::kGpuBind);
  EXPECT_EQ(e.minor, 3u);
  EXPECT_NE(describe_event(e).find("/dev/nvidia3"), std::string::npos);
}

TEST(GpuAccounting, CountsObjectsAndMemory) {
  GpuAccounting acc;
  build_tree(acc);
  const ProcessUsage* u = acc.find(100);
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->comm, "python");
  EXPECT_EQ(u->clients, 1u);
  EXPECT_EQ(u->contexts, 1u);
  EXPECT_EQ(u->channels, 2u);
  EXPECT_EQ(u->device_bytes, 3u << 20);
}

TEST(GpuAccounting, FreeCascadesToChildrenAndReportsTheirBpfKeys) {
  GpuAccounting acc;
  build_tree(acc);
  StaleKeys stale = acc.apply(rm(GpuEventKind::kContextDestroy, ObjectKind::kContext, 2, 3));
  const ProcessUsage* u = acc.find(100);
  EXPECT_EQ(u->contexts, 0u);
  EXPECT_EQ(u->channels, 0u);
  EXPECT_EQ(u->device_bytes, 3u << 20) << "memory hangs off the device, not the channel group";
  ASSERT_EQ(stale.objects.size(), 2u) << "the two channels; BPF already dropped the group";
  EXPECT_EQ(stale.objects[0].second + stale.objects[1].second, 4u + 5u);
}

TEST(GpuAccounting, ClientFreeReleasesEverything) {
  GpuAccounting acc;
  build_tree(acc);
  acc.apply(rm(GpuEventKind::kMemAlloc, ObjectKind::kVidmem, 99, 8, 1 << 20));  // unknown parent
  StaleKeys stale = acc.apply(rm(GpuEventKind::kClientFree, ObjectKind::kClient, 0, 1));
  const ProcessUsage* u = acc.find(100);
  EXPECT_EQ(u->clients + u->contexts + u->channels, 0u);
  EXPECT_EQ(u->device_bytes, 0u);
  EXPECT_EQ(u->peak_device_bytes, 4u << 20);
  EXPECT_EQ(u->clients_created, 1u);
  EXPECT_EQ(u->contexts_created, 1u);
  EXPECT_EQ(u->channels_created, 2u);
  EXPECT_EQ(stale.objects.size(), 7u);
}

TEST(GpuAccounting, MappingsAndStreams) {
  GpuAccounting acc;
  acc.apply(simple(GpuEventKind::kMemMap, 0x1000, 4096));
  acc.apply(simple(GpuEventKind::kMemMap, 0x9000, 8192));
  acc.apply(simple(GpuEventKind::kMemMap, 0x9000, 100));  // mapped again: replaces
  acc.apply(simple(GpuEventKind::kStreamCreate, 7));
  acc.apply(simple(GpuEventKind::kStreamCreate, 8));
  acc.apply(simple(GpuEventKind::kStreamDestroy, 7));
  acc.apply(simple(GpuEventKind::kMemUnmap, 0x1000, 4096));
  acc.apply(simple(GpuEventKind::kMemUnmap, 0x5000, 1));  // unknown base: ignored
  const ProcessUsage* u = acc.find(100);
  EXPECT_EQ(u->mapped_bytes, 100u);
  EXPECT_EQ(u->peak_mapped_bytes, 4096u + 8192u);
  EXPECT_EQ(u->streams, 1u);
  EXPECT_EQ(u->streams_created, 2u);
}

TEST(GpuAccounting, ExitReleasesAndPidReuseStartsAfresh) {
  GpuAccounting acc;
  build_tree(acc);
  acc.apply(simple(GpuEventKind::kMemMap, 0x1000, 4096));
  GpuEvent exit_event = simple(GpuEventKind::kProcessExit, 0);
  exit_event.exit_status = 3 << 8;
  StaleKeys stale = acc.apply(exit_event);
  EXPECT_EQ(stale.objects.size(), 7u);
  ASSERT_EQ(stale.mappings.size(), 1u);
  acc.set_final(100, {IoctlStat{1, 0x2b, 5, 500, 0}}, {});
  const ProcessUsage* u = acc.find(100);
  EXPECT_TRUE(u->exited);
  EXPECT_EQ(u->exit_status, 3 << 8);
  EXPECT_EQ(u->device_bytes + u->mapped_bytes + u->contexts, 0u);
  EXPECT_EQ(u->ioctls.size(), 1u);
  EXPECT_TRUE(acc.live_pids().empty());

  acc.apply(rm(GpuEventKind::kGpuClient, ObjectKind::kClient, 0, 1));  // a new process, same pid
  u = acc.find(100);
  EXPECT_FALSE(u->exited);
  EXPECT_EQ(u->clients, 1u);
  EXPECT_TRUE(u->ioctls.empty());
}

TEST(GpuAccounting, KeepsABoundedNumberOfExitedProcesses) {
  GpuAccounting acc;
  for (pid_t pid = 1; pid <= static_cast<pid_t>(GpuAccounting::kMaxExited) + 10; pid++)
    acc.apply(simple(GpuEventKind::kProcessExit, 0, 0, pid));
  EXPECT_EQ(acc.processes().size(), GpuAccounting::kMaxExited);
  EXPECT_EQ(acc.find(1), nullptr) << "the oldest exited process goes first";
  acc.forget(static_cast<pid_t>(GpuAccounting::kMaxExited) + 10);
  EXPECT_EQ(acc.processes().size(), GpuAccounting::kMaxExited - 1);
}

TEST(GpuEvent, DecodesRingBufferRecords) {
  fikit_gpu_event raw{};
  raw.kind = FIKIT_EV_RM_ALLOC;
  raw.obj_kind = FIKIT_OBJ_VIDMEM;
  raw.pid = 42;
  raw.rm_class = 0x40;
  raw.handle = 0xcaf0;
  raw.bytes = 2 << 20;
  std::strcpy(raw.comm, "train.py");
  GpuEvent e;
  ASSERT_TRUE(decode_event(&raw, sizeof(raw), &e));
  EXPECT_EQ(e.kind, GpuEventKind::kMemAlloc);
  EXPECT_EQ(e.pid, 42);
  EXPECT_EQ(e.bytes, 2u << 20);
  EXPECT_EQ(describe_event(e),
            "pid 42 (train.py): mem-alloc, class 0x40 handle 0xcaf0, 2097152 bytes");

  raw.kind = FIKIT_EV_RM_FREE;
  raw.obj_kind = FIKIT_OBJ_CONTEXT;
  ASSERT_TRUE(decode_event(&raw, sizeof(raw), &e));
  EXPECT_EQ(e.kind, GpuEventKind::kContextDestroy);

  EXPECT_FALSE(decode_event(&raw, sizeof(raw) - 1, &e)) << "short record";
  raw.kind = 99;
  EXPECT_FALSE(decode_event(&raw, sizeof(raw), &e)) << "unknown kind";
  raw.kind = FIKIT_EV_RM_ALLOC;
  raw.obj_kind = FIKIT_OBJ_NONE;
  EXPECT_FALSE(decode_event(&raw, sizeof(raw), &e)) << "RM events always carry an object kind";
}

TEST(GpuEvent, NamesDriverCommands) {
  EXPECT_EQ(command_name(FIKIT_DRIVER_NVIDIA, FIKIT_NV_ESC_RM_ALLOC), "RM_ALLOC");
  EXPECT_EQ(command_name(FIKIT_DRIVER_NVIDIA, 214), "SYS_PARAMS");
  EXPECT_EQ(command_name(FIKIT_DRIVER_UVM, FIKIT_UVM_MAP_EXTERNAL_ALLOCATION),
            "UVM_MAP_EXTERNAL_ALLOCATION");
  EXPECT_EQ(command_name(FIKIT_DRIVER_UVM, FIKIT_UVM_INITIALIZE), "UVM_INITIALIZE");
  EXPECT_EQ(command_name(FIKIT_DRIVER_NVIDIA, 0x2c), "nv 0x2c");
  EXPECT_EQ(command_name(FIKIT_DRIVER_UVM, 250), "uvm 250");
}

TEST(BpfEnv, FindsCharacterMajorsInProcDevices) {
  char path[] = "/tmp/fikit-devices-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << "Character devices:\n  1 mem\n195 nvidia-frontend\n238 nvidia-uvm\n"
                         "241 nvidia-caps\n\nBlock devices:\n  7 loop\n239 nvidia-block\n";
  EXPECT_EQ(char_major("nvidia-uvm", path), 238u);
  EXPECT_EQ(char_major("mem", path), 1u);
  EXPECT_EQ(char_major("loop", path), 0u) << "block devices do not count";
  EXPECT_EQ(char_major("nvidia-block", path), 0u);
  EXPECT_EQ(char_major("nvidia-uvm", "/nonexistent"), 0u);
  unlink(path);
}

TEST(BpfEnv, DeviceNumbersAndMappedLibraries) {
  Result<DeviceId> null_dev = char_device_of("/dev/null");
  ASSERT_TRUE(null_dev.ok()) << null_dev.status().message();
  EXPECT_EQ(null_dev.value().major, 1u);
  EXPECT_EQ(null_dev.value().minor, 3u);
  EXPECT_EQ(kernel_dev(null_dev.value()), (1u << 20) | 3u);
  EXPECT_FALSE(char_device_of("/tmp").ok());

  Result<std::string> libc = mapped_library(getpid(), "libc.so");
  ASSERT_TRUE(libc.ok()) << libc.status().message();
  EXPECT_EQ(libc.value().rfind("/proc/" + std::to_string(getpid()) + "/root/", 0), 0u);
  EXPECT_EQ(access(libc.value().c_str(), R_OK), 0) << libc.value();
  EXPECT_FALSE(mapped_library(getpid(), "libcuda-not-here.so").ok());
}

}  // namespace
}  // namespace fikit::bpf
