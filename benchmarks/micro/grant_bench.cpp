// LP grant round trip: a tenant pushes a request, the broker (a real fikit-broker process, policy
// `none`) grants it, the tenant sees the grant. Measured with the broker spinning (requests back to
// back) and with the broker asleep (a pause longer than its spin window before each request: the
// doorbell wake-up path).
#include <benchmark/benchmark.h>
#include <fikit/ring.h>
#include <fikit/util.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "raw_tenant.h"

namespace fikit {
namespace {

std::string t_self_dir() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  buf[n > 0 ? n : 0] = 0;
  std::string s(buf);
  return s.substr(0, s.rfind('/'));
}

// A broker process for the benchmark's lifetime.
class BenchBroker {
 public:
  BenchBroker() {
    socket_ = "/tmp/fikit-grant-bench-" + std::to_string(getpid()) + ".sock";
    std::string broker = t_self_dir() + "/fikit-broker";
    pid_ = fork();
    if (pid_ == 0) {
      execl(broker.c_str(), broker.c_str(), "start", "--foreground", "--policy", "none", "--socket",
            socket_.c_str(), static_cast<char*>(nullptr));
      perror("exec fikit-broker");
      _exit(127);
    }
    for (int i = 0; i < 1000; i++) {  // until the broker listens
      tenant_ = std::make_unique<test::RawTenant>();
      if (tenant_->connect_and_register(socket_, kPriorityLow, "grant-bench")) break;
      usleep(10000);
    }
  }
  ~BenchBroker() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  Segment* segment() { return tenant_->segment(); }
  bool ready() { return segment() && tenant_->wait_state(TenantState::kActive, 5'000'000'000ull); }

 private:
  std::string socket_;
  pid_t pid_ = -1;
  std::unique_ptr<test::RawTenant> tenant_;
};

// One request → grant → "launched" cycle; return the request-to-grant time in ns.
uint64_t t_round_trip(Segment* seg) {
  uint32_t pos;
  uint64_t t0 = now_ns();
  while (!ring__push(&seg->ring, EntryFields{EntryKind::kLpRequest, 0, 0, 0, 7, t0}, &pos)) {
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (seg->broker.broker_sleeping.load(std::memory_order_relaxed)) {
    seg->broker.doorbell.fetch_add(1);
    futex_wake(&seg->broker.doorbell, 1);
  }
  while (!pos_at_or_after(seg->broker.granted.load(std::memory_order_acquire), pos + 1))
    cpu_relax();
  uint64_t dt = now_ns() - t0;
  ring__push(&seg->ring, EntryFields{EntryKind::kLpLaunched, 0, pos, 0, 7, now_ns()}, &pos);
  return dt;
}

void t_report(benchmark::State& state, std::vector<uint64_t>& ns) {
  if (ns.empty()) return;
  std::sort(ns.begin(), ns.end());
  state.counters["p50_us"] = ns[ns.size() / 2] / 1e3;
  state.counters["p99_us"] = ns[std::min(ns.size() - 1, ns.size() * 99 / 100)] / 1e3;
  state.counters["max_us"] = ns.back() / 1e3;
}

void BM_GrantRoundTripSpinning(benchmark::State& state) {
  BenchBroker b;
  if (!b.ready()) return state.SkipWithError("broker did not start");
  std::vector<uint64_t> ns;
  for (auto _ : state) ns.push_back(t_round_trip(b.segment()));
  t_report(state, ns);
}
BENCHMARK(BM_GrantRoundTripSpinning)->UseRealTime()->Iterations(20000);

void BM_GrantRoundTripBrokerAsleep(benchmark::State& state) {
  BenchBroker b;
  if (!b.ready()) return state.SkipWithError("broker did not start");
  std::vector<uint64_t> ns;
  for (auto _ : state) {
    state.PauseTiming();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // past the broker's spin window
    state.ResumeTiming();
    ns.push_back(t_round_trip(b.segment()));
  }
  t_report(state, ns);
}
BENCHMARK(BM_GrantRoundTripBrokerAsleep)->UseRealTime()->Iterations(500);

}  // namespace
}  // namespace fikit
