// Tests of the simulated GPU shared by several processes: time-slicing and MPS between them, and
// processes that die (see sim_fixture.h). Timing is only checked as lower bounds.
#include <pthread.h>

#include <algorithm>

#include "sim_fixture.h"

namespace fikit::sim::test {
namespace {

using namespace std::chrono_literals;

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

// The MPS client variables are read per process when it attaches: its priority, and its active
// thread percentage as the SMs it may hold; an invalid value fails cuInit.
TEST_F(SimSharing, EachProcessReadsItsMpsClientVariables) {
  pid_t pid = t_spawn(
      [this] {
        t_Cuda c;
        t_open(&c);
        shared_->ready.store(1);
        EXPECT_TRUE(t_eventually([this] { return shared_->go.load() == 1; }, 10s));
      },
      {{"FIKIT_SIM_MODE", "mps"},
       {"CUDA_MPS_CLIENT_PRIORITY", "1"},
       {"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE", "30"}});
  EXPECT_TRUE(t_eventually([this] { return shared_->ready.load() == 1; }, 10s));
  SimShared* g = t_gpu();
  ASSERT_NE(g, nullptr);
  const SimProc* me = nullptr;
  for (const SimProc& p : g->procs)
    if (p.in_use && p.pid == pid) me = &p;
  ASSERT_NE(me, nullptr);
  EXPECT_EQ(me->mps_priority, 1u);
  EXPECT_EQ(me->mps_sm_cap, 40u) << "30% of 132 SMs, rounded up";
  shared_->go.store(1);
  t_join(pid);
  t_run([] { EXPECT_EQ(cuInit(0), CUDA_ERROR_INVALID_VALUE); },
        {{"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE", "0"}});
}

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
}  // namespace fikit::sim::test
