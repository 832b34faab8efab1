// Tests of the simulated CUDA driver (tests/sim), through its exported driver API.
//
// Each test gets its own simulated GPU (a unique FIKIT_SIM_GPU shm name, unlinked at the end) and
// runs its CUDA code in forked children: cuInit attaches a process to one GPU for its lifetime, and
// several tests need several processes anyway. A child's gtest failures make it exit 1, which the
// parent turns into a failure of its own. Timing is only checked as lower bounds (a kernel of
// X ms is not done before X ms): no upper bounds, the machine may be loaded.
#include <cuda.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <fikit/util.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "sim/sim_shared.h"

namespace {

using fikit::sim::SimShared;
using Env = std::vector<std::pair<std::string, std::string>>;
using namespace std::chrono_literals;

#define T_CK(call) ASSERT_EQ((call), CUDA_SUCCESS) << #call

constexpr uint64_t kMs = 1'000'000;  // ns

struct TraceLine {
  int stream;
  std::string name;
  uint64_t tag, start_ns, end_ns;
};

// What a child needs to launch kernels.
struct t_Cuda {
  CUcontext ctx = nullptr;
  CUmodule module = nullptr;
  CUfunction spin = nullptr, burn = nullptr, other = nullptr;
};

// cuInit, the primary context made current, a module with spin, burn and another kernel.
void t_open(t_Cuda* c) {
  T_CK(cuInit(0));
  T_CK(cuDevicePrimaryCtxRetain(&c->ctx, 0));
  T_CK(cuCtxSetCurrent(c->ctx));
  T_CK(cuModuleLoadData(&c->module, "ignored by the sim"));
  T_CK(cuModuleGetFunction(&c->spin, c->module, "spin"));
  T_CK(cuModuleGetFunction(&c->burn, c->module, "burn"));
  T_CK(cuModuleGetFunction(&c->other, c->module, "matmul"));
}

CUresult t_launch(CUfunction f, CUstream s, uint64_t ns, uint64_t tag, unsigned blocks = 1) {
  void* params[] = {&ns, &tag};
  return cuLaunchKernel(f, blocks, 1, 1, 128, 1, 1, 0, s, params, nullptr);
}

// Poll `cond` every 100 us until it holds or `timeout` passes. Return whether it held.
bool t_eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    usleep(100);
  }
  return true;
}

// Memory shared between the test and its children (flags for barriers, results).
struct Shared {
  std::atomic<int> ready{0};
  std::atomic<int> go{0};
};

class SimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int n = 0;
    gpu_ = "/fikit-simtest-" + std::to_string(getpid()) + "-" + std::to_string(n++);
    char tmpl[] = "/tmp/fikit-simtest-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    void* m =
        mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(m, MAP_FAILED);
    shared_ = new (m) Shared();
  }

  void TearDown() override {
    if (gpu_map_) munmap(gpu_map_, sizeof(SimShared));
    shm_unlink(gpu_.c_str());
    std::filesystem::remove_all(dir_);
    munmap(shared_, sizeof(Shared));
  }

  std::string trace_prefix() const { return dir_ + "/trace"; }

  // Run `fn` in a child process attached to this test's GPU. Return its pid.
  pid_t t_spawn(const std::function<void()>& fn, const Env& env = {}) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid != 0) return pid;
    setenv("FIKIT_SIM_GPU", gpu_.c_str(), 1);
    setenv("FIKIT_SIM_TRACE", trace_prefix().c_str(), 1);
    for (auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    fn();
    fflush(stdout);
    exit(::testing::Test::HasFailure() ? 1 : 0);  // exit(): the sim's exit handler runs
  }

  // Wait for a child (killing it after `timeout`) and expect it to exit 0.
  void t_join(pid_t pid, std::chrono::milliseconds timeout = 30s) {
    int status = 0;
    bool exited = t_eventually([&] { return waitpid(pid, &status, WNOHANG) == pid; }, timeout);
    if (!exited) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      ADD_FAILURE() << "child " << pid << " did not finish in time (a wedged GPU?)";
      return;
    }
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "child " << pid << " failed, status " << status;
  }

  pid_t t_run(const std::function<void()>& fn, const Env& env = {}) {
    pid_t pid = t_spawn(fn, env);
    t_join(pid);
    return pid;
  }

  // The GPU's shared state, mapped in this process (writable: tests take its lock).
  SimShared* t_gpu() {
    if (gpu_map_) return gpu_map_;
    int fd = shm_open(gpu_.c_str(), O_RDWR, 0);
    if (fd < 0) return nullptr;
    void* m = mmap(nullptr, sizeof(SimShared), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    gpu_map_ = m == MAP_FAILED ? nullptr : static_cast<SimShared*>(m);
    return gpu_map_;
  }

  std::vector<TraceLine> t_trace(pid_t pid) const {
    std::vector<TraceLine> lines;
    std::ifstream f(trace_prefix() + "." + std::to_string(pid));
    std::string s;
    while (std::getline(f, s)) {
      std::istringstream w(s);
      TraceLine l;
      if (w >> l.stream >> l.name >> l.tag >> l.start_ns >> l.end_ns) lines.push_back(l);
    }
    return lines;
  }

  // Stream id → its trace lines, in completion order.
  std::map<int, std::vector<TraceLine>> t_by_stream(pid_t pid) const {
    std::map<int, std::vector<TraceLine>> m;
    for (auto& l : t_trace(pid)) m[l.stream].push_back(l);
    return m;
  }

  std::string gpu_, dir_;
  Shared* shared_ = nullptr;
  SimShared* gpu_map_ = nullptr;
};

TEST_F(SimTest, KernelsRunByTime) {
  t_run(
      [] {
        t_Cuda c;
        t_open(&c);
        if (HasFatalFailure()) return;
        CUstream s;
        T_CK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
        auto t0 = std::chrono::steady_clock::now();
        T_CK(t_launch(c.spin, s, 100 * kMs, 1, 132));
        EXPECT_EQ(cuStreamQuery(s), CUDA_ERROR_NOT_READY);
        T_CK(cuStreamSynchronize(s));
        EXPECT_GE(std::chrono::steady_clock::now() - t0, 100ms);
        EXPECT_EQ(cuStreamQuery(s), CUDA_SUCCESS);

        // Any other kernel name runs FIKIT_SIM_DEFAULT_KERNEL_US.
        t0 = std::chrono::steady_clock::now();
        T_CK(cuLaunchKernel(c.other, 1, 1, 1, 32, 1, 1, 0, s, nullptr, nullptr));
        T_CK(cuCtxSynchronize());
        EXPECT_GE(std::chrono::steady_clock::now() - t0, 30ms);
      },
      {{"FIKIT_SIM_DEFAULT_KERNEL_US", "30000"}});
  SimShared* g = t_gpu();
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->kernels_total, 2u);
}

TEST_F(SimTest, TraceHasEveryKernelOnceInStreamOrder) {
  constexpr int kPerStream = 40;
  pid_t pid = t_run([] {
    t_Cuda c;
    t_open(&c);
    if (HasFatalFailure()) return;
    // Stream ids: 0 legacy default, 1 per-thread default, then created streams 2, 3, 4.
    std::vector<CUstream> streams = {nullptr, CU_STREAM_PER_THREAD};
    for (int i = 0; i < 3; i++) {
      CUstream s;
      T_CK(cuStreamCreate(&s, 0));
      streams.push_back(s);
    }
    for (uint64_t tag = 1; tag <= kPerStream; tag++)
      for (CUstream s : streams) T_CK(t_launch(c.spin, s, 20'000, tag));
    T_CK(cuCtxSynchronize());
  });
  auto by_stream = t_by_stream(pid);
  ASSERT_EQ(by_stream.size(), 5u);
  for (auto& [stream, lines] : by_stream) {
    EXPECT_GE(stream, 0);
    EXPECT_LE(stream, 4);
    ASSERT_EQ(lines.size(), static_cast<size_t>(kPerStream)) << "stream " << stream;
    for (size_t i = 0; i < lines.size(); i++) {
      EXPECT_EQ(lines[i].name, "spin");
      EXPECT_EQ(lines[i].tag, i + 1) << "stream " << stream;
      EXPECT_GE(lines[i].end_ns - lines[i].start_ns, 20'000u);
      if (i > 0) {
        EXPECT_GE(lines[i].start_ns, lines[i - 1].end_ns) << "stream " << stream;
      }
    }
  }
  SimShared* g = t_gpu();
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->kernels_total, 5u * kPerStream);
}

TEST_F(SimTest, FullStreamRingBlocksLaunchesInsteadOfFailing) {
  constexpr int kKernels = 3 * fikit::sim::kStreamRing;
  pid_t pid = t_run([] {
    t_Cuda c;
    t_open(&c);
    if (HasFatalFailure()) return;
    CUstream s;
    T_CK(cuStreamCreate(&s, 0));
    for (uint64_t tag = 1; tag <= kKernels; tag++) T_CK(t_launch(c.spin, s, 1000, tag));
    T_CK(cuStreamSynchronize(s));
  });
  auto lines = t_trace(pid);
  ASSERT_EQ(lines.size(), static_cast<size_t>(kKernels));
  for (size_t i = 0; i < lines.size(); i++) ASSERT_EQ(lines[i].tag, i + 1);
}

TEST_F(SimTest, MarkerIsWrittenAfterItsKernelAndNotBefore) {
  t_run([this] {
    t_Cuda c;
    t_open(&c);
    if (HasFatalFailure()) return;
    alignas(8) static std::atomic<uint64_t> word{0};
    CUdeviceptr dptr;
    T_CK(cuMemHostRegister(&word, sizeof(word), CU_MEMHOSTREGISTER_DEVICEMAP));
    T_CK(cuMemHostGetDevicePointer(&dptr, &word, 0));
    EXPECT_EQ(dptr, reinterpret_cast<uintptr_t>(&word));
    CUstream s;
    T_CK(cuStreamCreate(&s, 0));
    auto t0 = std::chrono::steady_clock::now();
    T_CK(t_launch(c.spin, s, 50 * kMs, 1, 132));
    T_CK(cuStreamWriteValue64(s, dptr, 7, 0));
    EXPECT_EQ(word.load(), 0u) << "the marker was written before its kernel ran";
    // No CUDA call while waiting: the sim's engine thread must write it.
    ASSERT_TRUE(t_eventually([] { return word.load() == 7; }, 10s));
    uint64_t seen = fikit::now_ns();
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 50ms);
    T_CK(cuStreamSynchronize(s));  // flushes the trace
    auto lines = t_trace(getpid());
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_LE(lines[0].end_ns, seen);
    EXPECT_EQ(cuStreamWriteValue64(s, dptr + 1, 1, 0), CUDA_ERROR_INVALID_VALUE);  // unaligned
  });
}

TEST_F(SimTest, EventsCompleteInStreamOrderAndTimeTheGpu) {
  pid_t pid = t_run([] {
    t_Cuda c;
    t_open(&c);
    if (HasFatalFailure()) return;
    CUstream a, b;
    CUevent start, end, untimed;
    T_CK(cuStreamCreate(&a, 0));
    T_CK(cuStreamCreate(&b, 0));
    T_CK(cuEventCreate(&start, 0));
    T_CK(cuEventCreate(&end, 0));
    T_CK(cuEventCreate(&untimed, CU_EVENT_DISABLE_TIMING));
    EXPECT_EQ(cuEventQuery(end), CUDA_SUCCESS) << "a never-recorded event is complete";
    T_CK(cuEventRecord(start, a));
    T_CK(t_launch(c.spin, a, 30 * kMs, 1, 132));
    T_CK(cuEventRecord(end, a));
    T_CK(cuEventRecord(untimed, a));
    EXPECT_EQ(cuEventQuery(end), CUDA_ERROR_NOT_READY);
    float ms = 0;
    EXPECT_EQ(cuEventElapsedTime(&ms, start, end), CUDA_ERROR_NOT_READY);
    // Stream b waits for stream a's kernel before its own.
    T_CK(cuStreamWaitEvent(b, end, 0));
    T_CK(t_launch(c.spin, b, 1 * kMs, 1));
    T_CK(cuEventSynchronize(end));
    T_CK(cuEventElapsedTime(&ms, start, end));
    EXPECT_GE(ms, 30.0f);
    EXPECT_EQ(cuEventElapsedTime(&ms, start, untimed), CUDA_ERROR_INVALID_HANDLE);
    T_CK(cuCtxSynchronize());
    T_CK(cuEventDestroy(start));
    T_CK(cuEventDestroy(end));
    T_CK(cuEventDestroy(untimed));
  });
  auto by_stream = t_by_stream(pid);
  ASSERT_EQ(by_stream.size(), 2u);
  const TraceLine& first = by_stream.begin()->second.at(0);
  const TraceLine& waiter = std::next(by_stream.begin())->second.at(0);
  EXPECT_GE(waiter.start_ns, first.end_ns);
}

TEST_F(SimTest, CaptureRecordsLaunchesAndGraphLaunchRunsThem) {
  pid_t pid = t_run([this] {
    t_Cuda c;
    t_open(&c);
    if (HasFatalFailure()) return;
    alignas(8) static std::atomic<uint64_t> word{0};
    CUstream s;
    CUgraph graph;
    CUgraphExec exec;
    CUstreamCaptureStatus status;
    T_CK(cuStreamCreate(&s, 0));
    T_CK(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
    for (uint64_t tag = 1; tag <= 3; tag++) T_CK(t_launch(c.spin, s, 100'000, tag));
    T_CK(cuStreamWriteValue64(s, reinterpret_cast<uintptr_t>(&word), 9, 0));
    T_CK(cuStreamIsCapturing(s, &status));
    EXPECT_EQ(status, CU_STREAM_CAPTURE_STATUS_ACTIVE);
    EXPECT_EQ(cuStreamSynchronize(s), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    T_CK(cuStreamEndCapture(s, &graph));
    T_CK(cuStreamIsCapturing(s, &status));
    EXPECT_EQ(status, CU_STREAM_CAPTURE_STATUS_NONE);
    EXPECT_EQ(cuStreamQuery(s), CUDA_SUCCESS) << "captured work must not run";
    EXPECT_EQ(word.load(), 0u);
    EXPECT_EQ(t_gpu()->kernels_total, 0u);
    T_CK(cuGraphInstantiate(&exec, graph, 0));
    T_CK(cuGraphLaunch(exec, s));
    T_CK(cuGraphLaunch(exec, s));
    T_CK(cuStreamSynchronize(s));
    EXPECT_EQ(word.load(), 9u);
    T_CK(cuGraphExecDestroy(exec));
    T_CK(cuGraphDestroy(graph));
  });
  std::vector<uint64_t> tags;
  for (auto& l : t_trace(pid)) tags.push_back(l.tag);
  EXPECT_EQ(tags, (std::vector<uint64_t>{1, 2, 3, 1, 2, 3}));
  EXPECT_EQ(t_gpu()->kernels_total, 6u);
}

TEST_F(SimTest, LaunchVariantsAndParameterBuffers) {
  pid_t pid = t_run([] {
    t_Cuda c;
    t_open(&c);
    if (HasFatalFailure()) return;
    CUstream s;
    T_CK(cuStreamCreate(&s, 0));
    uint64_t buf[2] = {1000, 1};  // spin(ns, tag) packed in a parameter buffer
    size_t size = sizeof(buf);
    void* extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, buf, CU_LAUNCH_PARAM_BUFFER_SIZE, &size,
                     CU_LAUNCH_PARAM_END};
    T_CK(cuLaunchKernel(c.spin, 1, 1, 1, 32, 1, 1, 0, s, nullptr, extra));
    uint64_t ns = 1000, tag = 2;
    void* params[] = {&ns, &tag};
    CUlaunchConfig cfg{};
    cfg.gridDimX = cfg.gridDimY = cfg.gridDimZ = 1;
    cfg.blockDimX = 64;
    cfg.blockDimY = cfg.blockDimZ = 1;
    cfg.hStream = s;
    T_CK(cuLaunchKernelEx(&cfg, c.spin, params, nullptr));
    tag = 3;
    T_CK(cuLaunchCooperativeKernel(c.spin, 1, 1, 1, 32, 1, 1, 0, s, params));
    EXPECT_EQ(cuLaunchKernel(c.spin, 1, 1, 1, 32, 1, 1, 0, s, nullptr, nullptr),
              CUDA_ERROR_INVALID_VALUE)
        << "spin without its parameters";
    EXPECT_EQ(cuLaunchKernel(c.spin, 0, 1, 1, 32, 1, 1, 0, s, params, nullptr),
              CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(t_launch(nullptr, s, 1, 1), CUDA_ERROR_INVALID_HANDLE);
    T_CK(cuStreamSynchronize(s));
  });
  std::vector<uint64_t> tags;
  for (auto& l : t_trace(pid)) tags.push_back(l.tag);
  EXPECT_EQ(tags, (std::vector<uint64_t>{1, 2, 3}));
}

TEST_F(SimTest, GetProcAddressPrefersPtszThenTheHighestVersion) {
  auto resolve = [](const char* name, cuuint64_t flags) {
    void* fn = nullptr;
    CUdriverProcAddressQueryResult status;
    CUresult r = cuGetProcAddress(name, &fn, CUDA_VERSION, flags, &status);
    EXPECT_EQ(r == CUDA_SUCCESS, status == CU_GET_PROC_ADDRESS_SUCCESS) << name;
    return r == CUDA_SUCCESS ? fn : nullptr;
  };
  auto sym = [](const char* name) { return dlsym(RTLD_DEFAULT, name); };
  const cuuint64_t ptds = CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM;
  const cuuint64_t legacy = CU_GET_PROC_ADDRESS_LEGACY_STREAM;
  ASSERT_NE(sym("cuLaunchKernel_ptsz"), nullptr);
  EXPECT_EQ(resolve("cuLaunchKernel", ptds), sym("cuLaunchKernel_ptsz"));
  EXPECT_EQ(resolve("cuLaunchKernel", legacy), sym("cuLaunchKernel"));
  EXPECT_EQ(resolve("cuMemAlloc", CU_GET_PROC_ADDRESS_DEFAULT), sym("cuMemAlloc_v2"));
  EXPECT_EQ(resolve("cuCtxCreate", legacy), sym("cuCtxCreate_v4"));
  EXPECT_EQ(resolve("cuStreamBeginCapture", ptds), sym("cuStreamBeginCapture_v2_ptsz"));
  EXPECT_EQ(resolve("cuStreamWriteValue64", ptds), sym("cuStreamWriteValue64_v2_ptsz"));
  EXPECT_EQ(resolve("cuMemcpyHtoD", ptds), sym("cuMemcpyHtoD_v2_ptds"));
  EXPECT_EQ(resolve("cuEventElapsedTime", legacy), sym("cuEventElapsedTime_v2"));
  EXPECT_EQ(resolve("cuGetProcAddress", legacy), sym("cuGetProcAddress_v2"));
  EXPECT_EQ(resolve("cuInit", ptds), sym("cuInit"));

  void* fn = &fn;
  CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SUCCESS;
  EXPECT_EQ(cuGetProcAddress("cuNoSuchFunction", &fn, CUDA_VERSION, 0, &status),
            CUDA_ERROR_NOT_FOUND);
  EXPECT_EQ(fn, nullptr);
  EXPECT_EQ(status, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
  // Only the driver API is exported: the sim's C++ internals stay local.
  EXPECT_EQ(sym("_ZN5fikit3sim7advanceERNS0_9SimSharedEm"), nullptr);
}

TEST_F(SimTest, ErrorsDeviceAndMemory) {
  t_run(
      [] {
        CUdevice dev;
        EXPECT_EQ(cuDeviceGet(&dev, 0), CUDA_ERROR_NOT_INITIALIZED);
        const char* s = nullptr;
        T_CK(cuGetErrorName(CUDA_ERROR_NOT_READY, &s));
        EXPECT_STREQ(s, "CUDA_ERROR_NOT_READY");
        EXPECT_EQ(cuGetErrorString(static_cast<CUresult>(123456), &s), CUDA_ERROR_INVALID_VALUE);
        T_CK(cuInit(0));
        T_CK(cuDeviceGet(&dev, 0));
        EXPECT_EQ(cuDeviceGet(&dev, 1), CUDA_ERROR_INVALID_DEVICE);
        char name[64];
        int sms = 0, major = 0, version = 0;
        T_CK(cuDeviceGetName(name, sizeof(name), dev));
        EXPECT_STREQ(name, "fikit simulated GPU");
        T_CK(cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev));
        EXPECT_EQ(sms, 40);
        T_CK(cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev));
        EXPECT_EQ(major, 9);
        T_CK(cuDriverGetVersion(&version));
        EXPECT_EQ(version, 13000);

        CUdeviceptr d;
        EXPECT_EQ(cuMemAlloc(&d, 64), CUDA_ERROR_INVALID_CONTEXT) << "no current context";
        CUcontext ctx;
        T_CK(cuCtxCreate(&ctx, nullptr, 0, dev));
        T_CK(cuMemAlloc(&d, 64));
        char in[64] = "hello", out[64] = {};
        T_CK(cuMemcpyHtoD(d, in, sizeof(in)));
        T_CK(cuMemcpyDtoH(out, d, sizeof(out)));
        EXPECT_STREQ(out, "hello");
        T_CK(cuMemsetD8(d, 'x', 2));
        T_CK(cuMemcpyDtoHAsync(out, d, 2, nullptr));
        EXPECT_EQ(std::string(out, 2), "xx");
        T_CK(cuMemFree(d));
        T_CK(cuCtxDestroy(ctx));
        CUcontext cur = ctx;
        T_CK(cuCtxGetCurrent(&cur));
        EXPECT_EQ(cur, nullptr);
      },
      {{"FIKIT_SIM_SMS", "40"}});
  t_run([] { EXPECT_EQ(cuInit(0), CUDA_ERROR_INVALID_VALUE); }, {{"FIKIT_SIM_MODE", "bogus"}});
}

class SimSharing : public SimTest, public ::testing::WithParamInterface<const char*> {
 protected:
  // Two processes each launch one spin kernel of `ns` on `blocks` blocks at the same moment.
  // Return the time from the first start to the last end on the GPU.
  uint64_t t_two_kernels(const Env& env, uint64_t ns, unsigned blocks) {
    auto worker = [this, ns, blocks] {
      t_Cuda c;
      t_open(&c);
      if (HasFatalFailure()) return;
      CUstream s;
      T_CK(cuStreamCreate(&s, 0));
      shared_->ready.fetch_add(1);
      ASSERT_TRUE(t_eventually([this] { return shared_->go.load() == 1; }, 10s));
      T_CK(t_launch(c.spin, s, ns, 1, blocks));
      T_CK(cuStreamSynchronize(s));
    };
    pid_t a = t_spawn(worker, env), b = t_spawn(worker, env);
    EXPECT_TRUE(t_eventually([this] { return shared_->ready.load() == 2; }, 10s));
    shared_->go.store(1);
    t_join(a);
    t_join(b);
    auto ta = t_trace(a), tb = t_trace(b);
    if (ta.size() != 1 || tb.size() != 1) {
      ADD_FAILURE() << "expected one kernel per process";
      return 0;
    }
    return std::max(ta[0].end_ns, tb[0].end_ns) - std::min(ta[0].start_ns, tb[0].start_ns);
  }
};

// Two 50 ms kernels filling the GPU need at least 100 ms together, whether the GPU time-slices
// between their processes or shares its SMs.
TEST_P(SimSharing, TwoProcessesShareOneGpu) {
  EXPECT_GE(t_two_kernels({{"FIKIT_SIM_MODE", GetParam()}}, 50 * kMs, 1000), 100 * kMs);
  SimShared* g = t_gpu();
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->kernels_total, 2u);
  if (std::string(GetParam()) == "mps") {
    EXPECT_EQ(g->context_switches, 0u);
  } else {
    EXPECT_GT(g->context_switches, 0u);
  }
}

// Time-slicing runs one context at a time even when their kernels would fit side by side, and
// every switch idles the GPU for FIKIT_SIM_SWITCH_US.
TEST_F(SimSharing, TimeslicingSerializesContextsAndPaysEachSwitch) {
  Env env = {{"FIKIT_SIM_MODE", "timeslice"},
             {"FIKIT_SIM_TIMESLICE_US", "10000"},
             {"FIKIT_SIM_SWITCH_US", "5000"}};
  uint64_t span = t_two_kernels(env, 50 * kMs, 1);
  SimShared* g = t_gpu();
  ASSERT_NE(g, nullptr);
  EXPECT_GT(g->context_switches, 0u);
  EXPECT_GE(span, 100 * kMs + g->context_switches * 5 * kMs);
}

INSTANTIATE_TEST_SUITE_P(Modes, SimSharing, ::testing::Values("timeslice", "mps"));

// A process killed while it holds the GPU lock, with a long kernel running and more queued, must
// not stop another process from using the GPU: the next locker repairs the state and drops it.
TEST_F(SimTest, ProcessKilledHoldingTheLockDoesNotWedgeTheGpu) {
  pid_t victim = t_spawn([this] {
    t_Cuda c;
    t_open(&c);
    if (HasFatalFailure()) return;
    CUstream s;
    T_CK(cuStreamCreate(&s, 0));
    for (int i = 0; i < 100; i++) T_CK(t_launch(c.burn, s, 10'000 * kMs, i));
    pthread_mutex_lock(&t_gpu()->lock);
    shared_->ready.store(1);
    pause();
  });
  ASSERT_TRUE(t_eventually([this] { return shared_->ready.load() == 1; }, 10s));
  kill(victim, SIGKILL);
  waitpid(victim, nullptr, 0);

  t_run([] {
    t_Cuda c;
    t_open(&c);
    if (HasFatalFailure()) return;
    T_CK(t_launch(c.spin, nullptr, 1 * kMs, 1));
    T_CK(cuCtxSynchronize());
  });
  SimShared* g = t_gpu();
  for (auto& p : g->procs) EXPECT_FALSE(p.in_use && p.pid == victim) << "victim not reclaimed";
  EXPECT_EQ(g->kernels_total, 1u);
}

// A process killed outside the lock leaves its queued work behind: it is dropped once its pid is
// gone, and its slots are freed.
TEST_F(SimTest, DeadProcessWorkIsReclaimed) {
  pid_t victim = t_spawn([this] {
    t_Cuda c;
    t_open(&c);
    if (HasFatalFailure()) return;
    for (int i = 0; i < 100; i++) T_CK(t_launch(c.burn, nullptr, 10'000 * kMs, i));
    shared_->ready.store(1);
    pause();
  });
  ASSERT_TRUE(t_eventually([this] { return shared_->ready.load() == 1; }, 10s));
  kill(victim, SIGKILL);
  waitpid(victim, nullptr, 0);
  t_run([] {
    t_Cuda c;
    t_open(&c);
    if (HasFatalFailure()) return;
    T_CK(t_launch(c.burn, nullptr, 1 * kMs, 1));
    T_CK(cuCtxSynchronize());
  });
  SimShared* g = t_gpu();
  for (auto& p : g->procs) EXPECT_FALSE(p.in_use) << "pid " << p.pid << " still holds a slot";
  for (auto& s : g->streams) EXPECT_FALSE(s.in_use) << "a stream outlived its process";
  for (auto& c : g->ctxs) EXPECT_FALSE(c.in_use) << "a context outlived its process";
}

}  // namespace
