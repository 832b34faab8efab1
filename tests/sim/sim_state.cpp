// Shared state of the simulated GPU: env configuration, shm creation and attachment, the robust
// lock and the slot tables.
#include "sim/sim_state.h"

#include <fcntl.h>
#include <fikit/util.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

namespace fikit::sim {
namespace {

constexpr uint64_t kReclaimPeriodNs = 20'000'000;
constexpr uint64_t kAttachTimeoutNs = 5'000'000'000;
constexpr int kLockSpins = 200;  // a few microseconds of trylock before blocking

// Parse env `name` as an unsigned integer in [lo, hi] times `scale` into *out (kept if unset).
bool env_u64(const char* name, uint64_t lo, uint64_t hi, uint64_t scale, uint64_t* out,
             std::string* err) {
  const char* s = getenv(name);
  if (!s || !*s) return true;
  char* end = nullptr;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || s[0] == '-' || v < lo || v > hi) {
    *err = std::string(name) + "=" + s + ": expected an integer in [" + std::to_string(lo) + ", " +
           std::to_string(hi) + "]";
    return false;
  }
  *out = v * scale;
  return true;
}

// Parse env `name` as a comma-separated list of unsigned integers in [lo, hi] (kept if unset).
bool env_u64_list(const char* name, uint64_t lo, uint64_t hi, std::vector<uint32_t>* out,
                  std::string* err) {
  const char* s = getenv(name);
  if (!s || !*s) return true;
  std::vector<uint32_t> values;
  for (const char* p = s;;) {
    char* end = nullptr;
    errno = 0;
    unsigned long long v = strtoull(p, &end, 10);
    if (errno || end == p || *p == '-' || v < lo || v > hi || (*end && *end != ',')) {
      *err = std::string(name) + "=" + s + ": expected integers in [" + std::to_string(lo) + ", " +
             std::to_string(hi) + "], comma-separated (one per simulated GPU)";
      return false;
    }
    values.push_back(static_cast<uint32_t>(v));
    if (!*end) break;
    p = end + 1;
  }
  *out = values;
  return true;
}

uint32_t size_kib() { return static_cast<uint32_t>(sizeof(SimShared) / 1024); }

void init_shared(SimShared* g, const Config& cfg) {
  // The object is fresh from ftruncate: all zero.
  g->version = kSimVersion;
  g->size = size_kib();
  g->mode = cfg.mode;
  g->sms = cfg.sms;
  g->timeslice_ns = cfg.timeslice_ns;
  g->switch_ns = cfg.switch_ns;
  g->slice_clock = static_cast<uint32_t>(cfg.slice_clock);
  g->mps_bw = static_cast<double>(cfg.mps_bw_pct) / 100.0;
  g->mps_slots = static_cast<uint32_t>(cfg.mps_slots);
  g->active_ctx = -1;
  g->switch_to = -1;
  g->now_ns = now_ns();
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&g->lock, &a);
  pthread_mutexattr_destroy(&a);
  g->magic.store(kSimMagic, std::memory_order_release);  // pairs with the acquire in wait_ready
}

// Wait until the creator has sized and initialized the object. Return nullptr on timeout.
SimShared* map_when_ready(int fd, const std::string& name, std::string* err) {
  uint64_t deadline = now_ns() + kAttachTimeoutNs;
  for (;;) {
    struct stat st;
    if (fstat(fd, &st) == 0 && static_cast<size_t>(st.st_size) >= sizeof(SimShared)) break;
    if (now_ns() > deadline) {
      *err = "simulated GPU " + name + " was never initialized: remove /dev/shm" + name;
      return nullptr;
    }
    usleep(1000);
  }
  void* m = mmap(nullptr, sizeof(SimShared), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) {
    *err = "failed to map " + name + ": " + strerror(errno);
    return nullptr;
  }
  auto* g = static_cast<SimShared*>(m);
  while (g->magic.load(std::memory_order_acquire) != kSimMagic) {  // pairs with init_shared
    if (now_ns() > deadline) {
      *err = "simulated GPU " + name + " has no valid header: remove /dev/shm" + name;
      munmap(m, sizeof(SimShared));
      return nullptr;
    }
    usleep(1000);
  }
  if (g->version != kSimVersion || g->size != size_kib()) {
    *err = "simulated GPU " + name + " was created by another sim version: remove /dev/shm" + name;
    munmap(m, sizeof(SimShared));
    return nullptr;
  }
  return g;
}

// Return true if `pid` exists and is not a zombie.
bool pid_alive(int pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return false;
  char path[64], buf[256];
  snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno != ENOENT;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return true;
  buf[n] = '\0';
  const char* paren = strrchr(buf, ')');  // "pid (comm) S ...": comm may contain spaces
  return !(paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X'));
}

void stream_drop(SimStream& s) { s = SimStream{}; }

// After a holder died mid-update: put every ring back in a valid state (head <= exec <= tail).
void repair(SimShared& g) {
  for (uint32_t i = 0; i < kMaxStreams; i++) {
    SimStream& s = g.streams[i];
    if (!s.in_use) continue;
    uint32_t queued = s.tail - s.head;
    if (queued > kStreamRing || s.exec - s.head > queued) s.head = s.exec = s.tail;
  }
  if (g.stream_hwm > kMaxStreams) g.stream_hwm = kMaxStreams;
}

}  // namespace

bool config_from_env(Config* cfg, std::string* err) {
  const char* name = getenv("FIKIT_SIM_GPU");
  if (name && *name) {
    cfg->shm_name = name[0] == '/' ? name : std::string("/") + name;
  } else {
    cfg->shm_name = "/fikit-sim-gpu-" + std::to_string(getuid());
  }
  if (const char* m = getenv("FIKIT_SIM_MODE"); m && *m) {
    if (!strcmp(m, "timeslice")) {
      cfg->mode = Mode::kTimeslice;
    } else if (!strcmp(m, "mps")) {
      cfg->mode = Mode::kMps;
    } else {
      *err = std::string("FIKIT_SIM_MODE=") + m + ": expected timeslice or mps";
      return false;
    }
  }
  uint64_t devices = cfg->devices;
  if (!env_u64("FIKIT_SIM_DEVICES", 1, kMaxSimDevices, 1, &devices, err) ||
      !env_u64_list("FIKIT_SIM_SMS", 1, 4096, &cfg->device_sms, err) ||
      !env_u64("FIKIT_SIM_TIMESLICE_US", 1, 10'000'000, 1000, &cfg->timeslice_ns, err) ||
      !env_u64("FIKIT_SIM_SWITCH_US", 0, 10'000'000, 1000, &cfg->switch_ns, err) ||
      !env_u64("FIKIT_SIM_DEFAULT_KERNEL_US", 0, 100'000'000, 1000, &cfg->default_kernel_ns, err) ||
      !env_u64("FIKIT_SIM_LAUNCH_NS", 0, 100'000'000, 1, &cfg->launch_ns, err) ||
      !env_u64("FIKIT_SIM_SLICE_CLOCK", 0, 1, 1, &cfg->slice_clock, err) ||
      !env_u64("FIKIT_SIM_MPS_BW_PCT", 0, 1000, 1, &cfg->mps_bw_pct, err) ||
      !env_u64("FIKIT_SIM_MPS_SLOTS", 1, 8, 1, &cfg->mps_slots, err) ||
      !env_u64("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE", 1, 100, 1, &cfg->mps_thread_pct, err) ||
      !env_u64("CUDA_MPS_CLIENT_PRIORITY", 0, 1, 1, &cfg->mps_priority, err))
    return false;
  cfg->devices = static_cast<uint32_t>(devices);
  if (cfg->device_sms.empty()) cfg->device_sms.push_back(cfg->sms);
  cfg->sms = cfg->device_sms[0];
  const char* trace = getenv("FIKIT_SIM_TRACE");
  cfg->trace_prefix = trace ? trace : "";
  return true;
}

SimShared* gpu_attach(const Config& cfg, std::string* err) {
  const char* name = cfg.shm_name.c_str();
  int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    // Every user may use the GPU, as /dev/nvidia* is 0666: a broker running as root lists the
    // GPUs (fikit-calibrate --list) before any tenant, which is then another user.
    if (fchmod(fd, 0666) != 0 || ftruncate(fd, sizeof(SimShared)) != 0) {
      *err = "failed to size " + cfg.shm_name + ": " + strerror(errno);
      close(fd);
      shm_unlink(name);
      return nullptr;
    }
    void* m = mmap(nullptr, sizeof(SimShared), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
      *err = "failed to map " + cfg.shm_name + ": " + strerror(errno);
      shm_unlink(name);
      return nullptr;
    }
    init_shared(static_cast<SimShared*>(m), cfg);
    return static_cast<SimShared*>(m);
  }
  if (errno != EEXIST) {
    *err = "failed to create " + cfg.shm_name + ": " + strerror(errno);
    return nullptr;
  }
  fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) {
    *err = "failed to open " + cfg.shm_name + ": " + strerror(errno);
    return nullptr;
  }
  SimShared* g = map_when_ready(fd, cfg.shm_name, err);
  close(fd);
  return g;
}

void gpu_detach(SimShared* g) {
  if (g) munmap(g, sizeof(SimShared));
}

ShmLock::ShmLock(SimShared* g) : g_(g) {
  // Critical sections last microseconds: spin a little before sleeping in the kernel, whose
  // wake-up would cost tens of microseconds.
  int r = EBUSY;
  for (int i = 0; i < kLockSpins && r == EBUSY; i++) {
    r = pthread_mutex_trylock(&g->lock);
    if (r == EBUSY) cpu_relax();
  }
  if (r == EBUSY) r = pthread_mutex_lock(&g->lock);
  if (r == EOWNERDEAD) {
    // The holder died inside a critical section: repair what it may have left half-done and drop
    // the work of every dead process (it is among them).
    pthread_mutex_consistent(&g->lock);
    repair(*g);
    reclaim_dead(*g, now_ns(), true);
  } else if (r != 0) {
    fprintf(stderr, "fikit sim: failed to lock the simulated GPU: %s\n", strerror(r));
    abort();
  }
}

ShmLock::~ShmLock() { pthread_mutex_unlock(&g_->lock); }

int32_t proc_alloc(SimShared& g, int pid) {
  for (uint32_t i = 0; i < kMaxProcs; i++) {
    if (g.procs[i].in_use) continue;
    g.procs[i] = SimProc{.pid = pid, .in_use = 1, .kernels = 0};
    return static_cast<int32_t>(i);
  }
  return -1;
}

int32_t ctx_alloc(SimShared& g, int32_t proc) {
  for (uint32_t i = 0; i < kMaxContexts; i++) {
    if (g.ctxs[i].in_use) continue;
    g.ctxs[i] = SimContext{.in_use = 1, .proc = proc};
    return static_cast<int32_t>(i);
  }
  return -1;
}

int32_t stream_alloc(SimShared& g, int32_t proc, int32_t ctx, uint32_t local_id) {
  for (uint32_t i = 0; i < kMaxStreams; i++) {
    if (g.streams[i].in_use) continue;
    g.streams[i] = SimStream{.in_use = 1, .proc = proc, .ctx = ctx, .local_id = local_id};
    if (i >= g.stream_hwm) g.stream_hwm = i + 1;
    return static_cast<int32_t>(i);
  }
  return -1;
}

int32_t event_alloc(SimShared& g, int32_t proc) {
  for (uint32_t i = 0; i < kMaxEvents; i++) {
    SimEvent& e = g.events[i];
    if (e.in_use) continue;
    uint32_t serial = e.serial + 1;
    e = SimEvent{.in_use = 1, .serial = serial, .proc = proc};
    return static_cast<int32_t>(i);
  }
  return -1;
}

void stream_free_if_drained(SimShared& g, uint32_t slot) {
  SimStream& s = g.streams[slot];
  if (s.destroyed && s.head == s.tail) stream_drop(s);
}

void event_free(SimShared& g, uint32_t slot) {
  g.events[slot] = SimEvent{.serial = g.events[slot].serial};
}

void ctx_free(SimShared& g, int32_t ctx) {
  for (uint32_t i = 0; i < g.stream_hwm; i++)
    if (g.streams[i].in_use && g.streams[i].ctx == ctx) stream_drop(g.streams[i]);
  g.ctxs[ctx] = SimContext{};
  // A switch to a context that is gone is abandoned; a switch away from it goes on. A loaded
  // context that goes away leaves nothing loaded: the next one starts without a switch.
  if (g.switch_to == ctx) {
    g.switch_to = -1;
  } else if (g.active_ctx == ctx && g.switch_to < 0) {
    g.active_ctx = -1;
  }
}

void proc_free(SimShared& g, int32_t proc) {
  for (uint32_t i = 0; i < kMaxContexts; i++)
    if (g.ctxs[i].in_use && g.ctxs[i].proc == proc) ctx_free(g, static_cast<int32_t>(i));
  for (uint32_t i = 0; i < g.stream_hwm; i++)
    if (g.streams[i].in_use && g.streams[i].proc == proc) stream_drop(g.streams[i]);
  for (uint32_t i = 0; i < kMaxEvents; i++)
    if (g.events[i].in_use && g.events[i].proc == proc) event_free(g, i);
  g.procs[proc].in_use = 0;
}

void reclaim_dead(SimShared& g, uint64_t now, bool force) {
  if (!force && now < g.next_reclaim_ns) return;
  g.next_reclaim_ns = now + kReclaimPeriodNs;
  bool any = false;
  for (uint32_t i = 0; i < kMaxProcs; i++) {
    if (!g.procs[i].in_use || pid_alive(g.procs[i].pid)) continue;
    proc_free(g, static_cast<int32_t>(i));
    any = true;
  }
  if (any) bump_generation(g);
}

void bump_generation(SimShared& g) {
  // seq_cst on both sides (here and the waiters' increment before futex_wait) so that either the
  // waiter sees the new generation or we see the waiter.
  g.generation.fetch_add(1);
  if (g.waiters.load() > 0) futex_wake(&g.generation, INT_MAX);
}

}  // namespace fikit::sim
