// BpfObserver: loads gpu_observer.bpf.c, consumes its ring buffer and keeps per-process GPU
// accounting (see docs/BPF.md). Made for the broker's control thread: poll event_fd() (an epoll
// fd, readable when events wait) in the io_uring loop and call consume() when it fires; call
// snapshot() for status. Not thread-safe: use it from one thread.
//
// Where BPF is unavailable (not root, no BTF, no tracefs, old kernel), open() fails with a
// message saying what is missing; the broker logs it as a warning and runs without it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "accounting.h"
#include "bpf_env.h"
#include "bpf_status.h"
#include "gpu_event.h"
#include "launch_auditor.h"

struct gpu_observer_bpf;
struct ring_buffer;

namespace fikit::bpf {

struct BpfConfig {
  uint32_t nvidia_major = 195;  // /dev/nvidia*, /dev/nvidiactl
  uint32_t uvm_major = 0;       // 0: "nvidia-uvm" in /proc/devices (stays 0 if not loaded)
  // A character device decoded as the driver, for tests and benchmarks: 'F'-type commands as the
  // NVIDIA driver's, others as nvidia-uvm's; return values on it are ignored.
  std::optional<DeviceId> test_device;
  // Test devices decoded as /dev/nvidia0, /dev/nvidia1 (test_device then stands for nvidiactl):
  // at most FIKIT_TEST_GPUS (2).
  std::vector<DeviceId> test_gpu_devices;
  AuditConfig audit;     // uprobe launch counting (off by default)
  std::string btf_path;  // empty: the kernel's own BTF
  bool verbose = false;  // libbpf debug messages to stderr
};

// Counters of the BPF side, summed over CPUs.
struct ObserverCounters {
  uint64_t traced_ioctls = 0;  // ioctls to a watched device
  uint64_t events = 0;         // events written to the ring buffer
  uint64_t drop_ringbuf = 0;   // events lost: ring buffer full
  uint64_t drop_stats = 0;     // ioctls not counted: map full
  uint64_t drop_objects = 0;   // objects or mappings not tracked: map full
  uint64_t drop_inflight = 0;  // ioctls not timed: no task storage
  uint64_t read_fail = 0;      // parameter blocks that could not be read
  uint64_t bad_events = 0;     // malformed ring-buffer records (user space)
  uint64_t launch_drops = 0;   // audit counts lost
  uint32_t error_line = 0;     // gpu_observer.bpf.c line of the last impossible state, if any
  uint32_t error_count = 0;
};

class BpfObserver {
 public:
  using EventCallback = std::function<void(const GpuEvent&)>;

  // Open, configure, load and attach the programs (and load the audit program if enabled).
  static Result<std::unique_ptr<BpfObserver>> open(const BpfConfig& config);
  ~BpfObserver();
  BpfObserver(const BpfObserver&) = delete;
  BpfObserver& operator=(const BpfObserver&) = delete;

  // Readable (EPOLLIN) when events wait in the ring buffer.
  int event_fd() const;
  // Apply every waiting event to the accounting table, then hand it to `cb` (may be empty; it
  // may call this observer's other methods). On a process exit, its final ioctl statistics are
  // read before `cb` sees the event. Never blocks. Return the number of events or -errno.
  int consume(const EventCallback& cb);

  // Every process that used the driver, live or recently exited, with ioctl statistics (one
  // pass over the statistics map: for status, not for a hot path).
  std::vector<ProcessUsage> snapshot() const;
  // Stop keeping an exited process (the broker merged it); a live one stays.
  void forget(pid_t pid);
  // Reconcile after lost events (ring buffer full): processes that are gone without an exit
  // event are marked exited (exit_status -1: unknown) and their map entries dropped. Call it now
  // and then, e.g. from a timer; `cb` sees each synthesized exit. Return how many were reaped.
  int reap_vanished(const EventCallback& cb = {});

  // Audit mode: count `pid`'s launches (uprobes). kFailedPrecondition if audit mode is off.
  Result<int> audit_process(pid_t pid);
  void end_audit(pid_t pid);

  ObserverCounters counters() const;
  const BpfConfig& config() const { return config_; }  // uvm_major as resolved
  std::vector<int> program_fds() const;

 private:
  struct SkelDeleter {
    void operator()(gpu_observer_bpf* skel) const;
  };
  struct RingDeleter {
    void operator()(ring_buffer* rb) const;
  };

  explicit BpfObserver(const BpfConfig& config) : config_(config) {}
  Status load_and_attach();
  static int on_sample(void* ctx, void* data, size_t size);
  void handle(const GpuEvent& e);
  std::vector<IoctlStat> read_ioctls(pid_t pid, bool remove) const;
  void delete_stale(pid_t pid, const StaleKeys& stale);

  BpfConfig config_;
  std::unique_ptr<gpu_observer_bpf, SkelDeleter> skel_;
  std::unique_ptr<ring_buffer, RingDeleter> ring_;
  std::unique_ptr<LaunchAuditor> auditor_;
  GpuAccounting accounting_;
  const EventCallback* callback_ = nullptr;  // set during consume()
  uint64_t bad_events_ = 0;
};

}  // namespace fikit::bpf
