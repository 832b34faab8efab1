// Tests of the simulated CUDA driver (tests/sim) through its exported driver API, one process
// at a time (see sim_fixture.h). Timing is only checked as lower bounds (a kernel of X ms is not
// done before X ms): no upper bounds, the machine may be loaded.
#include <dlfcn.h>
#include <fikit/util.h>

#include "sim_fixture.h"

namespace fikit::sim::test {
namespace {

using namespace std::chrono_literals;

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

}  // namespace
}  // namespace fikit::sim::test
