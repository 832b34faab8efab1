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

void append_trace(Process* p, const SimStream& s, const SimOp& op) {
  char line[256];
  std::lock_guard<std::mutex> names(p->names_mu);
  const char* name = op.name < p->kernel_names.size() ? p->kernel_names[op.name].c_str() : "?";
  int n = snprintf(line, sizeof(line), "%u %s %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", s.local_id,
                   name, op.arg, op.start_ns, op.end_ns);
  p->trace_buf.append(line, static_cast<size_t>(std::min<int>(n, sizeof(line) - 1)));
}

// Perform this process's share of its completed ops: marker writes and trace lines.
void reap(Process* p) {
  SimShared& g = *p->g;
  bool tracing = !p->cfg.trace_prefix.empty();
  for (uint32_t i = 0; i < g.stream_hwm; i++) {
    SimStream& s = g.streams[i];
    if (!s.in_use || s.proc != p->slot) continue;
    for (; s.head != s.exec; s.head++) {
      const SimOp& op = g.rings[i][s.head % kStreamRing];
      if (op.kind == OpKind::kWrite64) {
        // Release: the host that sees the marker sees everything written before it.
        std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(op.arg))
            .store(op.value, std::memory_order_release);
      } else if (op.kind == OpKind::kKernel && tracing) {
        append_trace(p, s, op);
      }
    }
    stream_free_if_drained(g, i);
  }
}

// When the engine must next look at the GPU (lock held): now if completed ops wait to be reaped,
// at the next simulated event while this process has work queued, never otherwise.
uint64_t engine_due(const Process* p) {
  const SimShared& g = *p->g;
  bool queued = false;
  for (uint32_t i = 0; i < g.stream_hwm; i++) {
    const SimStream& s = g.streams[i];
    if (!s.in_use || s.proc != p->slot) continue;
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
void engine_main(Process* p) {
  tighten_timer_slack();
  while (!p->stop.load()) {
    uint32_t kick = p->kick.load();
    uint64_t due = p->engine_due.load(), now = now_ns();
    if (due > now || p->waiting.load() > 0) {
      uint64_t sleep = due > now ? due - now : kEngineDeferNs;
      futex_wait(&p->kick, kick, due == kNever ? 0 : sleep);
      continue;
    }
    bool flush;
    {
      ShmLock lock(p->g);
      catch_up(p);
      p->engine_due.store(engine_due(p));
      flush = p->trace_buf.size() > kTraceFlushBytes;
    }
    if (flush) flush_trace(p);
  }
}

// At exit: stop the engine, write the trace, give back every slot (queued work is dropped, as a
// real driver tears down an exiting process's contexts).
void process_exit() {
  Process* p = g_process.load();
  if (!p || p->pid != getpid()) return;
  p->stop.store(true);
  kick_engine(p);
  p->engine.join();
  {
    ShmLock lock(p->g);
    catch_up(p);
  }
  flush_trace(p);
  {
    ShmLock lock(p->g);
    proc_free(*p->g, p->slot);
    bump_generation(*p->g);
  }
  g_exited.store(true);
  if (p->trace_fd >= 0) close(p->trace_fd);
  // `p` and the mapping stay: another thread may still be inside an API call.
}

// A forked child starts without CUDA, as with the real driver: it may call cuInit again.
void on_fork_child() {
  g_forked_parent = g_process.exchange(nullptr);  // its engine thread does not exist here
  if (g_forked_parent) gpu_detach(g_forked_parent->g);
  g_exited.store(false);
  new (&g_init_mu) std::mutex();
  ctx_stack().clear();
}

}  // namespace

Process* process() { return g_exited.load() ? nullptr : g_process.load(std::memory_order_acquire); }

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
  p->g = gpu_attach(p->cfg, &err);
  if (!p->g) {
    fprintf(stderr, "fikit sim: %s\n", err.c_str());
    return CUDA_ERROR_NO_DEVICE;
  }
  p->pid = getpid();
  {
    ShmLock lock(p->g);
    reclaim_dead(*p->g, now_ns(), true);
    p->slot = proc_alloc(*p->g, p->pid);
    if (p->slot >= 0) {
      SimProc& me = p->g->procs[p->slot];
      me.mps_priority = static_cast<uint32_t>(p->cfg.mps_priority);
      me.mps_sm_cap = mps_sm_cap(p->g->sms, p->cfg.mps_thread_pct);
    }
  }
  if (p->slot < 0) {
    fprintf(stderr, "fikit sim: failed to attach %s: all %u process slots are in use\n",
            p->cfg.shm_name.c_str(), kMaxProcs);
    gpu_detach(p->g);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  p->engine = std::thread(engine_main, p.get());
  static std::once_flag once;
  std::call_once(once, [] {
    atexit(process_exit);
    pthread_atfork(nullptr, nullptr, on_fork_child);
  });
  g_process.store(p.release(), std::memory_order_release);
  return CUDA_SUCCESS;
}

std::vector<CUctx_st*>& ctx_stack() {
  thread_local std::vector<CUctx_st*> stack;
  return stack;
}

CUctx_st* current_ctx() {
  auto& s = ctx_stack();
  return s.empty() ? nullptr : s.back();
}

void catch_up(Process* p) {
  uint64_t now = now_ns();
  reclaim_dead(*p->g, now, false);
  advance(*p->g, now);
  reap(p);
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

bool schedule_engine(Process* p) {
  advance(*p->g, p->g->now_ns);  // no time passes: starts the new ops, schedules contexts
  uint64_t due = engine_due(p);
  if (due >= p->engine_due.load()) return false;
  p->engine_due.store(due);
  return true;
}

void kick_engine(Process* p) {
  p->kick.fetch_add(1);  // the engine reads `kick` before `engine_due`: it cannot miss both
  futex_wake(&p->kick, 1);
}

CUresult push_op(Process* p, CUstream_st* s, const SimOp& op) {
  return push_ops(p, s, 1, [&](uint32_t) { return op; });
}

void flush_trace(Process* p) {
  if (p->cfg.trace_prefix.empty()) return;
  std::lock_guard<std::mutex> l(p->trace_mu);
  std::string out;
  {
    ShmLock lock(p->g);
    out.swap(p->trace_buf);
  }
  if (out.empty()) return;
  if (p->trace_fd < 0) {
    std::string path = p->cfg.trace_prefix + "." + std::to_string(p->pid);
    p->trace_fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (p->trace_fd < 0) {
      fprintf(stderr, "fikit sim: failed to open trace file %s: %s\n", path.c_str(),
              strerror(errno));
      return;
    }
  }
  for (size_t off = 0; off < out.size();) {
    ssize_t n = write(p->trace_fd, out.data() + off, out.size() - off);
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

void stream_wait(Process* p, CUstream_st* s) {
  uint32_t target = 0;
  bool first = true;
  wait_until(p, [&] {
    const SimStream& st = p->g->streams[s->slot];
    if (first) target = st.tail;
    first = false;
    return drained(st, target);
  });
  flush_trace(p);
}

void ctx_wait(Process* p, CUctx_st* ctx) {
  std::vector<std::pair<uint32_t, uint32_t>> targets;  // (stream slot, tail at the call)
  bool first = true;
  wait_until(p, [&] {
    const SimShared& g = *p->g;
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
  flush_trace(p);
}

CUctx_st* ctx_create(Process* p) {
  auto ctx = std::make_unique<CUctx_st>();
  auto legacy = std::make_unique<CUstream_st>();
  auto per_thread = std::make_unique<CUstream_st>();
  SimShared& g = *p->g;
  ShmLock lock(p->g);
  ctx->slot = ctx_alloc(g, p->slot);
  if (ctx->slot < 0) return nullptr;
  legacy->slot = stream_alloc(g, p->slot, ctx->slot, p->next_stream_id++);
  per_thread->slot = stream_alloc(g, p->slot, ctx->slot, p->next_stream_id++);
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
  ShmLock lock(p->g);
  s->id = p->next_stream_id++;
  s->slot = stream_alloc(*p->g, p->slot, ctx->slot, s->id);
  if (s->slot < 0) return nullptr;
  s->ctx = ctx;
  return hand_out(p, std::move(s));
}

}  // namespace fikit::sim
