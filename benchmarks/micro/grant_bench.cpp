// LP grant latency against a real fikit-broker process. Policy `none`: a tenant pushes a request,
// the broker grants it, the tenant sees the grant, with the broker spinning (requests back to back)
// and asleep (a pause longer than its spin window before each request: the doorbell wake-up path).
// Policy fikit (the broker's defaults): the scheduler's reaction, to an LP request arriving at a
// sleeping broker and to an HP tenant draining while an LP request waits (a gap opening).
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
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "raw_tenant.h"

namespace fikit {
namespace {

constexpr uint64_t kLpKey = 7;

std::string t_self_dir() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  buf[n > 0 ? n : 0] = 0;
  std::string s(buf);
  return s.substr(0, s.rfind('/'));
}

// A broker process for the benchmark's lifetime: `fikit-broker start --foreground --socket S`
// and `args`.
class BenchBroker {
 public:
  explicit BenchBroker(const std::vector<std::string>& args) {
    // A directory of ours: the broker refuses to write where others may (its run directory).
    char dir[] = "/tmp/fikit-grant-bench-XXXXXX";
    if (mkdtemp(dir)) dir_ = dir;
    socket_ = dir_ + "/broker.sock";
    std::vector<std::string> argv = {t_self_dir() + "/fikit-broker", "start", "--foreground",
                                     "--socket", socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = fork();
    if (pid_ == 0) {
      std::vector<char*> p;
      for (std::string& a : argv) p.push_back(a.data());
      p.push_back(nullptr);
      execv(p[0], p.data());
      perror("exec fikit-broker");
      _exit(127);
    }
  }
  ~BenchBroker() {
    tenants_.clear();
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  // Register a tenant (once the broker listens) and wait until it is scheduled. Return its
  // segment (nullptr: it never was).
  Segment* add(uint32_t priority, const char* name) {
    for (int i = 0; i < 1000; i++) {
      auto t = std::make_unique<test::RawTenant>();
      if (t->connect_and_register(socket_, priority, name)) {
        tenants_.push_back(std::move(t));
        Segment* seg = tenants_.back()->segment();
        bool active = seg && tenants_.back()->wait_state(TenantState::kActive, 5'000'000'000ull);
        return active ? seg : nullptr;
      }
      usleep(10000);
    }
    return nullptr;
  }

 private:
  std::string dir_, socket_;
  pid_t pid_ = -1;
  std::vector<std::unique_ptr<test::RawTenant>> tenants_;
};

// The fikit policy as the broker starts by default (budget p99=1.10, quiet sleep), spinning
// `spin_us` after events; no GPU substrate to start or calibrate (switch cost 0, as on MPS), no
// eBPF observer, no profiles kept.
std::vector<std::string> t_fikit_args(int64_t spin_us) {
  std::vector<std::string> args = {"--policy", "fikit", "--spin-us", std::to_string(spin_us)};
  for (const char* a : {"--substrate", "timeslice", "--switch-cost-us", "0", "--no-bpf",
                        "--profile-dir", "", "--log-level", "warn"})
    args.push_back(a);
  return args;
}

// Wake the broker if it says it sleeps, after what the caller published. Full fence: pairs with
// the broker's "set sleeping; fence; re-check the rings" (the client library's wake_broker).
void t_ring(Segment* seg) {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (seg->broker.broker_sleeping.load(std::memory_order_relaxed)) {
    seg->broker.doorbell.fetch_add(1);
    futex_wake(&seg->broker.doorbell, 1);
  }
}

// Push an entry (retrying while the ring is full); return its position.
uint32_t t_push(Segment* seg, const EntryFields& f) {
  uint32_t pos;
  while (!ring__push(&seg->ring, f, &pos)) {
  }
  return pos;
}

// Spin until the request at `pos` is granted or `deadline_ns`; return when it was seen (0: not).
uint64_t t_wait_grant(Segment* seg, uint32_t pos, uint64_t deadline_ns) {
  for (;;) {
    uint64_t now = now_ns();
    if (pos_at_or_after(seg->broker.granted.load(std::memory_order_acquire), pos + 1)) return now;
    if (now > deadline_ns) return 0;
    cpu_relax();
  }
}

// The granted request `pos` runs as a kernel of `kernel_ns` on stream slot 0: its launch is
// reported with a marker, which "the GPU" writes (request position + 1) after kernel_ns.
void t_run_lp(Segment* seg, uint32_t pos, uint64_t kernel_ns) {
  uint64_t t = now_ns();
  t_push(seg, EntryFields{EntryKind::kLpLaunched, 0, pos, kFlagMarker, kLpKey, t});
  t_ring(seg);
  while (now_ns() < t + kernel_ns) cpu_relax();
  seg->slots[0].gpu_done.store(pos + 1, std::memory_order_release);
}

// One request → grant → "launched" cycle; return the request-to-grant time in ns.
uint64_t t_round_trip(Segment* seg) {
  uint64_t t0 = now_ns();
  uint32_t pos = t_push(seg, EntryFields{EntryKind::kLpRequest, 0, 0, 0, 7, t0});
  t_ring(seg);
  uint64_t dt = t_wait_grant(seg, pos, UINT64_MAX) - t0;
  t_push(seg, EntryFields{EntryKind::kLpLaunched, 0, pos, 0, 7, now_ns()});
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
  BenchBroker b({"--policy", "none"});
  Segment* seg = b.add(kPriorityLow, "grant-bench");
  if (!seg) return state.SkipWithError("broker did not start");
  std::vector<uint64_t> ns;
  for (auto _ : state) ns.push_back(t_round_trip(seg));
  t_report(state, ns);
}
BENCHMARK(BM_GrantRoundTripSpinning)->UseRealTime()->Iterations(20000);

void BM_GrantRoundTripBrokerAsleep(benchmark::State& state) {
  BenchBroker b({"--policy", "none"});
  Segment* seg = b.add(kPriorityLow, "grant-bench");
  if (!seg) return state.SkipWithError("broker did not start");
  std::vector<uint64_t> ns;
  for (auto _ : state) {
    state.PauseTiming();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // past the broker's spin window
    state.ResumeTiming();
    ns.push_back(t_round_trip(seg));
  }
  t_report(state, ns);
}
BENCHMARK(BM_GrantRoundTripBrokerAsleep)->UseRealTime()->Iterations(500);

// The fikit policy, an LP tenant alone and the broker asleep (2 ms after its last LP kernel
// ended): the doorbell path, request to grant. Argument: --spin-us.
void BM_FikitLpAloneBrokerAsleep(benchmark::State& state) {
  BenchBroker b(t_fikit_args(state.range(0)));
  Segment* seg = b.add(kPriorityLow, "grant-bench-lp");
  if (!seg) return state.SkipWithError("broker did not start");
  std::vector<uint64_t> ns;
  for (auto _ : state) {
    state.PauseTiming();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    state.ResumeTiming();
    uint64_t t0 = now_ns();
    uint32_t pos = t_push(seg, EntryFields{EntryKind::kLpRequest, 0, 0, 0, kLpKey, t0});
    t_ring(seg);
    uint64_t t = t_wait_grant(seg, pos, t0 + 1'000'000'000);
    if (!t) return state.SkipWithError("request not granted within 1 s");
    ns.push_back(t - t0);
    t_run_lp(seg, pos, 0);
  }
  t_report(state, ns);
}
BENCHMARK(BM_FikitLpAloneBrokerAsleep)->Arg(200)->Arg(0)->UseRealTime()->Iterations(500);

// The fikit policy, a gap opening: an HP tenant launches a "kernel" of 100-550 us on slot 0 (no
// marker), an LP request arrives while it runs, the HP drains (host_done, syncs, doorbell: the
// client library's drain) and stays idle for kGapNs, and the LP kernel (kLpKernelNs) runs in the
// gap. Measured: from the HP's drain to the LP seeing its grant, after kWarmup iterations in
// which the policy learns the gap and the LP kernel. A request not granted within the gap
// counts as `held` (the policy's choice, not its reaction). Argument: --spin-us.
constexpr uint64_t kGapNs = 1'500'000;
constexpr uint64_t kLpKernelNs = 50'000;
constexpr size_t kWarmup = 100;
constexpr uint64_t kHpKey = 0x4850;

void t_drain(Segment* seg, uint32_t last_pos, uint64_t t_ns) {
  seg->slots[0].host_done.store(last_pos + 1, std::memory_order_release);
  seg->slots[0].host_done_ns.store(t_ns, std::memory_order_release);
  seg->client.syncs.fetch_add(1, std::memory_order_release);
  t_ring(seg);
}

void BM_FikitGapGrant(benchmark::State& state) {
  BenchBroker b(t_fikit_args(state.range(0)));
  Segment* hp = b.add(kPriorityHigh, "grant-bench-hp");
  Segment* lp = b.add(kPriorityLow, "grant-bench-lp");
  if (!hp || !lp) return state.SkipWithError("broker did not start");
  std::vector<uint64_t> ns;
  uint64_t held = 0;
  for (size_t i = 0; state.KeepRunning(); i++) {
    uint64_t t0 = now_ns();
    uint32_t h = t_push(hp, EntryFields{EntryKind::kHpLaunch, 0, 0, 0, kHpKey, t0});
    uint32_t r = t_push(lp, EntryFields{EntryKind::kLpRequest, 0, 0, 0, kLpKey, now_ns()});
    t_ring(lp);
    uint64_t hp_ns = 100'000 + (i * 7919 % 10) * 50'000;
    while (now_ns() < t0 + hp_ns) cpu_relax();
    uint64_t drained = now_ns();
    t_drain(hp, h, drained);
    uint64_t g = t_wait_grant(lp, r, drained + kGapNs);
    if (g && i >= kWarmup) ns.push_back(g - drained);
    if (!g) {
      held += i >= kWarmup;
      if (!t_wait_grant(lp, r, now_ns() + 1'000'000'000))
        return state.SkipWithError("request not granted within 1 s");
    }
    t_run_lp(lp, r, kLpKernelNs);
    while (now_ns() < drained + kGapNs) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  t_report(state, ns);
  state.counters["held"] = static_cast<double>(held);
}
BENCHMARK(BM_FikitGapGrant)->Arg(200)->Arg(0)->UseRealTime()->Iterations(1600);

}  // namespace
}  // namespace fikit
