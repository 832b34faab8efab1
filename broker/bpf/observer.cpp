#include "observer.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fikit/util.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <map>

#include "fikit_bpf_common.h"  // before the skeleton: it names the struct types
#include "gpu_observer.h"
#include "gpu_observer.skel.h"
#include "map_helpers.h"

namespace fikit::bpf {
namespace {

bool g_libbpf_verbose = false;

// libbpf's messages: warnings always (they explain load failures), debug output when verbose.
int libbpf_print(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG && !g_libbpf_verbose) return 0;
  return std::vfprintf(stderr, fmt, args);
}

// Turn a failed load into a message an operator can act on.
Status load_error(int err) {
  if (err < 0) err = -err;
  if (err == EPERM || err == EACCES)
    return errno_status(err,
                        "load the GPU observer BPF programs (run fikit-broker as root, or with "
                        "CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE)");
  const std::string hint =
      " (kernel too old or without BTF? libbpf's messages above say which step failed)";
  if (err >= __LIBBPF_ERRNO__START) {  // libbpf's own codes: strerror() does not know them
    char text[128];
    libbpf_strerror(err, text, sizeof(text));
    return Status(StatusCode::kUnavailable,
                  std::string("failed to load the GPU observer BPF programs: ") + text + hint);
  }
  return errno_status(err, "load the GPU observer BPF programs" + hint);
}

}  // namespace

void BpfObserver::SkelDeleter::operator()(gpu_observer_bpf* skel) const {
  gpu_observer_bpf__destroy(skel);
}
void BpfObserver::RingDeleter::operator()(ring_buffer* rb) const { ring_buffer__free(rb); }

BpfObserver::~BpfObserver() = default;  // ring, auditor, then skeleton: members in reverse

Result<std::unique_ptr<BpfObserver>> BpfObserver::open(const BpfConfig& config) {
  if (Status s = check_btf(config.btf_path); !s.ok()) return s;
  if (Status s = ensure_tracefs(); !s.ok()) return s;
  g_libbpf_verbose = config.verbose;
  libbpf_set_print(libbpf_print);

  std::unique_ptr<BpfObserver> obs(new BpfObserver(config));
  if (obs->config_.uvm_major == 0) obs->config_.uvm_major = char_major("nvidia-uvm");
  if (Status s = obs->load_and_attach(); !s.ok()) return s;
  if (config.audit.enabled) {
    Result<std::unique_ptr<LaunchAuditor>> a = LaunchAuditor::open(config.audit);
    if (!a.ok()) return a.status();
    obs->auditor_ = std::move(a.value());
  }
  return obs;
}

Status BpfObserver::load_and_attach() {
  // Open: parse the embedded object; a custom BTF file stands in for the kernel's if given.
  LIBBPF_OPTS(bpf_object_open_opts, opts,
              .btf_custom_path = config_.btf_path.empty() ? nullptr : config_.btf_path.c_str());
  skel_.reset(gpu_observer_bpf__open_opts(&opts));
  if (!skel_) return errno_status(errno, "open the GPU observer BPF object");

  // Set rodata: the device filter is fixed before load, so the verifier sees constants.
  skel_->rodata->cfg_nv_major = config_.nvidia_major;
  skel_->rodata->cfg_uvm_major = config_.uvm_major;
  skel_->rodata->cfg_test_rdev = config_.test_device ? kernel_dev(*config_.test_device) : 0;
  if (config_.test_gpu_devices.size() > FIKIT_TEST_GPUS)
    return Status(StatusCode::kInvalidArgument,
                  "at most " + std::to_string(FIKIT_TEST_GPUS) + " test GPU devices");
  for (size_t i = 0; i < config_.test_gpu_devices.size(); i++)
    skel_->rodata->cfg_test_gpu_rdev[i] = kernel_dev(config_.test_gpu_devices[i]);

  // Load: verify and create the maps.
  if (int err = gpu_observer_bpf__load(skel_.get())) return load_error(err);

  // Attach: the ioctl tracepoints and sched_process_exit.
  if (int err = gpu_observer_bpf__attach(skel_.get()))
    return errno_status(err, "attach the GPU observer to the ioctl and exit tracepoints");

  ring_.reset(ring_buffer__new(bpf_map__fd(skel_->maps.fikit_events), on_sample, this, nullptr));
  if (!ring_) return errno_status(errno, "create the GPU observer's ring buffer reader");
  return {};
}

int BpfObserver::event_fd() const { return ring_buffer__epoll_fd(ring_.get()); }

int BpfObserver::on_sample(void* ctx, void* data, size_t size) {
  auto* self = static_cast<BpfObserver*>(ctx);
  GpuEvent e;
  if (!decode_event(data, size, &e)) {
    self->bad_events_++;
    return 0;
  }
  self->handle(e);
  return 0;
}

void BpfObserver::handle(const GpuEvent& e) {
  const ProcessUsage* known = accounting_.find(e.pid);
  if (e.kind == GpuEventKind::kProcessExit && !(known && known->exited)) {
    // Read what the process did before its entries go (a late exit event after reap_vanished()
    // only brings the real exit status).
    std::vector<IoctlStat> ioctls = read_ioctls(e.pid, true);
    std::vector<LaunchCount> launches;
    if (auditor_ && auditor_->audited(e.pid)) {
      launches = auditor_->counts(e.pid);
      auditor_->end(e.pid);
    }
    delete_stale(e.pid, accounting_.apply(e));
    accounting_.set_final(e.pid, std::move(ioctls), std::move(launches));
  } else {
    delete_stale(e.pid, accounting_.apply(e));
  }
  if (callback_ && *callback_) (*callback_)(e);
}

int BpfObserver::consume(const EventCallback& cb) {
  callback_ = &cb;
  const int n = ring_buffer__consume(ring_.get());
  callback_ = nullptr;
  return n;
}

void BpfObserver::delete_stale(pid_t pid, const StaleKeys& stale) {
  const int objects = bpf_map__fd(skel_->maps.fikit_objects);
  for (const auto& [client, handle] : stale.objects) {
    fikit_object_key key{static_cast<__u32>(pid), client, handle};
    bpf_map_delete_elem(objects, &key);
  }
  const int mappings = bpf_map__fd(skel_->maps.fikit_uvm_maps);
  for (uint64_t base : stale.mappings) {
    fikit_mapping_key key{static_cast<__u32>(pid), 0, base};
    bpf_map_delete_elem(mappings, &key);
  }
}

std::vector<IoctlStat> BpfObserver::read_ioctls(pid_t pid, bool remove) const {
  const int fd = bpf_map__fd(skel_->maps.fikit_ioctls);
  std::vector<fikit_ioctl_key> keys;
  map_for_each_key<fikit_ioctl_key>(fd, [&](const fikit_ioctl_key& key) {
    if (static_cast<pid_t>(key.pid) == pid) keys.push_back(key);
  });
  std::vector<IoctlStat> out;
  for (const fikit_ioctl_key& k : keys) {
    fikit_ioctl_stat st{};
    if (bpf_map_lookup_elem(fd, &k, &st) == 0)
      out.push_back({k.driver, k.code, st.count, st.total_ns, st.failed});
    if (remove) bpf_map_delete_elem(fd, &k);
  }
  return out;
}

std::vector<ProcessUsage> BpfObserver::snapshot() const {
  // One pass over the statistics map, grouped by process.
  std::map<pid_t, std::vector<IoctlStat>> by_pid;
  const int fd = bpf_map__fd(skel_->maps.fikit_ioctls);
  map_for_each_key<fikit_ioctl_key>(fd, [&](const fikit_ioctl_key& key) {
    fikit_ioctl_stat st{};
    if (bpf_map_lookup_elem(fd, &key, &st) == 0)
      by_pid[static_cast<pid_t>(key.pid)].push_back(
          {key.driver, key.code, st.count, st.total_ns, st.failed});
  });
  std::vector<ProcessUsage> out = accounting_.processes();
  for (ProcessUsage& u : out) {
    if (u.exited) continue;  // its final statistics are already in place
    auto it = by_pid.find(u.pid);
    if (it != by_pid.end()) {
      u.ioctls = std::move(it->second);
      by_pid.erase(it);
    }
    if (auditor_ && auditor_->audited(u.pid)) u.launches = auditor_->counts(u.pid);
  }
  // Processes that only made calls the observer does not decode (no event yet).
  for (auto& [pid, ioctls] : by_pid) {
    ProcessUsage u;
    u.pid = pid;
    u.ioctls = std::move(ioctls);
    out.push_back(std::move(u));
  }
  return out;
}

int BpfObserver::reap_vanished(const EventCallback& cb) {
  std::vector<pid_t> candidates = accounting_.live_pids();
  const int fd = bpf_map__fd(skel_->maps.fikit_ioctls);
  map_for_each_key<fikit_ioctl_key>(fd, [&](const fikit_ioctl_key& key) {
    const ProcessUsage* u = accounting_.find(static_cast<pid_t>(key.pid));
    if (!u || !u->exited) candidates.push_back(static_cast<pid_t>(key.pid));
  });
  std::sort(candidates.begin(), candidates.end());
  candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
  int reaped = 0;
  callback_ = &cb;
  for (pid_t pid : candidates) {
    if (kill(pid, 0) == 0 || errno != ESRCH) continue;  // still there (or not ours to probe)
    GpuEvent e;
    e.kind = GpuEventKind::kProcessExit;
    e.pid = pid;
    e.exit_status = -1;
    e.ts_ns = now_ns();
    handle(e);
    reaped++;
  }
  callback_ = nullptr;
  return reaped;
}

void BpfObserver::forget(pid_t pid) {
  const ProcessUsage* u = accounting_.find(pid);
  if (u && u->exited) accounting_.forget(pid);
}

Result<int> BpfObserver::audit_process(pid_t pid) {
  if (!auditor_)
    return Status(StatusCode::kFailedPrecondition,
                  "launch audit is off: start fikit-broker with --audit-launches");
  return auditor_->audit(pid);
}

void BpfObserver::end_audit(pid_t pid) {
  if (auditor_) auditor_->end(pid);
}

ObserverCounters BpfObserver::counters() const {
  ObserverCounters c;
  const int fd = bpf_map__fd(skel_->maps.fikit_counters);
  c.traced_ioctls = percpu_sum(fd, FIKIT_CNT_TRACED);
  c.events = percpu_sum(fd, FIKIT_CNT_EVENTS);
  c.drop_ringbuf = percpu_sum(fd, FIKIT_CNT_DROP_RINGBUF);
  c.drop_stats = percpu_sum(fd, FIKIT_CNT_DROP_STATS);
  c.drop_objects = percpu_sum(fd, FIKIT_CNT_DROP_OBJECTS);
  c.drop_inflight = percpu_sum(fd, FIKIT_CNT_DROP_INFLIGHT);
  c.read_fail = percpu_sum(fd, FIKIT_CNT_READ_FAIL);
  c.bad_events = bad_events_;
  c.launch_drops = auditor_ ? auditor_->drops() : 0;
  c.error_line = skel_->bss->fikit_error.line;
  c.error_count = skel_->bss->fikit_error.count;
  return c;
}

std::vector<int> BpfObserver::program_fds() const {
  std::vector<int> fds = {bpf_program__fd(skel_->progs.fikit_ioctl_in),
                          bpf_program__fd(skel_->progs.fikit_ioctl_out),
                          bpf_program__fd(skel_->progs.fikit_proc_exit)};
  if (auditor_) fds.push_back(auditor_->program_fd());
  return fds;
}

}  // namespace fikit::bpf
