// The control thread: an io_uring loop (UringLoop) over the control socket, each connection, the
// pidfd of each tenant, a signalfd and a periodic timer.
//
// A connection's first message decides what it is. kRegister: the tenant is admitted (admission.h)
// and handed to the scheduler; the connection then stays open for the tenant's life, and its end
// (EOF or error) or the tenant's pidfd firing reaps the tenant at once: the scheduler is told (it
// frees the grants and LP in flight and drops its mapping of the segment). kStatus: answered and
// closed. kStop (root or the broker's uid): answered, then the loop ends; the connection is left
// open so that the caller sees EOF only when the broker process is gone. SIGTERM/SIGINT end the
// loop too; SIGHUP reopens the log. No message from a client can end the broker except an allowed
// kStop.
#pragma once

#include <fikit/result.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/uring_loop.h"
#include "control/admission.h"
#include "control/fd_limit.h"
#include "control/guard.h"
#include "control/quota.h"
#include "control/rate_counter.h"
#include "control/status.h"
#include "sched/scheduler.h"

namespace fikit::broker {

class GpuMonitor;

struct ControlConfig {
  int listen_fd = -1;
  std::string socket_path;
  uint64_t spin_ns = 0;        // shown by status
  Quotas quotas;               // per uid (quota.h)
  GpuDomains* gpus = nullptr;  // the GPUs it schedules (nullptr: the driver's list, or learned)
};

class Control {
 public:
  Control(const ControlConfig& cfg, Scheduler& sched);
  ~Control();
  Control(const Control&) = delete;
  Control& operator=(const Control&) = delete;

  // Set up the loop: signalfd (the caller blocked the signals in every thread), accept, timer.
  Status init();
  // Run until a stop request or signal. Return the reason.
  std::string run();
  // After the scheduler stopped: set every segment kClosed, wake its waiters, close the
  // tenants' connections.
  void close_tenants();
  // The loop, for other event sources (e.g. the BPF ring buffer through add_poll).
  UringLoop& loop() { return loop_; }
  // The eBPF GPU-driver observer's side (gpu_monitor.h): told of tenants.
  void set_gpu(GpuMonitor* gpu) { gpu_ = gpu; }
  // What a status document is built from, now (status.h); with_parts: the parts' members too;
  // take_departed: the tenants gone since the last such call (for metrics).
  StatusInput status_input(bool with_parts = true, bool take_departed = false);
  // A member of the status document besides "broker" and "tenants" (status.h), in this order.
  void add_status_part(StatusPart part) { status_parts_.push_back(std::move(part)); }
  // Reap the tenants of process `pid` (its exit was seen by other means than its pidfd).
  void reap_pid(pid_t pid, const char* why);

 private:
  enum class ConnKind { kNew, kTenant, kDone };
  struct Conn {
    int fd = -1;
    int recv_op = 0;
    Peer peer;
    uint64_t opened_ns = 0;
    ConnKind kind = ConnKind::kNew;
    int pidfd = -1;
    int pidfd_op = 0;
    std::shared_ptr<const TenantDesc> tenant;
    bool warned = false;  // logged once that it sends messages it should not
  };

  void on_accept(int fd);
  // accept failed with errno `err`: pause accepting (AcceptBackoff), shedding the oldest silent
  // connections if descriptors ran out; resume_accepting re-arms it.
  void on_accept_error(int err);
  void resume_accepting();
  // Close the oldest quarter of the connections silent for kQuietNs or more. Return how many.
  size_t shed_silent(uint64_t now);
  // Make room for new connection fd of `peer` under the quotas (quota.h), displacing an old
  // silent one if needed. Return false if the new one must be closed instead.
  bool make_room(int fd, const Peer& peer, uint64_t now);
  void on_message(int fd, const char* msg, int len);
  void on_register(Conn& c, const char* msg, int len);
  void on_status(Conn& c);

  void on_stop(Conn& c);
  void on_signal();
  void on_timer();
  bool send_text(Conn& c, MsgType type, int status, const std::string& text);
  // End connection fd; if it is a tenant, reap it (`why` goes to the log).
  void drop(int fd, const char* why);
  // Run the handler of an event of connection fd (its `what`, for the log); if it throws, drop
  // that connection and carry on (guard.h).
  void guarded(int fd, const char* what, const std::function<void()>& handler);

  ControlConfig cfg_;
  Scheduler& sched_;
  UringLoop loop_;
  int signal_fd_ = -1;
  uint64_t start_ns_ = 0;
  uint32_t next_tenant_id_ = 1;
  std::unordered_map<int, Conn> conns_;  // by fd
  std::vector<int> stop_waiters_;        // kept open until the process exits
  std::string stop_reason_;
  GpuMonitor* gpu_ = nullptr;
  std::unique_ptr<GpuDomains> own_gpus_;  // when cfg_.gpus is nullptr
  GpuDomains* gpus_ = nullptr;
  std::vector<StatusPart> status_parts_;
  Guard guard_;
  TenantRates rates_;       // status: launches and grants per second
  RateCounter over_quota_;  // connections displaced or closed by the quotas
  RateCounter refused_;     // registrations refused
  RateCounter accept_failures_;
  AcceptBackoff backoff_;
  int accept_op_ = 0;
  int resume_op_ = 0;  // the timer that re-arms accept while it is paused
};

}  // namespace fikit::broker
