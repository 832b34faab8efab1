// fikit-chain: a synthetic kernel-chain workload on the CUDA driver API. It runs unchanged on the
// simulated driver (LD_LIBRARY_PATH=<build>/sim) or on a real GPU; results are one line of
// key=value pairs on stdout. See usage() for the modes.
#include <cuda.h>
#include <dlfcn.h>
#include <signal.h>
#include <sys/prctl.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "kernels_ptx.h"

namespace {

const char kUsage[] = R"(usage: fikit-chain MODE [OPTIONS]

  hp --requests R --kernels K --kernel-us X --gap-us G --request-gap-us RG
     [--sync stream|ctx|event|query] [--kernel spin|burn] [--grid N] [--block N] [--warmup N]
     [--gap-jitter F] [--gap-bimodal P:Y] [--seed S] [--hint-idle] [--gap-sleep]
      R requests of K kernels of X us; after each kernel the host synchronizes and works G us
      (an inference step reading back its results); RG us idle between requests.
      X and G may be lists (200,50 and 100,400): kernel i of a request is kernel key i mod N
      (N: the longer list; keys differ in block size), of X[i mod |X|] us, followed by a gap of
      G[i mod |G|] us. --gap-jitter F: each gap uniform in G*(1-F)..G*(1+F); --gap-bimodal P:Y:
      with probability P a gap lasts Y us instead (seeded by --seed, default 1). --hint-idle:
      tell the broker each gap's true length first (fikit_hint_idle, for the oracle policy).
      --gap-sleep: sleep through the gaps instead of working (frees the CPU on small machines).
      Prints jct_ms, request latency mean/p50/p90/p99/max in us, busy_us (kernel time),
      gap_us (host gaps, requests' gaps excluded) and ideal_us (one request alone).
  lp (--seconds S | --kernels N) --kernel-us X [--batch B] [--kernel spin|burn] [--grid N]
     [--block N]
      Batches of B kernels (default 4), synchronized after each batch, for S seconds or N kernels,
      or until SIGTERM/SIGINT (then it prints what it did). X may be a list (50,500): kernel n
      runs X[n mod |X|] us, one kernel key per entry.
      Prints kernels, elapsed_ms, busy_us (kernel time) and busy = busy_us/elapsed.
  model-hp --mix FILE --requests R --think-us T [--arrivals poisson|periodic] [--seed S]
     [--hint-idle]
      An inference server replaying a model's kernel mix (benchmarks/workload/mixes/): each
      request is one launch of a CUDA graph of the mix's kernels, then a stream sync; between
      requests the host thinks T us (poisson: exponential with mean T; periodic: T). Prints what
      hp prints, with request latencies timed on the GPU (events around the graph launch: a
      loaded host's scheduling does not count) and host_p50_us / host_p99_us timed on the
      host, busy_us (the mix's kernel time per request times R), and start_ns / end_ns
      (CLOCK_MONOTONIC) of the requests.
  model-lp --mix FILE (--seconds S | --iters N) [--progress FILE]
      A training loop replaying a mix: each iteration launches the mix's kernels one by one,
      then syncs; --progress appends each iteration's end (CLOCK_MONOTONIC ns) to FILE. Prints
      iters, kernels, elapsed_ms, busy_us and busy.
  order --kernels N --streams S [--graphs G] [--kernel-us X]
      N spin kernels round-robin over S streams, tagged with their per-stream sequence number
      from 1, X us each (default 2); with G > 0, half of them in G stretches captured into
      graphs (one graph per stream and stretch). Then one synchronization. Prints counts.
  --device-info
      Prints the device name, SM count, compute capability and driver version.

hp, lp and order take --devices D,D,... (CUdevice ordinals, default 0; model-hp and model-lp run
on device 0, which CUDA_VISIBLE_DEVICES picks): hp launches each kernel on
every device (one stream each, tensor-parallel style) and waits for all; lp launches each batch
on every device; order puts stream s on device D[s mod |D|]. The thread makes the device of
each launch current first (cuCtxSetCurrent), so with several devices it switches between
launches.

Mix files: one kernel class per line, "COUNT US GRID" (COUNT launches of a spin kernel of US us
and GRID blocks; each line its own kernel key), in launch order; "repeat N" ... "end" repeats the
lines between (no nesting); "#" starts a comment.

Kernels: spin (timer busy-wait; default grid = SMs x 128 threads) or burn (FMA loop filling the
GPU; default grid = SMs x 1024 threads); --grid and --block override. Tags appear in the
simulated driver's traces (FIKIT_SIM_TRACE).
Exit status: 0 success, 1 CUDA error, 2 usage error.

examples:
  fikit-chain hp --requests 200 --kernels 10 --kernel-us 200 --gap-us 100 --request-gap-us 2000
  fikit-chain hp --requests 100 --kernels 6 --kernel-us 100 --gap-us 50,400 --gap-jitter 0.2 \
      --request-gap-us 2000
  fikit-chain lp --seconds 10 --kernel-us 500
  LD_LIBRARY_PATH=build/sim FIKIT_SIM_TRACE=/tmp/t fikit-chain order --kernels 3000 --streams 4
)";

using Clock = std::chrono::steady_clock;

[[noreturn]] void usage_error(const std::string& msg) {
  fprintf(stderr, "fikit-chain: %s (see fikit-chain --help)\n", msg.c_str());
  exit(2);
}

void check(CUresult r, const char* what) {
  if (r == CUDA_SUCCESS) return;
  const char* name = nullptr;
  const char* text = nullptr;
  cuGetErrorName(r, &name);
  cuGetErrorString(r, &text);
  fprintf(stderr, "fikit-chain: %s failed: %s: %s\n", what, name ? name : "unknown error",
          text ? text : "no description");
  exit(1);
}
#define CK(call) check((call), #call)

double us_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

// Busy host work (the CPU side of an inference step).
void busy_us(double us) {
  auto t0 = Clock::now();
  while (us_since(t0) < us) {
  }
}

unsigned long long mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<unsigned long long>(ts.tv_sec) * 1000000000ull +
         static_cast<unsigned long long>(ts.tv_nsec);
}

void sleep_us(double us) {
  if (us <= 0) return;
  timespec ts{static_cast<time_t>(us / 1e6), static_cast<long>(std::fmod(us, 1e6) * 1e3)};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

// --key value options (and --flag options without a value), checked against the keys a mode
// accepts.
class Options {
 public:
  Options(int argc, char** argv, const std::set<std::string>& known,
          const std::set<std::string>& flags = {}) {
    for (int i = 2; i < argc; i++) {
      std::string k = argv[i];
      if (k.rfind("--", 0) == 0 && flags.count(k.substr(2))) {
        kv_[k.substr(2)] = "1";
        continue;
      }
      if (k.rfind("--", 0) != 0 || !known.count(k.substr(2)))
        usage_error("unknown option " + k + " for " + argv[1]);
      if (i + 1 >= argc) usage_error(k + " needs a value");
      kv_[k.substr(2)] = argv[++i];
    }
  }
  bool has(const std::string& k) const { return kv_.count(k) > 0; }
  std::string str(const std::string& k, const std::string& def) const {
    return has(k) ? kv_.at(k) : def;
  }
  // A non-negative number; `def` < 0 makes the option required.
  double num(const std::string& k, double def) const {
    if (!has(k)) {
      if (def < 0) usage_error("--" + k + " is required");
      return def;
    }
    char* end = nullptr;
    double v = strtod(kv_.at(k).c_str(), &end);
    if (*end || v < 0 || !std::isfinite(v)) usage_error("--" + k + " wants a number >= 0");
    return v;
  }
  // A comma-separated list of numbers >= 0 (one number is a list of one); required.
  std::vector<double> list(const std::string& k) const {
    if (!has(k)) usage_error("--" + k + " is required");
    std::vector<double> out;
    const std::string& s = kv_.at(k);
    for (size_t pos = 0; pos <= s.size();) {
      size_t comma = std::min(s.find(',', pos), s.size());
      std::string item = s.substr(pos, comma - pos);
      char* end = nullptr;
      double v = strtod(item.c_str(), &end);
      if (item.empty() || *end || v < 0 || !std::isfinite(v))
        usage_error("--" + k + " wants numbers >= 0 separated by commas");
      out.push_back(v);
      pos = comma + 1;
    }
    return out;
  }

 private:
  std::map<std::string, std::string> kv_;
};

struct Gpu {
  std::string name;
  int sms = 0;
  CUcontext ctx = nullptr;
  CUmodule module = nullptr;
};

Gpu open_gpu(bool load_kernels, int ordinal = 0) {
  Gpu g;
  CUdevice dev;
  char name[256];
  CK(cuInit(0));
  CK(cuDeviceGet(&dev, ordinal));
  CK(cuDeviceGetName(name, sizeof(name), dev));
  g.name = name;
  CK(cuDeviceGetAttribute(&g.sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev));
  CK(cuDevicePrimaryCtxRetain(&g.ctx, dev));
  CK(cuCtxSetCurrent(g.ctx));
  if (load_kernels) {
    if (!kKernelsPtx[0] && g.name.rfind("fikit simulated GPU", 0) != 0)
      fprintf(stderr, "fikit-chain: built without nvcc, it has no kernels for a real GPU\n");
    CK(cuModuleLoadData(&g.module, kKernelsPtx));
  }
  return g;
}

struct Kernel {
  CUfunction f = nullptr;
  unsigned grid = 1, block = 32;
};

Kernel pick_kernel(const Gpu& g, const Options& o) {
  std::string name = o.str("kernel", "spin");
  if (name != "spin" && name != "burn") usage_error("--kernel wants spin or burn");
  Kernel k;
  CK(cuModuleGetFunction(&k.f, g.module, name.c_str()));
  bool spin = name == "spin";
  // burn: 32 warps per SM keep every FP32 pipe busy. At 2048 threads per SM an H100 starts some
  // blocks ~45 us late, and a burn kernel overruns its duration by as much (measured).
  k.grid = static_cast<unsigned>(o.num("grid", g.sms));
  k.block = static_cast<unsigned>(o.num("block", spin ? 128 : 1024));
  if (k.grid == 0) usage_error("--grid wants at least 1");
  if (k.block == 0 || k.block > 1024) usage_error("--block wants 1 to 1024");
  return k;
}

// The devices of --devices (default 0), each opened with its primary context and kernels; the
// first one's context is left current.
std::vector<Gpu> open_gpus(const Options& o) {
  std::vector<Gpu> out;
  for (double d : o.has("devices") ? o.list("devices") : std::vector<double>{0})
    out.push_back(open_gpu(true, static_cast<int>(d)));
  CK(cuCtxSetCurrent(out[0].ctx));
  return out;
}

// Launch kernel `k` for `us`; `key` > 0 makes it another kernel key (32 more threads per block
// per key: same SM demand, another launch shape).
void launch(const Kernel& k, CUstream s, double us, uint64_t tag, size_t key = 0) {
  unsigned long long ns = static_cast<unsigned long long>(us * 1000.0);
  unsigned long long t = tag;
  void* params[] = {&ns, &t};
  unsigned block = static_cast<unsigned>((k.block - 1 + 32 * key) % 1024 + 1);
  CK(cuLaunchKernel(k.f, k.grid, 1, 1, block, 1, 1, 0, s, params, nullptr));
}

// The host gap after each kernel of an hp request: per key, jittered, sometimes long.
class GapPlan {
 public:
  explicit GapPlan(const Options& o) : gaps_(o.list("gap-us")), rng_(o.num("seed", 1)) {
    jitter_ = o.num("gap-jitter", 0);
    if (jitter_ > 1) usage_error("--gap-jitter wants a fraction from 0 to 1");
    if (o.has("gap-bimodal")) {
      std::string b = o.str("gap-bimodal", "");
      char* end = nullptr;
      long_p_ = strtod(b.c_str(), &end);
      if (*end != ':' || long_p_ < 0 || long_p_ > 1) usage_error("--gap-bimodal wants P:Y");
      long_us_ = strtod(end + 1, &end);
      if (*end || long_us_ < 0) usage_error("--gap-bimodal wants P:Y (Y in us)");
    }
  }
  size_t keys() const { return gaps_.size(); }
  // The gap after a kernel of key index `key`, in us.
  double next(size_t key) {
    std::uniform_real_distribution<double> u(0, 1);
    if (long_p_ > 0 && u(rng_) < long_p_) return long_us_;
    double g = gaps_[key % gaps_.size()];
    return jitter_ > 0 ? g * (1 - jitter_ + 2 * jitter_ * u(rng_)) : g;
  }

 private:
  std::vector<double> gaps_;
  std::mt19937_64 rng_;
  double jitter_ = 0, long_p_ = 0, long_us_ = 0;
};

// fikit_hint_idle of libfikit.so when the process runs with it (resolved at run time, so that the
// program runs without the library), else nullptr.
using HintFn = int (*)(uint64_t);
HintFn find_hint_idle() { return reinterpret_cast<HintFn>(dlsym(RTLD_DEFAULT, "fikit_hint_idle")); }

// Wait for the stream the way an application would: `mode` is stream, ctx, event or query.
void sync(const std::string& mode, CUstream s, CUevent ev) {
  if (mode == "stream") {
    CK(cuStreamSynchronize(s));
  } else if (mode == "ctx") {
    CK(cuCtxSynchronize());
  } else if (mode == "event") {
    CK(cuEventRecord(ev, s));
    CK(cuEventSynchronize(ev));
  } else {
    CUresult r;
    while ((r = cuStreamQuery(s)) == CUDA_ERROR_NOT_READY) {
    }
    CK(r);
  }
}

// Nearest-rank percentile of sorted values.
double pct(const std::vector<double>& v, double q) {
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank ? rank - 1 : 0)];
}

int run_hp(int argc, char** argv) {
  Options o(argc, argv,
            {"requests", "kernels", "kernel-us", "gap-us", "request-gap-us", "sync", "kernel",
             "grid", "block", "warmup", "gap-jitter", "gap-bimodal", "seed", "devices"},
            {"hint-idle", "gap-sleep"});
  bool gap_sleep = o.has("gap-sleep");
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);  // sleeps of ~100 us: not 50 us late
  int requests = static_cast<int>(o.num("requests", -1));
  int kernels = static_cast<int>(o.num("kernels", -1));
  std::vector<double> kus = o.list("kernel-us");
  GapPlan gaps(o);
  double rgap = o.num("request-gap-us", -1);
  size_t nkeys = std::max(kus.size(), gaps.keys());
  std::string mode = o.str("sync", "stream");
  if (mode != "stream" && mode != "ctx" && mode != "event" && mode != "query")
    usage_error("--sync wants stream, ctx, event or query");
  if (requests < 1 || kernels < 1) usage_error("--requests and --kernels want at least 1");
  HintFn hint = o.has("hint-idle") ? find_hint_idle() : nullptr;
  if (o.has("hint-idle") && !hint)
    fprintf(stderr, "fikit-chain: --hint-idle: not running with libfikit.so, no hints sent\n");
  std::vector<Gpu> gpus = open_gpus(o);
  std::vector<Kernel> ks;
  std::vector<CUstream> ss(gpus.size());
  std::vector<CUevent> evs(gpus.size());
  for (size_t d = 0; d < gpus.size(); d++) {
    CK(cuCtxSetCurrent(gpus[d].ctx));
    ks.push_back(pick_kernel(gpus[d], o));
    CK(cuStreamCreate(&ss[d], CU_STREAM_NON_BLOCKING));
    CK(cuEventCreate(&evs[d], CU_EVENT_DISABLE_TIMING));
    for (int i = 0, n = static_cast<int>(o.num("warmup", 0)); i < n; i++)
      launch(ks[d], ss[d], 1, 0);
    CK(cuStreamSynchronize(ss[d]));
  }

  std::vector<double> lat;
  uint64_t tag = 0;
  double busy = 0, host = 0;
  auto start = Clock::now();
  for (int r = 0; r < requests; r++) {
    auto t0 = Clock::now();
    for (int i = 0; i < kernels; i++) {
      size_t key = static_cast<size_t>(i) % nkeys;
      double us = kus[key % kus.size()];
      ++tag;
      for (size_t d = 0; d < gpus.size(); d++) {
        if (gpus.size() > 1) CK(cuCtxSetCurrent(gpus[d].ctx));
        launch(ks[d], ss[d], us, tag, nkeys > 1 ? key : 0);
      }
      busy += us;
      for (size_t d = 0; d < gpus.size(); d++) {
        if (gpus.size() > 1) CK(cuCtxSetCurrent(gpus[d].ctx));
        sync(mode, ss[d], evs[d]);
      }
      if (i + 1 == kernels) break;
      double gap = gaps.next(key);
      host += gap;
      if (hint) hint(static_cast<uint64_t>(gap * 1000.0));
      if (gap_sleep)
        sleep_us(gap);
      else
        busy_us(gap);
    }
    lat.push_back(us_since(t0));
    if (r + 1 == requests) break;
    if (hint) hint(static_cast<uint64_t>(rgap * 1000.0));
    sleep_us(rgap);
  }
  double jct_ms = us_since(start) / 1000.0;
  std::sort(lat.begin(), lat.end());
  double mean = 0;
  for (double x : lat) mean += x / static_cast<double>(lat.size());
  printf(
      "mode=hp requests=%d kernels=%d kernel_us=%s gap_us=%s request_gap_us=%g sync=%s "
      "jct_ms=%.3f mean_us=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f busy_us=%.1f "
      "gap_us_total=%.1f ideal_us=%.1f\n",
      requests, kernels, o.str("kernel-us", "").c_str(), o.str("gap-us", "").c_str(), rgap,
      mode.c_str(), jct_ms, mean, pct(lat, 0.5), pct(lat, 0.9), pct(lat, 0.99), lat.back(), busy,
      host, (busy + host) / requests);
  return 0;
}

// A model's kernel mix (usage: "Mix files"): the launches of one request or iteration in order.
struct MixKernel {
  double us;
  unsigned grid;
  size_t key;  // the line it came from: one kernel key per line
};

std::vector<MixKernel> read_mix(const std::string& path) {
  FILE* f = fopen(path.c_str(), "r");
  if (!f) usage_error("cannot read mix file " + path);
  std::vector<MixKernel> out, block;
  long repeat = 0;
  size_t key = 0;
  char line[512];
  for (int no = 1; fgets(line, sizeof(line), f); no++) {
    if (char* hash = strchr(line, '#')) *hash = '\0';
    char word[32];
    long count = 0, n = 0;
    double us = 0;
    unsigned grid = 0;
    std::string where = path + ":" + std::to_string(no);
    if (sscanf(line, " %31s", word) != 1) continue;
    if (!strcmp(word, "repeat")) {
      if (repeat || sscanf(line, " repeat %ld", &n) != 1 || n < 1)
        usage_error(where + ": bad repeat");
      repeat = n;
    } else if (!strcmp(word, "end")) {
      if (!repeat) usage_error(where + ": end without repeat");
      for (long r = 0; r < repeat; r++) out.insert(out.end(), block.begin(), block.end());
      block.clear();
      repeat = 0;
    } else if (sscanf(line, " %ld %lf %u", &count, &us, &grid) == 3 && count > 0 && us >= 0 &&
               grid > 0) {
      for (long i = 0; i < count; i++) (repeat ? block : out).push_back({us, grid, key});
      key++;
    } else {
      usage_error(where + ": expected COUNT US GRID, repeat N or end");
    }
  }
  fclose(f);
  if (repeat) usage_error(path + ": repeat without end");
  if (out.empty()) usage_error(path + ": no kernels");
  return out;
}

void launch_mix_kernel(const Kernel& k, CUstream s, const MixKernel& m, uint64_t tag) {
  Kernel shaped = k;
  shaped.grid = m.grid;
  launch(shaped, s, m.us, tag, m.key);
}

int run_model_hp(int argc, char** argv) {
  Options o(argc, argv, {"mix", "requests", "think-us", "arrivals", "seed"}, {"hint-idle"});
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
  std::vector<MixKernel> mix = read_mix(o.str("mix", ""));
  int requests = static_cast<int>(o.num("requests", -1));
  double think = o.num("think-us", -1);
  std::string arrivals = o.str("arrivals", "poisson");
  if (arrivals != "poisson" && arrivals != "periodic")
    usage_error("--arrivals wants poisson or periodic");
  if (requests < 1) usage_error("--requests wants at least 1");
  HintFn hint = o.has("hint-idle") ? find_hint_idle() : nullptr;
  std::mt19937_64 rng(static_cast<uint64_t>(o.num("seed", 1)));
  std::exponential_distribution<double> exp_think(think > 0 ? 1.0 / think : 1.0);
  Gpu g = open_gpu(true);
  Kernel k = pick_kernel(g, o);
  CUstream s;
  CUevent ev_start, ev_end;
  CK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  CK(cuEventCreate(&ev_start, CU_EVENT_DEFAULT));
  CK(cuEventCreate(&ev_end, CU_EVENT_DEFAULT));
  // The request as a graph, as a served model replays one (captured once, launched per request).
  CUgraph graph;
  CUgraphExec exec;
  double mix_us = 0;
  CK(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL));
  for (size_t i = 0; i < mix.size(); i++) {
    launch_mix_kernel(k, s, mix[i], i + 1);
    mix_us += mix[i].us;
  }
  CK(cuStreamEndCapture(s, &graph));
  CK(cuGraphInstantiate(&exec, graph, 0));
  CK(cuGraphLaunch(exec, s));  // warm-up
  CK(cuStreamSynchronize(s));
  std::vector<double> lat, host_lat;
  auto start = Clock::now();
  unsigned long long start_ns = mono_ns();
  for (int r = 0; r < requests; r++) {
    auto t0 = Clock::now();
    CK(cuEventRecord(ev_start, s));
    CK(cuGraphLaunch(exec, s));
    CK(cuEventRecord(ev_end, s));
    CK(cuStreamSynchronize(s));
    host_lat.push_back(us_since(t0));
    float ms = 0;
    CK(cuEventElapsedTime(&ms, ev_start, ev_end));
    lat.push_back(static_cast<double>(ms) * 1000.0);
    if (r + 1 == requests) break;
    double gap = arrivals == "periodic" ? think : exp_think(rng);
    if (hint) hint(static_cast<uint64_t>(gap * 1000.0));
    sleep_us(gap);
  }
  double jct_ms = us_since(start) / 1000.0;
  unsigned long long end_ns = mono_ns();
  CK(cuGraphExecDestroy(exec));
  CK(cuGraphDestroy(graph));
  std::sort(lat.begin(), lat.end());
  std::sort(host_lat.begin(), host_lat.end());
  double mean = 0;
  for (double x : lat) mean += x / static_cast<double>(lat.size());
  printf(
      "mode=model-hp mix=%s requests=%d kernels=%zu arrivals=%s think_us=%g jct_ms=%.3f "
      "mean_us=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f busy_us=%.1f ideal_us=%.1f "
      "start_ns=%llu end_ns=%llu host_p50_us=%.1f host_p99_us=%.1f\n",
      o.str("mix", "").c_str(), requests, mix.size(), arrivals.c_str(), think, jct_ms, mean,
      pct(lat, 0.5), pct(lat, 0.9), pct(lat, 0.99), lat.back(), mix_us * requests, mix_us, start_ns,
      end_ns, pct(host_lat, 0.5), pct(host_lat, 0.99));
  return 0;
}

// Set by SIGTERM/SIGINT: lp finishes its batch and prints what it did (scripts stop it when HP is
// done).
volatile sig_atomic_t g_stop = 0;
void on_stop(int) { g_stop = 1; }

int run_lp(int argc, char** argv) {
  Options o(argc, argv,
            {"seconds", "kernels", "kernel-us", "batch", "kernel", "grid", "block", "devices"});
  if (o.has("seconds") == o.has("kernels")) usage_error("lp wants one of --seconds or --kernels");
  double seconds = o.num("seconds", 0);
  std::vector<double> kus = o.list("kernel-us");
  long limit = static_cast<long>(o.num("kernels", 0));
  int batch = static_cast<int>(o.num("batch", 4));
  if (batch < 1) usage_error("--batch wants at least 1");
  std::vector<Gpu> gpus = open_gpus(o);
  std::vector<Kernel> ks;
  std::vector<CUstream> ss(gpus.size());
  for (size_t d = 0; d < gpus.size(); d++) {
    CK(cuCtxSetCurrent(gpus[d].ctx));
    ks.push_back(pick_kernel(gpus[d], o));
    CK(cuStreamCreate(&ss[d], CU_STREAM_NON_BLOCKING));
  }
  long done = 0;
  double busy = 0;
  signal(SIGTERM, on_stop);
  signal(SIGINT, on_stop);
  auto t0 = Clock::now();
  while (!g_stop && (limit ? done < limit : us_since(t0) < seconds * 1e6)) {
    int n = limit ? static_cast<int>(std::min<long>(batch, limit - done)) : batch;
    for (size_t d = 0; d < gpus.size(); d++) {
      if (gpus.size() > 1) CK(cuCtxSetCurrent(gpus[d].ctx));
      for (int i = 0; i < n; i++) {
        size_t key = static_cast<size_t>(done + i) % kus.size();
        launch(ks[d], ss[d], kus[key], static_cast<uint64_t>(done + i + 1), key);
        if (d == 0) busy += kus[key];  // per device: each runs the same kernels
      }
    }
    for (size_t d = 0; d < gpus.size(); d++) {
      if (gpus.size() > 1) CK(cuCtxSetCurrent(gpus[d].ctx));
      CK(cuStreamSynchronize(ss[d]));
    }
    done += n;
  }
  double el = us_since(t0);
  printf("mode=lp kernels=%ld kernel_us=%s batch=%d elapsed_ms=%.3f busy_us=%.1f busy=%.3f\n", done,
         o.str("kernel-us", "").c_str(), batch, el / 1000.0, busy, busy / el);
  return 0;
}

int run_model_lp(int argc, char** argv) {
  Options o(argc, argv, {"mix", "seconds", "iters", "progress"});
  if (o.has("seconds") == o.has("iters")) usage_error("model-lp wants one of --seconds or --iters");
  std::vector<MixKernel> mix = read_mix(o.str("mix", ""));
  double seconds = o.num("seconds", 0);
  long limit = static_cast<long>(o.num("iters", 0));
  Gpu g = open_gpu(true);
  Kernel k = pick_kernel(g, o);
  CUstream s;
  CK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  FILE* progress = o.has("progress") ? fopen(o.str("progress", "").c_str(), "a") : nullptr;
  if (o.has("progress") && !progress) usage_error("cannot open --progress file");
  signal(SIGTERM, on_stop);
  signal(SIGINT, on_stop);
  long iters = 0, kernels = 0;
  double busy = 0;
  uint64_t tag = 0;
  auto t0 = Clock::now();
  while (!g_stop && (limit ? iters < limit : us_since(t0) < seconds * 1e6)) {
    for (const MixKernel& m : mix) {
      launch_mix_kernel(k, s, m, ++tag);
      busy += m.us;
    }
    CK(cuStreamSynchronize(s));
    kernels += static_cast<long>(mix.size());
    iters++;
    if (progress) {
      fprintf(progress, "%llu\n", static_cast<unsigned long long>(mono_ns()));
      fflush(progress);
    }
  }
  if (progress) fclose(progress);
  double el = us_since(t0);
  printf("mode=model-lp mix=%s iters=%ld kernels=%ld elapsed_ms=%.3f busy_us=%.1f busy=%.3f\n",
         o.str("mix", "").c_str(), iters, kernels, el / 1000.0, busy, busy / el);
  return 0;
}

// Launch kernels [first, last) of the order sequence on their streams, directly or (as_graph) by
// capturing each stream's share into a graph and launching that. Return the graphs launched.
// Stream s is on device s mod |gpus| (made current before each of its launches when there are
// several).
int order_stretch(const std::vector<Kernel>& ks, const std::vector<Gpu>& gpus,
                  const std::vector<CUstream>& streams, long first, long last, double kus,
                  bool as_graph, std::vector<CUgraphExec>* execs) {
  long n = static_cast<long>(streams.size());
  auto use = [&](long s) {
    if (gpus.size() > 1) CK(cuCtxSetCurrent(gpus[static_cast<size_t>(s) % gpus.size()].ctx));
    return ks[static_cast<size_t>(s) % gpus.size()];
  };
  if (!as_graph) {
    for (long i = first; i < last; i++) launch(use(i % n), streams[i % n], kus, i / n + 1);
    return 0;
  }
  int graphs = 0;
  for (long s = 0; s < n; s++) {
    long i = first + ((s - first % n) + n) % n;  // first kernel of stream s in the stretch
    if (i >= last) continue;
    Kernel k = use(s);
    CUgraph graph;
    CUgraphExec exec;
    CK(cuStreamBeginCapture(streams[s], CU_STREAM_CAPTURE_MODE_THREAD_LOCAL));
    for (; i < last; i += n) launch(k, streams[s], kus, i / n + 1);
    CK(cuStreamEndCapture(streams[s], &graph));
    CK(cuGraphInstantiate(&exec, graph, 0));
    CK(cuGraphLaunch(exec, streams[s]));
    CK(cuGraphDestroy(graph));
    execs->push_back(exec);
    graphs++;
  }
  return graphs;
}

int run_order(int argc, char** argv) {
  Options o(argc, argv, {"kernels", "streams", "graphs", "kernel-us", "devices"});
  long kernels = static_cast<long>(o.num("kernels", -1));
  int nstreams = static_cast<int>(o.num("streams", -1));
  long stretches = 2 * static_cast<long>(o.num("graphs", 0));
  double kus = o.num("kernel-us", 2);
  if (nstreams < 1) usage_error("--streams wants at least 1");
  std::vector<Gpu> gpus = open_gpus(o);
  std::vector<Kernel> ks(gpus.size());
  for (size_t d = 0; d < gpus.size(); d++)
    CK(cuModuleGetFunction(&ks[d].f, gpus[d].module, "spin"));
  std::vector<CUstream> streams(nstreams);
  for (int s = 0; s < nstreams; s++) {
    CK(cuCtxSetCurrent(gpus[static_cast<size_t>(s) % gpus.size()].ctx));
    CK(cuStreamCreate(&streams[s], CU_STREAM_NON_BLOCKING));
  }
  std::vector<CUgraphExec> execs;
  int graphs = 0;
  long graph_kernels = 0;
  auto t0 = Clock::now();
  long parts = std::max(1L, stretches);
  for (long b = 0; b < parts; b++) {
    long first = kernels * b / parts, last = kernels * (b + 1) / parts;
    bool as_graph = b % 2 == 1;
    graphs += order_stretch(ks, gpus, streams, first, last, kus, as_graph, &execs);
    if (as_graph) graph_kernels += last - first;
  }
  for (const Gpu& g : gpus) {
    CK(cuCtxSetCurrent(g.ctx));
    CK(cuCtxSynchronize());
  }
  double el = us_since(t0);
  for (CUgraphExec e : execs) CK(cuGraphExecDestroy(e));
  printf("mode=order kernels=%ld streams=%d graphs=%d graph_kernels=%ld elapsed_ms=%.3f\n", kernels,
         nstreams, graphs, graph_kernels, el / 1000.0);
  return 0;
}

int device_info() {
  Gpu g = open_gpu(false);
  int major = 0, minor = 0, version = 0;
  size_t mem = 0;
  CK(cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 0));
  CK(cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, 0));
  CK(cuDriverGetVersion(&version));
  CK(cuDeviceTotalMem(&mem, 0));
  printf("device=\"%s\" sms=%d cc=%d.%d driver=%d memory_gib=%.1f\n", g.name.c_str(), g.sms, major,
         minor, version, static_cast<double>(mem) / (1 << 30));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage_error("no mode given");
  std::string mode = argv[1];
  if (mode == "--help" || mode == "-h") {
    fputs(kUsage, stdout);
    return 0;
  }
  if (mode == "--device-info") return device_info();
  if (mode == "hp") return run_hp(argc, argv);
  if (mode == "lp") return run_lp(argc, argv);
  if (mode == "order") return run_order(argc, argv);
  if (mode == "model-hp") return run_model_hp(argc, argv);
  if (mode == "model-lp") return run_model_lp(argc, argv);
  usage_error("unknown mode " + mode);
}
