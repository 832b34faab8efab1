#include "gpu/gpu_monitor.h"

#include <fikit/util.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/log.h"
#include "base/uring_loop.h"
#include "gpu_event.h"
#include "observer.h"
#include "prog_stats.h"
#include "sched/tenant.h"

namespace fikit::broker {
namespace {

constexpr uint64_t kTimerNs = 1'000'000'000;
constexpr uint64_t kGraceNs = 3'000'000'000;       // libfikit registers at its first launch
constexpr uint64_t kReapEveryNs = 10'000'000'000;  // reconcile exits lost to a full ring buffer
constexpr uint64_t kLeftKeepNs = 30'000'000'000;   // a reaped tenant's late BPF exit is its own
constexpr size_t kKeepExited = 64;  // exited tenants and unmanaged processes listed by status
constexpr size_t kKeepLeft = 1024;

std::string mib(uint64_t bytes) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

// The MPS server (nvidia-cuda-mps-server; comm keeps 15 bytes) holds the context its clients
// share: it is no unmanaged GPU process (their memory, on driver 580, is still their own).
bool is_mps_server(const std::string& comm) { return comm.rfind("nvidia-cuda-mps", 0) == 0; }

// Name of a process that made driver calls but no event yet (its /proc entry), or "".
std::string proc_comm(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  std::getline(f, name);
  return name;
}

// Whose process it is (its /proc entry's owner: status shows a process to its user), or -1.
int64_t proc_uid(pid_t pid) {
  struct stat st;
  return stat(("/proc/" + std::to_string(pid)).c_str(), &st) == 0 ? st.st_uid : -1;
}

}  // namespace

struct GpuMonitor::Impl {
  struct TenantRef {
    uint32_t id = 0;
    std::string name;  // as registered
    uint64_t admitted_ns = 0;
    uint64_t left_ns = 0;
  };
  struct Watched {
    uint64_t deadline_ns = 0;
    std::string name;
  };

  Impl(const GpuOptions& o, UringLoop& l, Reaper r) : opts(o), loop(l), reap(std::move(r)) {}
  ~Impl() {
    loop.remove(poll_op);
    loop.remove(timer_op);
  }
  void start();
  void tenant_left(const TenantDesc& d);
  std::vector<GpuProcessInfo> processes();
  void log_exit(const GpuProcessInfo& p, const std::string& tenant_name, bool was_warned);

  GpuOptions opts;
  UringLoop& loop;
  Reaper reap;
  GpuObserverInfo info;
  std::unordered_map<pid_t, TenantRef> tenants;  // live tenants by pid
  std::unordered_map<pid_t, TenantRef> left;     // tenants reaped lately (by pidfd or EOF)
  std::unordered_map<pid_t, Watched> watched;    // GPU processes not (yet) tenants, not warned
  std::unordered_set<pid_t> warned;              // unmanaged processes warned about
  std::unordered_set<pid_t> audited;
  std::unordered_set<pid_t> audit_tried;  // once per process: a failure is not retried
  std::deque<GpuProcessInfo> exited;      // newest first
  int poll_op = 0;
  int timer_op = 0;
  uint64_t last_reap_ns = 0;

  void load();
  void consume();
  void on_event(const bpf::GpuEvent& e);
  void watch(const bpf::GpuEvent& e);
  void on_exit(const bpf::GpuEvent& e);
  void on_timer();
  GpuProcessInfo describe(const bpf::ProcessUsage& u) const;

  std::unique_ptr<bpf::BpfObserver> obs;
  std::vector<uint32_t> program_ids;       // the observer's programs (for their run statistics)
  std::optional<bpf::StatsSession> stats;  // --bpf-stats
  bpf::BpfObserver::EventCallback on_event_fn = [this](const bpf::GpuEvent& e) { on_event(e); };
};

void GpuMonitor::Impl::start() {
  info.audit = opts.audit_launches;
  if (opts.test_device)
    info.test_device =
        std::to_string(opts.test_device->major) + ":" + std::to_string(opts.test_device->minor);
  if (!opts.enabled) {
    info.reason = "--no-bpf";
    FIKIT_LOG_INFO("GPU-driver observer disabled (--no-bpf)");
    return;
  }
  load();
}

void GpuMonitor::Impl::tenant_left(const TenantDesc& d) {
  auto it = tenants.find(d.pid);
  if (it == tenants.end() || it->second.id != d.id) return;  // a newer connection of that pid
  if (left.size() >= kKeepLeft) left.clear();                // exits lost: start afresh
  left[d.pid] = TenantRef{d.id, d.name, d.admitted_ns, now_ns()};
  tenants.erase(it);
}

void GpuMonitor::Impl::log_exit(const GpuProcessInfo& p, const std::string& tenant_name,
                                bool was_warned) {
  const std::string how = bpf::exit_text(p.exit_status);
  const std::string peak = mib(p.peak_device_bytes);
  if (p.kind == GpuProcessKind::kTenant)
    FIKIT_LOG_INFO("tenant %u (pid %d, \"%s\") exited (%s): peak device memory %s, %u context(s)",
                   p.tenant, p.pid, tenant_name.c_str(), how.c_str(), peak.c_str(),
                   p.contexts_created);
  else if (p.kind == GpuProcessKind::kUnmanaged && was_warned)
    FIKIT_LOG_INFO("unmanaged GPU process pid %d (%s) exited (%s): peak device memory %s", p.pid,
                   p.name.c_str(), how.c_str(), peak.c_str());
  else if (p.kind == GpuProcessKind::kUnmanaged)
    FIKIT_LOG_WARN(
        "unmanaged GPU process pid %d (%s) used the GPU and exited (%s) without registering with "
        "the broker; its kernels could not be scheduled: peak device memory %s",
        p.pid, p.name.c_str(), how.c_str(), peak.c_str());
  else if (p.kind == GpuProcessKind::kMpsServer)
    FIKIT_LOG_INFO("MPS server pid %d exited (%s): peak device memory %s", p.pid, how.c_str(),
                   peak.c_str());
  else
    FIKIT_LOG_DEBUG("driver user pid %d (%s) exited (%s)", p.pid, p.name.c_str(), how.c_str());
}

std::vector<GpuProcessInfo> GpuMonitor::Impl::processes() {
  std::vector<GpuProcessInfo> out;
  if (obs) {
    for (const bpf::ProcessUsage& u : obs->snapshot())
      if (!u.exited) out.push_back(describe(u));  // exited ones were merged into `exited`
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.pid < b.pid; });
  out.insert(out.end(), exited.begin(), exited.end());
  return out;
}

void GpuMonitor::Impl::load() {
  bpf::BpfConfig cfg;
  cfg.btf_path = opts.btf;
  if (opts.test_device)
    cfg.test_device = bpf::DeviceId{opts.test_device->major, opts.test_device->minor};
  for (const DeviceNumber& d : opts.test_gpu_devices)
    cfg.test_gpu_devices.push_back(bpf::DeviceId{d.major, d.minor});
  cfg.audit.enabled = opts.audit_launches;
  cfg.audit.library = opts.audit_library;
  cfg.audit.functions = opts.audit_functions;
  Result<std::unique_ptr<bpf::BpfObserver>> r = bpf::BpfObserver::open(cfg);
  if (r.ok()) {
    obs = std::move(r.value());
    poll_op = loop.add_poll(obs->event_fd(), [this](uint32_t) { consume(); });
    if (poll_op < 0) {
      r = Status::from_errno(-poll_op, "watch the GPU observer's ring buffer in the control loop");
      obs.reset();
    }
  }
  if (!obs) {
    info.state = GpuObserverState::kFailed;
    info.reason = r.status().message();
    FIKIT_LOG_WARN(
        "GPU-driver observer unavailable, running without it (no GPU memory accounting, "
        "unmanaged GPU processes go unseen; --no-bpf silences this): %s",
        info.reason.c_str());
    return;
  }
  timer_op = loop.add_timer(kTimerNs, [this] { on_timer(); });
  if (timer_op < 0)
    FIKIT_LOG_WARN("failed to arm the GPU observer's timer: %s: lost exits stay unreconciled",
                   strerror(-timer_op));
  info.state = GpuObserverState::kLoaded;
  for (int fd : obs->program_fds())
    if (Result<uint32_t> id = bpf::program_id(fd); id.ok()) program_ids.push_back(id.value());
  if (opts.run_stats) {
    // Turns on the statistics of every BPF program on the host (a little time per run) until
    // the broker stops, unless someone else holds them too.
    Result<bpf::StatsSession> s = bpf::StatsSession::start();
    if (s.ok())
      stats.emplace(std::move(s.value()));
    else
      FIKIT_LOG_WARN("--bpf-stats: failed to turn on BPF run-time statistics: %s",
                     s.status().message().c_str());
    info.run_stats = stats.has_value();
  }
  info.nvidia_major = obs->config().nvidia_major;
  info.uvm_major = obs->config().uvm_major;
  last_reap_ns = now_ns();
  FIKIT_LOG_INFO("GPU-driver observer loaded: NVIDIA major %u, nvidia-uvm %s%s%s%s",
                 info.nvidia_major,
                 info.uvm_major ? ("major " + std::to_string(info.uvm_major)).c_str()
                                : "not loaded (not watched)",
                 info.test_device.empty() ? "" : ", test device ", info.test_device.c_str(),
                 info.audit ? "; auditing the launches of unmanaged processes" : "");
}

void GpuMonitor::Impl::consume() {
  if (!obs) return;
  if (int n = obs->consume(on_event_fn); n < 0) {
    // The fd stays readable: stop watching rather than spin; status says why.
    info.state = GpuObserverState::kFailed;
    info.reason = Status::from_errno(-n, "read the GPU observer's ring buffer").message();
    FIKIT_LOG_ERROR("%s: GPU observer stopped", info.reason.c_str());
    loop.remove(poll_op);
    loop.remove(timer_op);
    poll_op = timer_op = 0;
    obs.reset();
  }
}

void GpuMonitor::Impl::on_event(const bpf::GpuEvent& e) {
  FIKIT_LOG_DEBUG("GPU observer: %s", bpf::describe_event(e).c_str());
  switch (e.kind) {
    case bpf::GpuEventKind::kGpuClient:
    case bpf::GpuEventKind::kContextCreate:
    case bpf::GpuEventKind::kMemAlloc:
    case bpf::GpuEventKind::kMemMap:
      watch(e);
      break;
    case bpf::GpuEventKind::kProcessExit:
      on_exit(e);
      break;
    default:
      break;
  }
}

// A process uses the GPU: unless it is a tenant, audit it (audit mode) and, from its first
// context or device memory on, give it a grace period to register (not from cuInit alone: a
// process may check for a GPU long before it uses one).
void GpuMonitor::Impl::watch(const bpf::GpuEvent& e) {
  if (tenants.count(e.pid) || warned.count(e.pid) || is_mps_server(e.comm)) return;
  if (info.audit && audit_tried.insert(e.pid).second) {
    const uint64_t t0 = now_ns();  // attaching blocks this thread: registrations wait on it
    Result<int> r = obs->audit_process(e.pid);
    if (r.ok()) {
      audited.insert(e.pid);
      FIKIT_LOG_INFO("auditing the kernel launches of pid %d (%s): %d entry point(s) in %.1f ms",
                     e.pid, e.comm, r.value(), (now_ns() - t0) / 1e6);
    } else {
      FIKIT_LOG_WARN("failed to audit the kernel launches of pid %d (%s): %s", e.pid, e.comm,
                     r.status().message().c_str());
    }
  }
  if (e.kind != bpf::GpuEventKind::kGpuClient && !watched.count(e.pid))
    watched[e.pid] = Watched{e.ts_ns + kGraceNs, e.comm};
}

void GpuMonitor::Impl::on_exit(const bpf::GpuEvent& e) {
  const bpf::ProcessUsage* u = nullptr;
  std::vector<bpf::ProcessUsage> snap = obs->snapshot();
  for (const bpf::ProcessUsage& s : snap)
    if (s.pid == e.pid) u = &s;
  // The real exit after reap_vanished() guessed it (status -1): keep only the real status.
  auto guessed = std::find_if(exited.begin(), exited.end(), [&](const GpuProcessInfo& p) {
    return p.pid == e.pid && p.exit_status == -1;
  });
  if (guessed != exited.end() && (!u || (u->clients_created == 0 && u->peak_device_bytes == 0))) {
    guessed->exit_status = e.exit_status;
    obs->forget(e.pid);
    return;
  }
  // Whose was it? A live tenant is reaped now, as its pidfd would (whichever comes first).
  TenantRef tenant;
  if (auto t = tenants.find(e.pid); t != tenants.end() && t->second.admitted_ns <= e.ts_ns) {
    tenant = t->second;
    reap(e.pid, "process exited (seen by the GPU observer)");  // calls tenant_left()
  } else if (auto l = left.find(e.pid); l != left.end() && l->second.admitted_ns <= e.ts_ns) {
    tenant = l->second;
  }
  left.erase(e.pid);
  GpuProcessInfo p = u ? describe(*u) : GpuProcessInfo{};
  p.pid = e.pid;
  if (p.name.empty()) p.name = e.comm;
  p.exited = true;
  p.exit_status = e.exit_status;
  if (tenant.id) {
    p.kind = GpuProcessKind::kTenant;
    p.tenant = tenant.id;
  }
  log_exit(p, tenant.name, warned.count(e.pid) != 0);
  if (p.kind !=
      GpuProcessKind::kOther) {  // not every nvidia-smi run: they would crowd out the rest
    exited.push_front(std::move(p));
    if (exited.size() > kKeepExited) exited.pop_back();
  }
  watched.erase(e.pid);
  warned.erase(e.pid);
  audited.erase(e.pid);
  audit_tried.erase(e.pid);
  obs->forget(e.pid);
}

void GpuMonitor::Impl::on_timer() {
  const uint64_t now = now_ns();
  for (auto it = watched.begin(); it != watched.end();) {
    if (now < it->second.deadline_ns) {
      ++it;
      continue;
    }
    if (!tenants.count(it->first) && warned.insert(it->first).second)
      FIKIT_LOG_WARN(
          "unmanaged GPU process: pid %d (%s) uses the GPU but has not registered with the "
          "broker; its kernels cannot be scheduled (run it with fikit-run)",
          it->first, it->second.name.c_str());
    it = watched.erase(it);
  }
  for (auto it = left.begin(); it != left.end();)
    it = now - it->second.left_ns > kLeftKeepNs ? left.erase(it) : std::next(it);
  if (obs && now - last_reap_ns >= kReapEveryNs) {
    last_reap_ns = now;
    if (int n = obs->reap_vanished(on_event_fn); n > 0)
      FIKIT_LOG_WARN("GPU observer: %d process(es) vanished without an exit event (events lost?)",
                     n);
  }
}

GpuProcessInfo GpuMonitor::Impl::describe(const bpf::ProcessUsage& u) const {
  constexpr uint32_t kDriverUvm = 2;  // enum fikit_driver (bpf/gpu_observer.h)
  GpuProcessInfo p;
  p.pid = u.pid;
  p.name = u.comm.empty() ? proc_comm(u.pid) : u.comm;
  p.uid = proc_uid(u.pid);
  p.exited = u.exited;
  p.exit_status = u.exit_status;
  p.first_ns = u.first_ns;
  p.clients = u.clients;
  p.contexts = u.contexts;
  p.channels = u.channels;
  p.streams = u.streams;
  p.contexts_created = u.contexts_created;
  p.streams_created = u.streams_created;
  p.device_bytes = u.device_bytes;
  p.mapped_bytes = u.mapped_bytes;
  p.peak_device_bytes = u.peak_device_bytes;
  p.peak_mapped_bytes = u.peak_mapped_bytes;
  for (const bpf::GpuShare& s : u.gpus)
    p.gpus.push_back({s.minor, s.contexts, s.device_bytes, -1, ""});
  name_gpus(&p.gpus, nvidia_gpus());
  bool uvm = false;
  for (const bpf::IoctlStat& s : u.ioctls) {
    p.ioctls += s.count;
    p.ioctl_ns += s.total_ns;
    uvm |= s.driver == kDriverUvm;
  }
  p.audited = audited.count(u.pid) != 0 || !u.launches.empty();
  for (const bpf::LaunchCount& l : u.launches) p.launches += l.count;
  if (auto t = tenants.find(u.pid); t != tenants.end()) {
    p.kind = GpuProcessKind::kTenant;
    p.tenant = t->second.id;
  } else if (is_mps_server(p.name)) {
    p.kind = GpuProcessKind::kMpsServer;
  } else if (u.clients_created || u.contexts_created || u.streams_created || u.peak_device_bytes ||
             u.peak_mapped_bytes || uvm) {
    p.kind = GpuProcessKind::kUnmanaged;
  }
  return p;
}

GpuMonitor::GpuMonitor(const GpuOptions& options, UringLoop& loop, Reaper reap)
    : impl_(std::make_unique<Impl>(options, loop, std::move(reap))) {}

GpuMonitor::~GpuMonitor() = default;

void GpuMonitor::start() { impl_->start(); }

GpuObserverState GpuMonitor::state() const { return impl_->info.state; }

void GpuMonitor::tenant_joined(const TenantDesc& d) {
  Impl& m = *impl_;
  m.tenants[d.pid] = Impl::TenantRef{d.id, d.name, d.admitted_ns, 0};
  m.watched.erase(d.pid);
  m.audit_tried.erase(d.pid);
  if (m.warned.erase(d.pid))
    FIKIT_LOG_INFO("unmanaged GPU process pid %d registered: now tenant %u", d.pid, d.id);
  if (m.audited.erase(d.pid) && m.obs) m.obs->end_audit(d.pid);  // tenants' launches are known
}

void GpuMonitor::tenant_left(const TenantDesc& d) { impl_->tenant_left(d); }

nlohmann::json GpuMonitor::status_json(uint64_t now_ns, size_t max_len) {
  Impl& m = *impl_;
  GpuObserverInfo info = m.info;
  if (m.obs) {
    const bpf::ObserverCounters c = m.obs->counters();
    info.traced_ioctls = c.traced_ioctls;
    info.events = c.events;
    info.dropped = c.drop_ringbuf + c.drop_stats + c.drop_objects + c.drop_inflight + c.read_fail +
                   c.bad_events + c.launch_drops;
    info.impossible = c.error_count;
    info.impossible_line = c.error_line;
    if (!m.program_ids.empty())
      if (Result<std::vector<bpf::ProgramSample>> ps = bpf::sample_programs("", m.program_ids);
          ps.ok())
        for (const bpf::ProgramSample& s : ps.value())
          info.programs.push_back({s.id, s.name, s.run_cnt, s.run_time_ns});
  }
  return gpu_status_json(info, m.processes(), now_ns, max_len);
}

}  // namespace fikit::broker
