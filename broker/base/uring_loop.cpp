#include "base/uring_loop.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "base/log.h"

namespace fikit::broker {
namespace {

constexpr uint64_t kCancelTag = 0;  // user_data of cancellations: their completions are ignored

}  // namespace

UringLoop::~UringLoop() {
  if (ready_) io_uring_queue_exit(&ring_);
}

int UringLoop::init(unsigned entries) {
  int err = io_uring_queue_init(entries, &ring_, 0);
  if (err < 0) return err;
  ready_ = true;
  return 0;
}

int UringLoop::add_poll(int fd, PollFn fn, uint32_t events) {
  auto op = std::make_unique<Op>();
  op->kind = Kind::kPoll;
  op->fd = fd;
  op->events = events;
  op->poll = std::move(fn);
  return add(std::move(op));
}

int UringLoop::add_accept(int listen_fd, AcceptFn fn) {
  auto op = std::make_unique<Op>();
  op->kind = Kind::kAccept;
  op->fd = listen_fd;
  op->accept = std::move(fn);
  return add(std::move(op));
}

int UringLoop::add_recv(int fd, size_t max_len, RecvFn fn) {
  auto op = std::make_unique<Op>();
  op->kind = Kind::kRecv;
  op->fd = fd;
  op->buf.resize(max_len);
  op->recv = std::move(fn);
  return add(std::move(op));
}

int UringLoop::add_timer(uint64_t period_ns, TimerFn fn) {
  auto op = std::make_unique<Op>();
  op->kind = Kind::kTimer;
  op->period.tv_sec = static_cast<int64_t>(period_ns / 1'000'000'000);
  op->period.tv_nsec = static_cast<long long>(period_ns % 1'000'000'000);
  op->timer = std::move(fn);
  return add(std::move(op));
}

int UringLoop::add(std::unique_ptr<Op> op) {
  uint64_t id = next_id_++;
  int err = arm(id, *op);
  if (err < 0) return err;
  ops_.emplace(id, std::move(op));
  return static_cast<int>(id);
}

io_uring_sqe* UringLoop::sqe() {
  io_uring_sqe* s = io_uring_get_sqe(&ring_);
  if (!s) {
    // Submission queue full: hand what is queued to the kernel and try again.
    io_uring_submit(&ring_);
    s = io_uring_get_sqe(&ring_);
  }
  return s;
}

int UringLoop::arm(uint64_t id, Op& op) {
  io_uring_sqe* s = sqe();
  if (!s) return -EBUSY;
  switch (op.kind) {
    case Kind::kPoll:
      if (op.multishot)
        io_uring_prep_poll_multishot(s, op.fd, op.events);
      else
        io_uring_prep_poll_add(s, op.fd, op.events);
      break;
    case Kind::kAccept:
      if (op.multishot)
        io_uring_prep_multishot_accept(s, op.fd, nullptr, nullptr, SOCK_CLOEXEC);
      else
        io_uring_prep_accept(s, op.fd, nullptr, nullptr, SOCK_CLOEXEC);
      break;
    case Kind::kRecv:
      // MSG_TRUNC: the result is the message's real length, so a too long one is seen as such.
      io_uring_prep_recv(s, op.fd, op.buf.data(), op.buf.size(), MSG_TRUNC);
      break;
    case Kind::kTimer:
      io_uring_prep_timeout(s, &op.period, 0, 0);
      break;
  }
  io_uring_sqe_set_data64(s, id);
  op.pending = true;
  return 0;
}

void UringLoop::remove(int id) {
  auto it = ops_.find(static_cast<uint64_t>(id));
  if (it == ops_.end() || it->second->cancelled) return;
  Op& op = *it->second;
  op.cancelled = true;
  if (!op.pending) {
    graveyard_.push_back(std::move(it->second));
    ops_.erase(it);
    return;
  }
  // The operation ends with its own completion (-ECANCELED or a last result), freed then.
  if (io_uring_sqe* s = sqe()) {
    io_uring_prep_cancel64(s, static_cast<uint64_t>(id), 0);
    io_uring_sqe_set_data64(s, kCancelTag);
  }
}

int UringLoop::run() {
  stop_ = false;
  while (!stop_) {
    int err = io_uring_submit_and_wait(&ring_, 1);
    if (err < 0 && err != -EINTR) return err;
    io_uring_cqe* cqe;
    unsigned seen = 0;
    unsigned head;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      complete(*cqe);
      seen++;
    }
    io_uring_cq_advance(&ring_, seen);
  }
  return 0;
}

void UringLoop::complete(const io_uring_cqe& cqe) {
  uint64_t id = cqe.user_data;
  auto it = id == kCancelTag ? ops_.end() : ops_.find(id);
  if (it == ops_.end()) return;
  Op& op = *it->second;
  op.pending = (cqe.flags & IORING_CQE_F_MORE) != 0;
  bool rearm = !op.cancelled && deliver(op, cqe.res);
  // deliver() may have removed this very operation (now in the graveyard) or others.
  it = ops_.find(id);
  if (it != ops_.end() && !op.pending) {
    if (rearm && !op.cancelled) {
      if (int err = arm(id, op); err < 0) {
        FIKIT_LOG_ERROR("failed to re-arm an io_uring operation on fd %d: %s", op.fd,
                        strerror(-err));
        ops_.erase(it);
      }
    } else {
      ops_.erase(it);
    }
  }
  graveyard_.clear();
}

bool UringLoop::deliver(Op& op, int res) {
  if (res == -ECANCELED) return false;
  if (res == -EINVAL && op.multishot && (op.kind == Kind::kPoll || op.kind == Kind::kAccept)) {
    op.multishot = false;  // multishot poll (Linux 5.13) or accept (5.19) missing: re-arm each time
    return true;
  }
  switch (op.kind) {
    case Kind::kPoll:
      op.poll(static_cast<uint32_t>(res));
      return res >= 0;
    case Kind::kAccept:
      op.accept(res);
      return true;
    case Kind::kRecv:
      if (res == -EAGAIN || res == -EINTR) return true;  // nothing yet: wait again
      op.recv(op.buf.data(), res);
      return res > 0;
    case Kind::kTimer:
      op.timer();
      return true;
  }
  return false;
}

}  // namespace fikit::broker
