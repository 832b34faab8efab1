#include "sched/scheduler.h"

#include <fikit/util.h>
#include <linux/futex.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "base/log.h"

namespace fikit::broker {
namespace {

constexpr uint64_t kIdleSleepNs = 90'000'000;  // heartbeat every <= 100 ms
constexpr uint64_t kPendingSleepNs = 50'000;   // completions are polled, not rung
constexpr uint64_t kManyTenantsSleepNs = 200'000;
// Wake this long before the policy's predicted next event (quiet_until) and poll from there:
// the futex timeout's wake-up latency on a busy host is tens of microseconds.
constexpr uint64_t kQuietGuardNs = 100'000;
constexpr size_t kMaxWaitv = FUTEX_WAITV_MAX;  // 128: the tenants' doorbells + ctl_word_

// futex_waitv(2) (Linux 5.16): wait until one word differs from its value or `deadline_ns`.
int futex_waitv(struct futex_waitv* w, size_t n, uint64_t deadline_ns) {
  timespec ts{static_cast<time_t>(deadline_ns / 1'000'000'000),
              static_cast<long>(deadline_ns % 1'000'000'000)};
  long r = syscall(SYS_futex_waitv, w, static_cast<unsigned>(n), 0u, &ts, CLOCK_MONOTONIC);
  return r >= 0 ? 0 : -errno;
}

}  // namespace

Scheduler::Scheduler(const SchedulerConfig& cfg)
    : core_(cfg.policy, cfg.policy_cfg), spin_ns_(cfg.spin_ns), meter_(cfg.idle_meter) {
  core_.set_idle_meter(meter_);
}

Scheduler::~Scheduler() { stop(); }

Status Scheduler::start() {
  stop_.store(false);
  try {
    thread_ = std::thread([this] { loop(); });
  } catch (const std::system_error& e) {
    return Status::from_errno(e.code().value(), "start the scheduler thread");
  }
  thread_handle_ = thread_.native_handle();
  running_.store(true);
  return Status();
}

void Scheduler::stop() {
  if (!thread_.joinable()) return;
  stop_.store(true);
  wake();
  thread_.join();
  running_.store(false);
}

void Scheduler::post_add(std::shared_ptr<const TenantDesc> desc) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    handovers_.push_back(Handover{.add = std::move(desc), .id = 0});
    has_work_.store(true);
  }
  wake();
}

void Scheduler::post_remove(uint32_t id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    handovers_.push_back(Handover{.add = nullptr, .id = id});
    has_work_.store(true);
  }
  wake();
}

std::vector<TenantStatus> Scheduler::status() {
  if (!running_.load()) return core_.status();
  std::unique_lock<std::mutex> lock(mu_);
  uint64_t ticket = ++status_asked_;
  has_work_.store(true);
  lock.unlock();
  wake();
  lock.lock();
  status_cv_.wait_for(lock, std::chrono::seconds(1), [&] { return status_given_ >= ticket; });
  return status_;
}

std::vector<TenantStatus> Scheduler::take_departed() {
  std::vector<TenantStatus> core =
      running_.load() ? std::vector<TenantStatus>{} : core_.take_departed();
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<TenantStatus> out = std::exchange(departed_, {});
  out.insert(out.end(), core.begin(), core.end());
  return out;
}

double Scheduler::cpu_seconds() const {
  clockid_t clock;
  timespec ts;
  if (!running_.load() || pthread_getcpuclockid(thread_handle_, &clock) != 0 ||
      clock_gettime(clock, &ts) != 0)
    return 0;
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

uint32_t Scheduler::run_once(uint64_t now_ns) {
  if (has_work_.load(std::memory_order_acquire)) drain_handovers(now_ns);
  uint32_t events = core_.poll(now_ns);
  if (meter_) meter_->poll(now_ns);
  return events;
}

void Scheduler::drain_handovers(uint64_t now_ns) {
  std::vector<Handover> handovers;
  uint64_t asked;
  {
    std::lock_guard<std::mutex> lock(mu_);
    handovers.swap(handovers_);
    asked = status_asked_;
    has_work_.store(false);
  }
  for (Handover& h : handovers) {
    if (h.add) {
      if (meter_) meter_->add(h.add);
      core_.add(std::move(h.add), now_ns);
    } else {
      // The core first consumes the records left in the ring: the meter sees them too.
      core_.remove(h.id);
      if (meter_) meter_->remove(h.id);
    }
  }
  if (std::vector<TenantStatus> gone = core_.take_departed(); !gone.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    for (TenantStatus& t : gone)
      if (departed_.size() < SchedCore::kKeepDeparted) departed_.push_back(std::move(t));
  }
  if (asked == status_given_) return;
  std::vector<TenantStatus> s = core_.status();
  std::lock_guard<std::mutex> lock(mu_);
  status_.swap(s);
  status_given_ = asked;
  status_cv_.notify_all();
}

void Scheduler::wake() {
  // Seq_cst RMW after the caller queued its command: pairs with sleep(), which reads ctl_word_
  // before checking has_work_; either it sees the work or futex_waitv sees the new value.
  ctl_word_.fetch_add(1);
  futex_wake(&ctl_word_, 1);
}

void Scheduler::loop() {
  // Short sleeps (kPendingSleepNs) must not be stretched by the default 50 us timer slack.
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
  FIKIT_LOG_INFO("scheduler running (policy %s, spin %llu us)", core_.policy().name,
                 static_cast<unsigned long long>(spin_ns_ / 1000));
  uint64_t last_event = now_ns();
  while (!stop_.load(std::memory_order_relaxed)) {
    uint64_t now = now_ns();
    if (run_once(now) > 0) last_event = now;
    if (meter_ && meter_->active()) {
      cpu_relax();
      continue;
    }
    bool pending = core_.busy() && now - last_event < spin_ns_;
    // The policy predicts nothing it waits for before `quiet`: sleep until shortly before it
    // (doorbells still wake us), then spin around it as after an event.
    uint64_t quiet = core_.quiet_until_ns();
    if (core_.busy() && quiet > now + 2 * kQuietGuardNs) {
      sleep(now, quiet - kQuietGuardNs);
      // At the predicted event: poll around it as after an event (not when woken earlier).
      if (now_ns() + kQuietGuardNs >= quiet) last_event = now_ns();
      continue;
    }
    if (pending) {
      cpu_relax();
      continue;
    }
    sleep(now);
  }
}

// Sleep until a doorbell rings, the control thread wakes us, the policy's wake_at time, or a
// timeout (short while work is pending: completion words do not ring).
void Scheduler::sleep(uint64_t now_ns, uint64_t until_ns) {
  uint64_t timeout = core_.busy() ? kPendingSleepNs : kIdleSleepNs;
  if (until_ns > now_ns) timeout = std::min(kIdleSleepNs, until_ns - now_ns);
  if (uint64_t at = core_.wake_at_ns(); at != 0) {
    if (at <= now_ns) return;
    timeout = std::min(timeout, at - now_ns);
  }
  if (core_.active_count() >= kMaxWaitv) {
    timespec ts{0, static_cast<long>(std::min(timeout, kManyTenantsSleepNs))};
    nanosleep(&ts, nullptr);
    return;
  }
  struct futex_waitv w[kMaxWaitv];
  core_.set_sleeping(true);
  // Full fence between setting broker_sleeping and re-reading the rings: pairs with the client's
  // fence between publishing an entry and reading broker_sleeping. Either we see its entry or it
  // sees us asleep and rings the doorbell (whose value we read before the check).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  size_t n = core_.doorbells(w, kMaxWaitv - 1);
  w[n] = {ctl_word_.load(), reinterpret_cast<uintptr_t>(&ctl_word_), FUTEX_32, 0};
  if (!core_.rings_ready() && !has_work_.load() && !stop_.load()) {
    int err = futex_waitv(w, n + 1, now_ns + timeout);
    if (err < 0 && err != -ETIMEDOUT && err != -EAGAIN && err != -EINTR) {
      FIKIT_LOG_ERROR("failed to wait on tenant doorbells: %s; polling instead", strerror(-err));
      timespec ts{0, static_cast<long>(kManyTenantsSleepNs)};
      nanosleep(&ts, nullptr);
    }
  }
  core_.set_sleeping(false);
}

}  // namespace fikit::broker
