#include "control/control.h"

#include <fikit/fd_passing.h>
#include <fikit/protocol.h>
#include <fikit/util.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstring>
#include <utility>

#include "base/log.h"
#include "control/access.h"
#include "control/shm_region.h"
#include "gpu/gpu_inventory.h"
#include "gpu/gpu_monitor.h"

namespace fikit::broker {
namespace {

constexpr size_t kMaxMessage = 512;                // every request is far smaller
constexpr uint64_t kTimerNs = 1'000'000'000;       // periodic housekeeping
constexpr uint64_t kSilentConnNs = 5'000'000'000;  // a connection must speak within this

// Return true if connection fd has a message (or its end) waiting to be read.
bool has_spoken(int fd) {
  char byte;
  return recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) >= 0;
}

int pidfd_open(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

double process_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace

Control::Control(const ControlConfig& cfg, Scheduler& sched) : cfg_(cfg), sched_(sched) {
  if (!cfg_.gpus) own_gpus_ = std::make_unique<GpuDomains>(nvidia_gpus());
  gpus_ = cfg_.gpus ? cfg_.gpus : own_gpus_.get();
}

Control::~Control() {
  for (auto& [fd, c] : conns_) {
    if (c.pidfd >= 0) close(c.pidfd);
    close(fd);
  }
  if (signal_fd_ >= 0) close(signal_fd_);
}

Status Control::init() {
  start_ns_ = now_ns();
  if (int err = loop_.init(256); err < 0) return Status::from_errno(-err, "set up io_uring");
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  signal_fd_ = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signal_fd_ < 0) return Status::from_errno(errno, "create signalfd");
  if (int err = loop_.add_poll(signal_fd_, [this](uint32_t) { on_signal(); }); err < 0)
    return Status::from_errno(-err, "watch signals");
  if (long limit = raise_fd_limit(); limit < 0)
    FIKIT_LOG_WARN("failed to raise the file-descriptor limit: %s",
                   strerror(static_cast<int>(-limit)));
  else
    FIKIT_LOG_DEBUG("file-descriptor limit %ld", limit);
  accept_op_ = loop_.add_accept(cfg_.listen_fd, [this](int fd) { on_accept(fd); });
  if (accept_op_ < 0) return Status::from_errno(-accept_op_, "accept on the control socket");
  if (int err = loop_.add_timer(kTimerNs, [this] { on_timer(); }); err < 0)
    return Status::from_errno(-err, "arm the housekeeping timer");
  return Status();
}

std::string Control::run() {
  if (int err = loop_.run(); err < 0)
    stop_reason_ = std::string("event loop failed: ") + strerror(-err);
  return stop_reason_;
}

void Control::on_accept(int fd) {
  if (fd < 0) return on_accept_error(-fd);
  backoff_.on_success();
  Conn c;
  c.fd = fd;
  c.opened_ns = now_ns();
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    FIKIT_LOG_WARN("failed to read peer credentials: %s", strerror(errno));
    close(fd);
    return;
  }
  c.peer = Peer{cred.pid, cred.uid};
  if (!make_room(fd, c.peer, c.opened_ns)) {
    close(fd);
    return;
  }
  c.recv_op = loop_.add_recv(fd, kMaxMessage, [this, fd](const char* msg, int n) {
    guarded(fd, "message", [&] { on_message(fd, msg, n); });
  });
  if (c.recv_op < 0) {
    FIKIT_LOG_WARN("failed to receive on a connection: %s", strerror(-c.recv_op));
    close(fd);
    return;
  }
  conns_.emplace(fd, std::move(c));
}

void Control::on_accept_error(int err) {
  if (err == EAGAIN || err == EINTR || err == ECONNABORTED || resume_op_ > 0) return;
  // Any other failure would come back at once: stop accepting for a while instead of spinning.
  uint64_t now = now_ns();
  uint64_t pause_ns = backoff_.on_failure();
  size_t shed = accept_error_is_exhaustion(err) ? shed_silent(now) : 0;
  if (uint64_t n = accept_failures_.count(now))
    FIKIT_LOG_WARN(
        "failed to accept a connection: %s; closed %zu silent connections, accepting "
        "again in %llu ms (%llu failures since the last line)",
        strerror(err), shed, static_cast<unsigned long long>(pause_ns / 1'000'000),
        static_cast<unsigned long long>(n));
  loop_.remove(accept_op_);
  accept_op_ = 0;
  resume_op_ = loop_.add_timer(pause_ns, [this] { resume_accepting(); });
  if (resume_op_ < 0) {
    FIKIT_LOG_ERROR("failed to arm the accept back-off timer: %s", strerror(-resume_op_));
    resume_op_ = 0;
    resume_accepting();
  }
}

void Control::resume_accepting() {
  loop_.remove(resume_op_);
  resume_op_ = 0;
  accept_op_ = loop_.add_accept(cfg_.listen_fd, [this](int fd) { on_accept(fd); });
  if (accept_op_ < 0) FIKIT_LOG_ERROR("failed to accept again: %s", strerror(-accept_op_));
}

size_t Control::shed_silent(uint64_t now) {
  std::vector<std::pair<uint64_t, int>> quiet;  // (opened, fd), silent for kQuietNs or more
  for (const auto& [fd, c] : conns_)
    if (c.kind == ConnKind::kNew && now - c.opened_ns >= kQuietNs)
      quiet.emplace_back(c.opened_ns, fd);
  std::sort(quiet.begin(), quiet.end());
  size_t n = quiet.empty() ? 0 : std::max<size_t>(1, quiet.size() / 4);
  for (size_t i = 0; i < n; i++) drop(quiet[i].second, "closed to free descriptors");
  return n;
}

bool Control::make_room(int fd, const Peer& peer, uint64_t now) {
  // A burst of clients that connect and speak at once is no flood: only connections with nothing
  // to read count (accept completions can come in a batch before their first messages).
  if (has_spoken(fd)) return true;
  size_t of_uid = 0, total = 0;
  const Conn* oldest_of_uid = nullptr;
  const Conn* oldest = nullptr;
  for (const auto& [_, c] : conns_) {
    if (c.kind != ConnKind::kNew || has_spoken(c.fd)) continue;
    total++;
    if (!oldest || c.opened_ns < oldest->opened_ns) oldest = &c;
    if (c.peer.uid != peer.uid) continue;
    of_uid++;
    if (!oldest_of_uid || c.opened_ns < oldest_of_uid->opened_ns) oldest_of_uid = &c;
  }
  const Conn* victim = nullptr;
  if (of_uid >= cfg_.quotas.silent_per_uid)
    victim = oldest_of_uid;
  else if (total >= cfg_.quotas.silent_total)
    victim = oldest;
  else
    return true;
  bool displace = victim && now - victim->opened_ns >= kQuietNs;
  if (uint64_t n = over_quota_.count(now))
    FIKIT_LOG_WARN(
        "connection quota reached (uid %u: %zu silent connections, all uids: %zu): %s "
        "(%llu such since the last line)",
        peer.uid, of_uid, total, displace ? "closed the oldest silent one" : "closed the new one",
        static_cast<unsigned long long>(n));
  if (displace) drop(victim->fd, "displaced by a newer connection (quota)");
  return displace;
}

void Control::on_message(int fd, const char* msg, int len) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  Conn& c = it->second;
  if (len <= 0) return drop(fd, len == 0 ? "connection closed" : strerror(-len));
  if (c.kind != ConnKind::kNew) {
    if (!c.warned) FIKIT_LOG_WARN("pid %d sent messages after registering: ignored", c.peer.pid);
    c.warned = true;
    return;
  }
  MsgHeader h{};
  memcpy(&h, msg, std::min(sizeof(h), static_cast<size_t>(len)));
  auto type = static_cast<MsgType>(h.type);
  Status s = static_cast<size_t>(len) > kMaxMessage
                 ? Status(StatusCode::kInvalidArgument, "message too long")
                 : check_header(msg, len);
  if (s.ok() && type == MsgType::kRegister) return on_register(c, msg, len);
  if (s.ok() && type == MsgType::kStatus) return on_status(c);
  if (s.ok() && type == MsgType::kStop) return on_stop(c);
  if (s.ok()) s = Status(StatusCode::kInvalidArgument, "unknown message type");
  FIKIT_LOG_WARN("bad request from pid %d (uid %u): %s", c.peer.pid, c.peer.uid,
                 s.message().c_str());
  if (type == MsgType::kStatus || type == MsgType::kStop) {
    send_text(c, type == MsgType::kStatus ? MsgType::kStatusReply : MsgType::kStopReply,
              status_errno(s), s.message());
  } else {
    RegisterReply reply = register_reply(s);
    send(fd, &reply, sizeof(reply), MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  drop(fd, nullptr);
}

void Control::on_register(Conn& c, const char* msg, int len) {
  int fd = c.fd;
  int pidfd = -1;
  size_t of_uid = 0, total = 0;
  for (const auto& [_, other] : conns_) {
    if (other.kind != ConnKind::kTenant) continue;
    total++;
    of_uid += other.peer.uid == c.peer.uid;
  }
  Status quota = check_tenant_quota(cfg_.quotas, c.peer.uid, of_uid, total);
  if (quota.ok()) pidfd = pidfd_open(c.peer.pid);
  Result<Admitted> r = !quota.ok() ? Result<Admitted>(quota)
                       : pidfd < 0 ? Result<Admitted>(Status::from_errno(
                                         errno, "watch process " + std::to_string(c.peer.pid)))
                                   : admit(msg, len, c.peer, next_tenant_id_++, *gpus_);
  RegisterReply reply = register_reply(r);
  if (!r.ok()) {
    if (uint64_t n = refused_.count(now_ns()))
      FIKIT_LOG_INFO("refused pid %d (uid %u): %s (%llu refusals since the last line)", c.peer.pid,
                     c.peer.uid, r.status().message().c_str(), static_cast<unsigned long long>(n));
    if (pidfd >= 0) close(pidfd);
    send(fd, &reply, sizeof(reply), MSG_NOSIGNAL | MSG_DONTWAIT);
    return drop(fd, nullptr);
  }
  c.kind = ConnKind::kTenant;
  c.tenant = r.value().desc;
  c.pidfd = pidfd;
  c.pidfd_op = loop_.add_poll(
      pidfd, [this, fd](uint32_t) { guarded(fd, "exit", [&] { drop(fd, "process exited"); }); });
  const TenantDesc& d = *c.tenant;
  FIKIT_LOG_INFO("tenant %u registered: pid %d, uid %u, \"%s\", priority %s, GPU %u", d.id, d.pid,
                 d.uid, d.name.c_str(), priority_name(d.priority), d.gpu);
  // Active before the client maps it (the scheduler has not seen the segment yet): its first
  // launches are queued for the scheduler rather than passed through.
  d.seg->broker.state.store(static_cast<uint32_t>(TenantState::kActive), std::memory_order_release);
  sched_.post_add(c.tenant);
  // Answer first: the client's first launch waits for this reply (FIKIT_BROKER_TIMEOUT_MS).
  // The segment's descriptor goes with the reply; the broker keeps only its mapping.
  const bool answered =
      c.pidfd_op >= 0 && fd__send(fd, &reply, sizeof(reply), r.value().segment_fd) >= 0;
  close(r.value().segment_fd);
  if (gpu_) gpu_->tenant_joined(d);
  if (!answered) drop(fd, "failed to answer its registration");
}

StatusInput Control::status_input(bool with_parts, bool take_departed) {
  StatusInput in;
  BrokerInfo& info = in.info;
  info.pid = getpid();
  info.uid = geteuid();
  info.socket = cfg_.socket_path;
  info.policy = sched_.policy().name;
  in.now_ns = now_ns();
  info.uptime_ns = in.now_ns - start_ns_;
  info.scheduler_cpu_s = sched_.cpu_seconds();
  info.process_cpu_s = process_cpu_seconds();
  info.spin_us = cfg_.spin_ns / 1000;
  info.unix_time =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  info.gpus = gpus_->list();
  if (take_departed) in.departed = sched_.take_departed();  // before: none is lost between
  in.tenants = sched_.status();
  in.rates = rates_.update(in.tenants, in.now_ns);
  if (with_parts) in.parts = status_parts_;
  in.max_len = kStatusMax - 1;
  return in;
}

void Control::on_status(Conn& c) {
  send_text(c, MsgType::kStatusReply, 0, status_for(status_json(status_input()), c.peer.uid));
  drop(c.fd, nullptr);
}

void Control::on_stop(Conn& c) {
  if (!is_admin(c.peer.uid)) {
    std::string why = "stop refused: " + not_admin_text(c.peer.uid);
    FIKIT_LOG_WARN("%s (pid %d)", why.c_str(), c.peer.pid);
    send_text(c, MsgType::kStopReply, -EPERM, why);
    return drop(c.fd, nullptr);
  }
  send_text(c, MsgType::kStopReply, 0, "");
  stop_reason_ = "stop requested by pid " + std::to_string(c.peer.pid) + " (uid " +
                 std::to_string(c.peer.uid) + ")";
  loop_.remove(c.recv_op);
  stop_waiters_.push_back(c.fd);
  conns_.erase(c.fd);
  loop_.stop();
}

void Control::on_signal() {
  signalfd_siginfo si;
  while (read(signal_fd_, &si, sizeof(si)) == sizeof(si)) {
    if (si.ssi_signo == SIGHUP) {
      int err = log_reopen();
      if (err < 0) FIKIT_LOG_ERROR("failed to reopen the log: %s", strerror(-err));
      FIKIT_LOG_INFO("log reopened (SIGHUP)");
      continue;
    }
    stop_reason_ = std::string("signal ") + sigabbrev_np(static_cast<int>(si.ssi_signo));
    loop_.stop();
  }
}

void Control::on_timer() {
  uint64_t now = now_ns();
  std::vector<int> silent;
  for (const auto& [fd, c] : conns_)
    if (c.kind == ConnKind::kNew && now - c.opened_ns > kSilentConnNs) silent.push_back(fd);
  for (int fd : silent) drop(fd, "sent nothing within 5 s");
}

bool Control::send_text(Conn& c, MsgType type, int status, const std::string& text) {
  size_t n = std::min(text.size(), static_cast<size_t>(kStatusMax - 1));
  size_t size = offsetof(TextReply, text) + n + 1;
  std::vector<char> buf(size, 0);
  TextReply* r = reinterpret_cast<TextReply*>(buf.data());
  r->hdr = msg_header(type, static_cast<uint32_t>(size));
  r->status = status;
  r->text_len = static_cast<uint32_t>(n);
  memcpy(buf.data() + offsetof(TextReply, text), text.data(), n);
  if (send(c.fd, buf.data(), size, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0) return true;
  FIKIT_LOG_WARN("failed to answer pid %d: %s", c.peer.pid, strerror(errno));
  return false;
}

void Control::drop(int fd, const char* why) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  Conn& c = it->second;
  if (c.kind == ConnKind::kTenant) {
    const TenantDesc& d = *c.tenant;
    FIKIT_LOG_INFO("tenant %u (pid %d, \"%s\") left: %s", d.id, d.pid, d.name.c_str(),
                   why ? why : "dropped");
    sched_.post_remove(d.id);
    if (gpu_) gpu_->tenant_left(d);
    loop_.remove(c.pidfd_op);
    close(c.pidfd);
  } else if (why) {
    FIKIT_LOG_DEBUG("connection of pid %d closed: %s", c.peer.pid, why);
  }
  loop_.remove(c.recv_op);
  close(fd);
  conns_.erase(it);
}

void Control::guarded(int fd, const char* what, const std::function<void()>& handler) {
  auto it = conns_.find(fd);
  pid_t pid = it == conns_.end() ? 0 : it->second.peer.pid;
  if (guard_.run(what, pid, handler)) return;
  if (guard_.run("drop", pid, [&] { drop(fd, "its handling failed"); })) return;
  // Dropping failed part way: forget the connection without its bookkeeping (nothing here throws).
  it = conns_.find(fd);
  if (it == conns_.end()) return;
  loop_.remove(it->second.recv_op);
  close(fd);
  conns_.erase(it);
}

void Control::reap_pid(pid_t pid, const char* why) {
  std::vector<int> fds;
  for (const auto& [fd, c] : conns_)
    if (c.kind == ConnKind::kTenant && c.tenant->pid == pid) fds.push_back(fd);
  for (int fd : fds) drop(fd, why);
}

void Control::close_tenants() {
  for (auto& [fd, c] : conns_) {
    if (c.kind == ConnKind::kTenant) {
      BrokerWords& w = c.tenant->seg->broker;
      w.state.store(static_cast<uint32_t>(TenantState::kClosed), std::memory_order_release);
      // Full fence: pairs with the client's fence before it sleeps on `granted`.
      std::atomic_thread_fence(std::memory_order_seq_cst);
      futex_wake(&w.granted, INT_MAX);
      close(c.pidfd);
    }
    close(fd);
  }
  conns_.clear();
}

}  // namespace fikit::broker
