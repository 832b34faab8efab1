// Test fixture for the simulated CUDA driver (tests/sim): each test gets its own simulated GPU (a
// unique FIKIT_SIM_GPU shm name, unlinked at the end) and runs its CUDA code in forked children,
// because cuInit attaches a process to one GPU for its lifetime and several tests need several
// processes anyway. A child's gtest failures make it exit 1, which the parent turns into a failure
// of its own. Helpers are named t_* (liburing's test convention).
#pragma once

#include <cuda.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

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

namespace fikit::sim::test {

using Env = std::vector<std::pair<std::string, std::string>>;

#define T_CK(call) ASSERT_EQ((call), CUDA_SUCCESS) << #call

inline constexpr uint64_t kMs = 1'000'000;  // ns

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
inline void t_open(t_Cuda* c) {
  T_CK(cuInit(0));
  T_CK(cuDevicePrimaryCtxRetain(&c->ctx, 0));
  T_CK(cuCtxSetCurrent(c->ctx));
  T_CK(cuModuleLoadData(&c->module, "ignored by the sim"));
  T_CK(cuModuleGetFunction(&c->spin, c->module, "spin"));
  T_CK(cuModuleGetFunction(&c->burn, c->module, "burn"));
  T_CK(cuModuleGetFunction(&c->other, c->module, "matmul"));
}

inline CUresult t_launch(CUfunction f, CUstream s, uint64_t ns, uint64_t tag, unsigned blocks = 1) {
  void* params[] = {&ns, &tag};
  return cuLaunchKernel(f, blocks, 1, 1, 128, 1, 1, 0, s, params, nullptr);
}

// Poll `cond` every 100 us until it holds or `timeout` passes. Return whether it held.
inline bool t_eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
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
  void t_join(pid_t pid, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
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

}  // namespace fikit::sim::test
