// UringLoop: a single-threaded io_uring event loop (liburing) with callbacks.
//
// Each operation is registered once and re-armed by the loop until remove(): multishot poll (any
// fd: pidfds, signalfd, later the BPF ring buffer), multishot accept, recv of one message at a
// time, and periodic timers. Callbacks run on the loop's thread and may add or remove operations,
// including their own. A removed operation's callback is never called again; its buffers live
// until the kernel has let go of them (the cancellation's completion).
#pragma once

#include <liburing.h>
#include <poll.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

namespace fikit::broker {

class UringLoop {
 public:
  using PollFn = std::function<void(uint32_t revents)>;  // revents, or -errno cast
  using AcceptFn = std::function<void(int fd)>;          // fd, or -errno
  // One received message: len bytes (len may exceed the buffer when the message was truncated);
  // 0: end of file; < 0: -errno. The operation ends after a call with len <= 0.
  using RecvFn = std::function<void(const char* data, int len)>;
  using TimerFn = std::function<void()>;

  UringLoop() = default;
  ~UringLoop();
  UringLoop(const UringLoop&) = delete;
  UringLoop& operator=(const UringLoop&) = delete;

  // Set up the ring. Return 0 or -errno.
  int init(unsigned entries = 256);

  // Call fn each time fd is ready for `events` (POLLIN by default). Return an id > 0 or -errno.
  int add_poll(int fd, PollFn fn, uint32_t events = POLLIN);
  // Call fn with each accepted connection (accept4 flag SOCK_CLOEXEC).
  int add_accept(int listen_fd, AcceptFn fn);
  // Call fn with each message received on fd (SOCK_SEQPACKET: one message per call).
  int add_recv(int fd, size_t max_len, RecvFn fn);
  int add_timer(uint64_t period_ns, TimerFn fn);
  // Stop operation `id`. Safe for unknown ids and from inside any callback.
  void remove(int id);

  // Run until stop(). Return 0 or -errno.
  int run();
  void stop() { stop_ = true; }

 private:
  enum class Kind { kPoll, kAccept, kRecv, kTimer };
  struct Op {
    Kind kind;
    int fd = -1;
    uint32_t events = 0;
    PollFn poll;
    AcceptFn accept;
    RecvFn recv;
    TimerFn timer;
    std::vector<char> buf;
    __kernel_timespec period{};
    bool multishot = true;   // poll and accept: cleared if the kernel lacks multishot
    bool pending = false;    // a request is in the kernel
    bool cancelled = false;  // remove() was called
  };

  int add(std::unique_ptr<Op> op);
  int arm(uint64_t id, Op& op);
  io_uring_sqe* sqe();
  void complete(const io_uring_cqe& cqe);
  // Return true if the operation should be re-armed after this completion.
  bool deliver(Op& op, int res);

  io_uring ring_{};
  bool ready_ = false;
  bool stop_ = false;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<Op>> ops_;
  std::vector<std::unique_ptr<Op>> graveyard_;  // removed during a callback: freed after it
};

}  // namespace fikit::broker
