#include "session.h"

#include <fcntl.h>
#include <fikit/fd_passing.h>
#include <fikit/protocol.h>
#include <fikit/util.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <new>

#include "gpu_attrib.h"

namespace fikit::client {
namespace {

constexpr uint64_t kMinReplyTimeoutMs = 100;

int connect_socket(const char* path, LogLevel fail_level) noexcept {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof(addr.sun_path)) {
    log_print(fail_level, "broker socket path too long: %s", path);
    return -1;
  }
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    log_print(fail_level, "failed to create the broker socket: %s", strerror(errno));
    return -1;
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
    log_print(fail_level,
              "failed to connect to the broker at %s: %s (is fikit-broker running? set "
              "FIKIT_SOCKET to its socket); launches run unmanaged",
              path, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

// Send RegisterRequest and wait for the reply. Return true with `reply` filled and checked and
// the segment's descriptor (sent with the reply) in *seg_fd.
bool exchange_register(int fd, const Config& cfg, int gpu_slot, RegisterReply* reply, int* seg_fd,
                       LogLevel fail_level) noexcept {
  RegisterRequestBudget msg{};
  RegisterRequest& req = msg.req;
  req.hdr = msg_header(MsgType::kRegister, sizeof(msg));
  req.priority = cfg.priority;
  req.flags = 0;
  if (const CUuuid* uuid = gpu_slot_uuid(gpu_slot)) {
    req.flags |= kRegisterGpuUuid;
    memcpy(req.gpu_uuid, uuid->bytes, kGpuUuidLen);
  }
  memcpy(req.name, cfg.name, sizeof(req.name));
  req.name[kNameLen - 1] = '\0';
  static_assert(sizeof(msg.hp_budget) == sizeof(cfg.hp_budget));
  memcpy(msg.hp_budget, cfg.hp_budget, sizeof(msg.hp_budget));
  if (send(fd, &msg, sizeof(msg), MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof(msg))) {
    log_print(fail_level, "failed to send the registration to the broker: %s", strerror(errno));
    return false;
  }
  // The first launch waits for this: bound it like any other wait on the broker.
  uint64_t timeout_ms = config_broker_timeout_ns() / 1000000;
  if (timeout_ms < kMinReplyTimeoutMs) timeout_ms = kMinReplyTimeoutMs;
  pollfd p{fd, POLLIN, 0};
  int r;
  do r = poll(&p, 1, static_cast<int>(timeout_ms));
  while (r < 0 && errno == EINTR);
  if (r <= 0) {
    log_print(fail_level,
              "the broker did not answer the registration within %llu ms "
              "(FIKIT_BROKER_TIMEOUT_MS)",
              static_cast<unsigned long long>(timeout_ms));
    return false;
  }
  ssize_t n = fd__recv(fd, reply, sizeof(*reply), seg_fd);
  if (n <= 0) {
    log_print(fail_level, "failed to read the broker's registration reply: %s",
              n == 0 ? "connection closed" : strerror(static_cast<int>(-n)));
    return false;
  }
  const char* bad = msg_check(&reply->hdr, static_cast<uint32_t>(n));
  if (!bad && (reply->hdr.type != static_cast<uint32_t>(MsgType::kRegisterReply) ||
               n != static_cast<ssize_t>(sizeof(*reply))))
    bad = "unexpected reply type or size";
  if (bad) {
    log_print(fail_level, "bad registration reply from the broker: %s", bad);
    return false;
  }
  reply->error[kErrorLen - 1] = '\0';
  if (reply->status != 0) {
    log_print(fail_level, "the broker refused the registration: %s (%s)", reply->error,
              strerror(-reply->status));
    return false;
  }
  if (*seg_fd < 0) {
    log_print(fail_level, "the broker's registration reply carries no segment");
    return false;
  }
  return true;
}

// Map the tenant segment the broker sent (the descriptor is closed). Return nullptr (logged) on
// failure.
Segment* map_segment(int fd, size_t* size_out, LogLevel fail_level) noexcept {
  struct stat st;
  if (fstat(fd, &st) < 0 || static_cast<size_t>(st.st_size) < sizeof(Segment)) {
    log_print(fail_level, "the tenant segment is too small (%lld bytes, need %zu)",
              static_cast<long long>(st.st_size), sizeof(Segment));
    close(fd);
    return nullptr;
  }
  size_t size = static_cast<size_t>(st.st_size);
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) {
    log_print(fail_level, "failed to map the tenant segment: %s", strerror(errno));
    return nullptr;
  }
  auto* seg = static_cast<Segment*>(p);
  if (const char* bad = segment_check(seg, size)) {
    log_print(fail_level, "tenant segment rejected: %s (broker and client builds differ?)", bad);
    munmap(p, size);
    return nullptr;
  }
  *size_out = size;
  return seg;
}

}  // namespace

Session* session_create(Segment* seg, size_t map_size, int fd, uint16_t generation) noexcept {
  void* p =
      mmap(nullptr, sizeof(Session), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  auto* s = new (p) Session();  // zero-filled memory: every atomic starts at 0
  s->seg = seg;
  s->map_size = map_size;
  s->fd = fd;
  s->tenant_id = seg->hdr.tenant_id;
  s->priority = seg->hdr.priority;
  s->generation = generation;
  return s;
}

Session* session_connect(const Config& cfg, int gpu_slot, uint16_t generation,
                         LogLevel fail_level) noexcept {
  int fd = connect_socket(cfg.socket_path, fail_level);
  if (fd < 0) return nullptr;
  RegisterReply reply{};
  size_t size = 0;
  Segment* seg = nullptr;
  int seg_fd = -1;
  if (exchange_register(fd, cfg, gpu_slot, &reply, &seg_fd, fail_level))
    seg = map_segment(seg_fd, &size, fail_level);
  else if (seg_fd >= 0)
    close(seg_fd);
  if (!seg) {
    close(fd);
    return nullptr;
  }
  Session* s = session_create(seg, size, fd, generation);
  if (!s) {
    log_print(fail_level, "failed to allocate the client session: %s", strerror(errno));
    munmap(seg, size);
    close(fd);
    return nullptr;
  }
  s->gpu_slot = gpu_slot;
  reply.error[kErrorLen - 1] = '\0';
  if (s->priority != cfg.priority)
    FIKIT_LOG_WARN("the broker set priority %s (asked for %s)%s%s", priority_name(s->priority),
                   priority_name(cfg.priority), reply.error[0] ? ": " : "", reply.error);
  FIKIT_LOG_INFO("registered with the broker as tenant %u '%s' (priority %s) on its GPU %u",
                 s->tenant_id, cfg.name, priority_name(s->priority), seg->hdr.gpu);
  return s;
}

void session_mark_dead(Session* s) noexcept {
  if (!s || s->dead.exchange(true, std::memory_order_acq_rel)) return;
  // LP waiters sleep on granted with a timeout; waking them now makes them fail open at once.
  futex_wake(&s->seg->broker.granted, INT_MAX);
}

}  // namespace fikit::client
