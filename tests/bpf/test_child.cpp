// fikit_bpf_test_child: drives the GPU observer without a GPU. It issues ioctls with NVIDIA-shaped
// command numbers and parameter blocks on a test character device that the observer is told to
// decode as the driver, and calls the test library's "launch" functions for the audit test.
// The parent steps it through phases over stdin/stdout (one line each way).
//
//   script DEV           allocations, maps, streams; "phase1"; frees; "phase2"; exit(3) from a
//                        thread that outlives the main thread
//   foreign DEV OTHER    'F' ioctls on OTHER (not watched), one RM_CONTROL on DEV; exit(0)
//   ioctl-loop DEV N     N RM_CONTROL ioctls; prints "ns_per_ioctl X"
//   launch DEV N         RM client alloc; "ready"; N + N/2 launches; "done"; exit(0)
//   gpus CTL GPU0 GPU1   devices used through two GPUs' files and one never; "ready"; exit(0)
#include <fcntl.h>
#include <linux/ioctl.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "gpu_observer.h"
#include "t_driver.h"
#include "testlib.h"

namespace {

int g_fd = -1;

uint32_t nv_cmd(uint32_t nr, uint32_t size) {
  return _IOC(_IOC_READ | _IOC_WRITE, FIKIT_NV_IOCTL_MAGIC, nr, size);
}

// Issue one ioctl; the test device has no driver, so the call fails (ENOTTY) and that is fine.
void call(uint32_t cmd, void* params) { (void)!ioctl(g_fd, cmd, params); }

void rm_alloc(uint32_t root, uint32_t parent, uint32_t handle, uint32_t cls,
              void* alloc_params = nullptr, uint32_t status = 0) {
  t::Nvos64 p{root, parent, handle, cls,    reinterpret_cast<uintptr_t>(alloc_params),
              0,    0,      0,      status, 0};
  call(nv_cmd(FIKIT_NV_ESC_RM_ALLOC, sizeof(p)), &p);
}

void rm_free(uint32_t root, uint32_t parent, uint32_t handle) {
  t::Nvos00 p{root, parent, handle, 0};
  call(nv_cmd(FIKIT_NV_ESC_RM_FREE, sizeof(p)), &p);
}

void rm_control(uint32_t client, uint32_t object, uint32_t ctrl) {
  t::Nvos54 p{client, object, ctrl, 0, 0, 0, 0};
  call(nv_cmd(FIKIT_NV_ESC_RM_CONTROL, sizeof(p)), &p);
}

void uvm_range_group(uint32_t cmd, uint64_t id) {
  t::UvmRangeGroup p{id, 0, 0};
  call(cmd, &p);
}

void uvm_map(uint64_t base, uint64_t length) {
  static t::UvmMap p;  // large, like the driver's (a per-GPU attribute array follows)
  p.base = base;
  p.length = length;
  call(FIKIT_UVM_MAP_EXTERNAL_ALLOCATION, &p);
}

void uvm_free(uint64_t base) {
  t::UvmFree p{base, 0, 0, 0};
  call(FIKIT_UVM_FREE, &p);
}

void open_device(const char* path) {
  g_fd = open(path, O_RDWR | O_CLOEXEC);
  if (g_fd < 0) {
    std::fprintf(stderr, "failed to open %s: %s\n", path, std::strerror(errno));
    std::exit(2);
  }
}

// Tell the parent we reached `phase`, then wait for its go-ahead (a line on stdin).
void handshake(const char* phase) {
  std::printf("%s\n", phase);
  std::fflush(stdout);
  char line[16];
  if (!std::fgets(line, sizeof(line), stdin)) std::exit(4);  // the parent went away
}

// Run `fn` in a thread named `name` and wait for it.
void in_named_thread(const char* name, void (*fn)()) {
  std::thread th([name, fn] {
    pthread_setname_np(pthread_self(), name);
    fn();
  });
  th.join();
}

void* finish_script(void*) {
  using namespace t;
  pthread_setname_np(pthread_self(), "fk-finisher");
  handshake("phase1");
  uvm_range_group(FIKIT_UVM_DESTROY_RANGE_GROUP, kStream1);
  uvm_free(kMapBase1);
  rm_free(kClient, kDevice, kVidmem1);
  rm_free(kClient, kDevice, kTsg);  // its channels go with it
  handshake("phase2");
  std::exit(kScriptExitCode);
}

int run_script() {
  using namespace t;
  t::MemoryParams vid1{}, vid2{};
  vid1.size = kVidmem1Bytes;
  vid2.size = kVidmem2Bytes;
  uint64_t uvm_init[2] = {0, 0};
  call(FIKIT_UVM_INITIALIZE, uvm_init);
  in_named_thread("fk-worker", [] { rm_alloc(0, 0, kClient, FIKIT_CLASS_ROOT_CLIENT); });
  rm_alloc(kClient, kClient, kDevice, FIKIT_CLASS_DEVICE);
  rm_alloc(kClient, kDevice, kSubdevice, FIKIT_CLASS_SUBDEVICE);
  rm_alloc(kClient, kDevice, kVaspace, kClassVaspace);  // counted, not tracked
  rm_alloc(kClient, kDevice, kTsg, FIKIT_CLASS_CHANNEL_GROUP);
  rm_alloc(kClient, kTsg, kChannel1, kClassGpfifoHopper);
  rm_alloc(kClient, kTsg, kChannel2, kClassGpfifoHopper);
  rm_alloc(kClient, kDevice, kFailedTsg, FIKIT_CLASS_CHANNEL_GROUP, nullptr, 0x1f);  // RM error
  t::Nvos21 old{kClient, kSubdevice, kTsg21, FIKIT_CLASS_CHANNEL_GROUP, 0, 0, 0};    // NVOS21 form
  call(nv_cmd(FIKIT_NV_ESC_RM_ALLOC, sizeof(old)), &old);
  rm_alloc(kClient, kDevice, kVidmem1, FIKIT_CLASS_MEMORY_LOCAL_USER, &vid1);
  rm_alloc(kClient, kDevice, kVidmem2, FIKIT_CLASS_MEMORY_LOCAL_USER, &vid2);
  for (int i = 0; i < kControls; i++) rm_control(kClient, kSubdevice, 0x20800102);
  uvm_range_group(FIKIT_UVM_CREATE_RANGE_GROUP, kStream1);
  uvm_range_group(FIKIT_UVM_CREATE_RANGE_GROUP, kStream2);
  uvm_map(kMapBase1, kMap1Bytes);
  uvm_map(kMapBase2, kMap2Bytes);
  // The rest runs in a thread that outlives the main thread, so that the process's last thread
  // is not its leader (as with libcuda's helper threads).
  pthread_t finisher;
  if (pthread_create(&finisher, nullptr, finish_script, nullptr) != 0) return 5;
  pthread_exit(nullptr);
}

int run_foreign(const char* other) {
  const int other_fd = open(other, O_RDWR | O_CLOEXEC);
  if (other_fd < 0) return 2;
  t::Nvos54 p{};
  for (int i = 0; i < 10; i++) (void)!ioctl(other_fd, nv_cmd(FIKIT_NV_ESC_RM_CONTROL, 32), &p);
  rm_control(t::kClient, t::kSubdevice, 0x20800102);
  return 0;
}

int run_ioctl_loop(long n) {
  t::Nvos54 p{};
  const uint32_t cmd = nv_cmd(FIKIT_NV_ESC_RM_CONTROL, sizeof(p));
  timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; i++) (void)!ioctl(g_fd, cmd, &p);
  clock_gettime(CLOCK_MONOTONIC, &b);
  const double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
  std::printf("ns_per_ioctl %.1f\n", n > 0 ? ns / static_cast<double>(n) : 0.0);
  return 0;
}

// Devices 0 and 1 are shown to be GPUs 0 and 1 as libcuda shows them: an OS event on the GPU's
// fd, memory mapped onto it, an event object allocated through it. Device 2 is only used through
// nvidiactl, so its context and memory must stay unattributed.
int run_gpus(const char* gpu0, const char* gpu1) {
  using namespace t;
  const int ctl = g_fd;
  const int gpu_fd[2] = {open(gpu0, O_RDWR | O_CLOEXEC), open(gpu1, O_RDWR | O_CLOEXEC)};
  if (gpu_fd[0] < 0 || gpu_fd[1] < 0) return 2;
  rm_alloc(0, 0, kClient, FIKIT_CLASS_ROOT_CLIENT);
  for (int i = 0; i < 3; i++) {
    rm_alloc(kClient, kClient, kGpuDevice[i], FIKIT_CLASS_DEVICE);
    rm_alloc(kClient, kGpuDevice[i], kGpuSubdevice[i], FIKIT_CLASS_SUBDEVICE);
  }
  AllocOsEvent ev{kClient, kGpuDevice[0], 0, 0};
  g_fd = gpu_fd[0];
  call(nv_cmd(0xce, sizeof(ev)), &ev);
  MapMemory map{};
  map.client = kClient;
  map.device = kGpuSubdevice[1];
  map.fd = gpu_fd[1];
  g_fd = ctl;
  call(nv_cmd(FIKIT_NV_ESC_RM_MAP_MEMORY, sizeof(map)), &map);
  g_fd = gpu_fd[1];
  rm_alloc(kClient, kGpuSubdevice[1], 0xde000041, kClassOsEvent);
  // Device 2: an OS event on nvidiactl, memory mapped onto nvidiactl, a failed map onto GPU 0.
  g_fd = ctl;
  AllocOsEvent ev2{kClient, kGpuDevice[2], 0, 0};
  call(nv_cmd(0xce, sizeof(ev2)), &ev2);
  map.device = kGpuDevice[2];
  map.fd = ctl;
  call(nv_cmd(FIKIT_NV_ESC_RM_MAP_MEMORY, sizeof(map)), &map);
  map.fd = gpu_fd[0];
  map.status = 0x1f;
  call(nv_cmd(FIKIT_NV_ESC_RM_MAP_MEMORY, sizeof(map)), &map);
  MemoryParams vid[3]{};
  for (int i = 0; i < 3; i++) {
    vid[i].size = kGpuVidmemBytes[i];
    rm_alloc(kClient, kGpuDevice[i], kGpuTsg[i], FIKIT_CLASS_CHANNEL_GROUP);
    rm_alloc(kClient, kGpuDevice[i], kGpuVidmem[i], FIKIT_CLASS_MEMORY_LOCAL_USER, &vid[i]);
  }
  handshake("ready");
  return 0;
}

int run_launch(long n) {
  rm_alloc(0, 0, t::kClient, FIKIT_CLASS_ROOT_CLIENT);
  handshake("ready");
  int x = 0;
  for (long i = 0; i < n; i++) x = fikit_test_launch(x);
  for (long i = 0; i < n / 2; i++) x = fikit_test_launch_ex(x);
  handshake(x > 0 ? "done" : "done?");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s script|foreign|ioctl-loop|launch DEV [ARG]\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  open_device(argv[2]);
  if (mode == "script") return run_script();
  if (mode == "foreign" && argc > 3) return run_foreign(argv[3]);
  if (mode == "ioctl-loop" && argc > 3) return run_ioctl_loop(std::atol(argv[3]));
  if (mode == "launch" && argc > 3) return run_launch(std::atol(argv[3]));
  if (mode == "gpus" && argc > 4) return run_gpus(argv[3], argv[4]);
  std::fprintf(stderr, "%s: unknown mode or missing argument: %s\n", argv[0], mode.c_str());
  return 2;
}
