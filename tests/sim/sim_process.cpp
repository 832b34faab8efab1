// The sim's per-process side: cuInit's attachment, the engine thread, reaping, waiting, pushing.
#include "sim/sim_process.h"

#include <fcntl.h>
#include <fikit/util.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <new>

#include "sim/sim_mps_model.h"

namespace fikit::sim {
namespace {

// Synchronizing calls spin (not sleep) the last 50 us of a wait: futex timeouts wake 30-50 us late
// on a loaded machine, while a real driver's sync returns within ~10 us of the GPU finishing.
constexpr uint64_t kSpinNs = 50'000;
constexpr uint64_t kIdlePollNs = 20'000'000;  // re-check at least this often when nothing is due
constexpr size_t kTraceFlushBytes = 1 << 20;  // the engine flushes a trace buffer this large
constexpr uint64_t kEngineDeferNs = 200'000;  // re-check this often while the app is waiting

std::atomic<Process*> g_process{nullptr};
std::atomic<bool> g_exited{false};   // g_process stays set: another thread may still use it
Process* g_forked_parent = nullptr;  // the parent's state in a forked child (never used again)
std::mutex g_init_mu;

// Timer slack makes futex timeouts late by 50 us by default: far more than the sim's events need.
void tighten_timer_slack() {
  thread_local bool done = false;
  if (!done) prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
  done = true;
}

void append_trace(Device* d, const SimStream& s, const SimOp& op) {
  Process* p = d->p;
  char line[256];
  std::lock_guard<std::mutex> names(p->names_mu);
  const char* name = op.name < p->kernel_names.size() ? p->kernel_names[op.name].c_str() : "?";
  int n = snprintf(line, sizeof(line), "%u %s %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", s.local_id,
                   name, op.arg, op.start_ns, op.end_ns);
  d->trace_buf.append(line, static_cast<size_t>(std::min<int>(n, sizeof(line) - 1)));
}

// Perform this process's share of its completed ops: marker writes and trace lines.
void reap(Device* d) {
  SimShared& g = *d->g;
  bool tracing = !d->p->cfg.trace_prefix.empty();
  for (uint32_t i = 0; i < g.stream_hwm; i++) {
    SimStream& s = g.streams[i];
    if (!s.in_use || s.proc != d->slot) continue;
    for (; s.head != s.exec; s.head++) {
      const SimOp& op = g.rings[i][s.head % kStreamRing];
      if (op.kind == OpKind::kWrite64) {
        // Release: the host that sees the marker sees everything written before it.
        std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(op.arg))
            .store(op.value, std::memory_order_release);
      } else if (op.kind == OpKind::kKernel && tracing) {
        append_trace(d, s, op);
      }
    }
    stream_free_if_drained(g, i);
  }
}

// When the engine must next look at the GPU (lock held): now if completed ops wait to be reaped,
// at the next simulated event while this process has work queued, never otherwise.
uint64_t engine_due(const Device* d) {
  const SimShared& g = *d->g;
  bool queued = false;
  for (uint32_t i = 0; i < g.stream_hwm; i++) {
    const SimStream& s = g.streams[i];
    if (!s.in_use || s.proc != d->slot) continue;
    if (s.head != s.exec) return g.now_ns;
    queued |= s.exec != s.tail;
  }
  if (!queued) return kNever;
  uint64_t next = next_event(g);
  return next == kNever ? g.now_ns + kIdlePollNs : next;
}

// The engine: completes this process's ops (markers, trace lines) when the simulated GPU reaches
// them, while the application does something else. It touches the shared state only when due,
// and not while a thread of the application waits in a synchronizing call (that thread reaps, and
// an engine waking on its CPU would stall it, maybe while it holds the lock).
void engine_main(Device* d) {
  tighten_timer_slack();
  while (!d->p->stop.load()) {
    uint32_t kick = d->kick.load();
    uint64_t due = d->engine_due.load(), now = now_ns();
    if (due > now || d->waiting.load() > 0) {
      uint64_t sleep = due > now ? due - now : kEngineDeferNs;
      futex_wait(&d->kick, kick, due == kNever ? 0 : sleep);
      continue;
    }
    bool flush;
    {
      ShmLock lock(d->g);
      catch_up(d);
      d->engine_due.store(engine_due(d));
      flush = d->trace_buf.size() > kTraceFlushBytes;
    }
    if (flush) flush_trace(d);
  }
}

// At exit: stop the engine, write the trace, give back every slot (queued work is dropped, as a
// real driver tears down an exiting process's contexts).
void process_exit() {
  Process* p = g_process.load();
  if (!p || p->pid != getpid()) return;
  p->stop.store(true);
  for (auto& d : p->devices) {
    kick_engine(d.get());
    d->engine.join();
  }
  for (auto& d : p->devices) {
    {
      ShmLock lock(d->g);
      catch_up(d.get());
    }
    flush_trace(d.get());
    {
      ShmLock lock(d->g);
      proc_free(*d->g, d->slot);
      bump_generation(*d->g);
    }
  }
  g_exited.store(true);
  for (auto& d : p->devices)
    if (d->trace_fd >= 0) close(d->trace_fd);
  // `p` and the mapping stay: another thread may still be inside an API call.
}

// A forked child starts without CUDA, as with the real driver: it may call cuInit again.
void on_fork_child() {
  g_forked_parent = g_process.exchange(nullptr);  // its engine thread does not exist here
  if (g_forked_parent)
    for (auto& d : g_forked_parent->devices) gpu_detach(d->g);
  g_exited.store(false);
  new (&g_init_mu) std::mutex();
  ctx_stack().clear();
}

}  // namespace

Process* process() { return g_exited.load() ? nullptr : g_process.load(std::memory_order_acquire); }

// Attach GPU `d` (its shm object, a process slot). Return false with a message on stderr.
bool device_attach(Device* d) {
  std::string err;
  d->g = gpu_attach(d->id.cfg, &err);
  if (!d->g) {
    fprintf(stderr, "fikit sim: %s\n", err.c_str());
    return false;
  }
  {
    ShmLock lock(d->g);
    reclaim_dead(*d->g, now_ns(), true);
    d->slot = proc_alloc(*d->g, d->p->pid);
    if (d->slot >= 0) {  // this process's MPS client variables, on every GPU it attaches
      SimProc& me = d->g->procs[d->slot];
      me.mps_priority = static_cast<uint32_t>(d->p->cfg.mps_priority);
      me.mps_sm_cap = mps_sm_cap(d->g->sms, d->p->cfg.mps_thread_pct);
    }
  }
  if (d->slot < 0) {
    fprintf(stderr, "fikit sim: failed to attach %s: all %u process slots are in use\n",
            d->id.cfg.shm_name.c_str(), kMaxProcs);
    gpu_detach(d->g);
    d->g = nullptr;
    return false;
  }
  return true;
}

CUresult process_init() {
  std::lock_guard<std::mutex> l(g_init_mu);
  if (g_exited.load()) return CUDA_ERROR_DEINITIALIZED;
  if (g_process.load()) return CUDA_SUCCESS;
  auto p = std::make_unique<Process>();
  std::string err;
  if (!config_from_env(&p->cfg, &err)) {
    fprintf(stderr, "fikit sim: %s\n", err.c_str());
    return CUDA_ERROR_INVALID_VALUE;
  }
  p->pid = getpid();
  std::vector<DeviceIdentity> node = node_devices(p->cfg);
  for (uint32_t index : visible_devices(node, getenv("CUDA_VISIBLE_DEVICES"))) {
    auto d = std::make_unique<Device>();
    d->p = p.get();
    d->id = node[index];
    d->ordinal = static_cast<uint32_t>(p->devices.size());
    if (!device_attach(d.get())) {
      for (auto& a : p->devices) {
        ShmLock lock(a->g);
        proc_free(*a->g, a->slot);
      }
      return CUDA_ERROR_NO_DEVICE;
    }
    p->devices.push_back(std::move(d));
  }
  // With no visible GPU, cuInit fails as the real driver's does.
  if (p->devices.empty()) return CUDA_ERROR_NO_DEVICE;
  for (auto& d : p->devices) d->engine = std::thread(engine_main, d.get());
  static std::once_flag once;
  std::call_once(once, [] {
    atexit(process_exit);
    pthread_atfork(nullptr, nullptr, on_fork_child);
  });
  g_process.store(p.release(), std::memory_order_release);
  return CUDA_SUCCESS;
}

Device* device_of(Process* p, CUdevice ordinal) {
  if (!p || ordinal < 0 || static_cast<size_t>(ordinal) >= p->devices.size()) return nullptr;
  return p->devices[static_cast<size_t>(ordinal)].get();
}

std::vector<CUctx_st*>& ctx_stack() {
  thread_local std::vector<CUctx_st*> stack;
  return stack;
}

CUctx_st* current_ctx() {
  auto& s = ctx_stack();
  return s.empty() ? nullptr : s.back();
}

void catch_up(Device* d) {
  uint64_t now = now_ns();
  reclaim_dead(*d->g, now, false);
  advance(*d->g, now);
  reap(d);
}

void wait_for_event(SimShared* g, uint32_t gen, uint64_t next) {
  tighten_timer_slack();
  uint64_t now = now_ns();
  if (next != kNever && next <= now) return;
  uint64_t left = next == kNever ? kIdlePollNs : std::min(next - now, kIdlePollNs);
  if (left <= kSpinNs) {
    while (now_ns() < next && g->generation.load() == gen) cpu_relax();
    return;
  }
  g->waiters.fetch_add(1);  // seq_cst: see bump_generation
  futex_wait(&g->generation, gen, left - kSpinNs);
  g->waiters.fetch_sub(1);
}

bool schedule_engine(Device* d) {
  advance(*d->g, d->g->now_ns);  // no time passes: starts the new ops, schedules contexts
  uint64_t due = engine_due(d);
  if (due >= d->engine_due.load()) return false;
  d->engine_due.store(due);
  return true;
}

void kick_engine(Device* d) {
  d->kick.fetch_add(1);  // the engine reads `kick` before `engine_due`: it cannot miss both
  futex_wake(&d->kick, 1);
}

CUresult push_op(Process* p, CUstream_st* s, const SimOp& op) {
  return push_ops(p, s, 1, [&](uint32_t) { return op; });
}

void flush_trace(Process* p) {
  for (auto& d : p->devices) flush_trace(d.get());
}

void flush_trace(Device* d) {
  Process* p = d->p;
  if (p->cfg.trace_prefix.empty()) return;
  std::lock_guard<std::mutex> l(d->trace_mu);
  std::string out;
  {
    ShmLock lock(d->g);
    out.swap(d->trace_buf);
  }
  if (out.empty()) return;
  if (d->trace_fd < 0) {
    std::string gpu = d->id.index == 0 ? "" : ".gpu" + std::to_string(d->id.index);
    std::string path = p->cfg.trace_prefix + gpu + "." + std::to_string(p->pid);
    d->trace_fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (d->trace_fd < 0) {
      fprintf(stderr, "fikit sim: failed to open trace file %s: %s\n", path.c_str(),
              strerror(errno));
      return;
    }
  }
  for (size_t off = 0; off < out.size();) {
    ssize_t n = write(d->trace_fd, out.data() + off, out.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      fprintf(stderr, "fikit sim: failed to write the trace: %s\n", strerror(errno));
      return;
    }
    off += static_cast<size_t>(n);
  }
}

void burn_cpu(uint64_t ns) {
  uint64_t end = now_ns() + ns;
  while (now_ns() < end) cpu_relax();
}

CUresult resolve_stream(CUstream s, bool ptsz, CUstream_st** out) {
  if (s && s != CU_STREAM_LEGACY && s != CU_STREAM_PER_THREAD) {
    if (!valid(s)) return CUDA_ERROR_INVALID_HANDLE;
    *out = s;
    return CUDA_SUCCESS;
  }
  CUctx_st* ctx = current_ctx();
  if (!valid(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
  bool per_thread = s == CU_STREAM_PER_THREAD || (!s && ptsz);
  *out = per_thread ? ctx->per_thread : ctx->legacy;
  return CUDA_SUCCESS;
}

// Return true once the stream's ring has reached `target` (or the stream is gone).
static bool drained(const SimStream& st, uint32_t target) {
  return !st.in_use || static_cast<int32_t>(st.head - target) >= 0;
}

void stream_wait(Process*, CUstream_st* s) {
  Device* d = s->ctx->dev;
  uint32_t target = 0;
  bool first = true;
  wait_until(d, [&] {
    const SimStream& st = d->g->streams[s->slot];
    if (first) target = st.tail;
    first = false;
    return drained(st, target);
  });
  flush_trace(d);
}

void ctx_wait(Process*, CUctx_st* ctx) {
  Device* d = ctx->dev;
  std::vector<std::pair<uint32_t, uint32_t>> targets;  // (stream slot, tail at the call)
  bool first = true;
  wait_until(d, [&] {
    const SimShared& g = *d->g;
    if (first) {
      for (uint32_t i = 0; i < g.stream_hwm; i++)
        if (g.streams[i].in_use && g.streams[i].ctx == ctx->slot)
          targets.emplace_back(i, g.streams[i].tail);
    }
    first = false;
    for (auto [slot, target] : targets)
      if (!drained(g.streams[slot], target)) return false;
    return true;
  });
  flush_trace(d);
}

CUctx_st* ctx_create(Process* p, Device* d) {
  auto ctx = std::make_unique<CUctx_st>();
  auto legacy = std::make_unique<CUstream_st>();
  auto per_thread = std::make_unique<CUstream_st>();
  SimShared& g = *d->g;
  ShmLock lock(d->g);
  ctx->dev = d;
  ctx->slot = ctx_alloc(g, d->slot);
  if (ctx->slot < 0) return nullptr;
  legacy->slot = stream_alloc(g, d->slot, ctx->slot, p->next_stream_id++);
  per_thread->slot = stream_alloc(g, d->slot, ctx->slot, p->next_stream_id++);
  if (legacy->slot < 0 || per_thread->slot < 0) {
    ctx_free(g, ctx->slot);
    return nullptr;
  }
  legacy->id = g.streams[legacy->slot].local_id;
  per_thread->id = g.streams[per_thread->slot].local_id;
  legacy->ctx = per_thread->ctx = ctx.get();
  ctx->legacy = hand_out(p, std::move(legacy));
  ctx->per_thread = hand_out(p, std::move(per_thread));
  return hand_out(p, std::move(ctx));
}

CUstream_st* stream_create(Process* p, CUctx_st* ctx) {
  auto s = std::make_unique<CUstream_st>();
  Device* d = ctx->dev;
  ShmLock lock(d->g);
  s->id = p->next_stream_id++;
  s->slot = stream_alloc(*d->g, d->slot, ctx->slot, s->id);
  if (s->slot < 0) return nullptr;
  s->ctx = ctx;
  return hand_out(p, std::move(s));
}

}  // namespace fikit::sim
