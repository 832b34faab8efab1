// fikit control protocol: fixed-size messages on the broker's AF_UNIX SOCK_SEQPACKET socket.
//
// A tenant connects, sends RegisterRequest and keeps the connection open for its lifetime: the
// broker learns pid and uid from SO_PEERCRED, creates the tenant's segment (a sealed memfd) and
// sends its descriptor with the RegisterReply (SCM_RIGHTS, fd_passing.h). Closing the connection
// (or dying) ends the tenancy. Tools send one request (status, stop)
// and read the reply.
#pragma once

#include <fikit/abi.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace fikit {

inline constexpr uint32_t kMsgMagic = 0x4b494631;  // "1FIK"
inline constexpr const char* kDefaultSocket = "/run/fikit/broker.sock";
inline constexpr uint32_t kErrorLen = 192;
inline constexpr uint32_t kStatusMax = 60000;  // status text, one message

enum class MsgType : uint32_t {
  kRegister = 1,
  kRegisterReply = 2,
  kStatus = 3,
  kStatusReply = 4,
  kStop = 5,
  kStopReply = 6,
};

struct MsgHeader {
  uint32_t magic;  // kMsgMagic
  uint16_t abi_major;
  uint16_t abi_minor;
  uint32_t type;  // MsgType
  uint32_t size;  // whole message, header included
};

// A tenant registers once per GPU it launches on (ABI 2.1): each registration is its own
// segment, ring and grants, scheduled in that GPU's domain. gpu_uuid is the 16 bytes of
// cuDeviceGetUuid; the broker maps it to its own index of the GPU (SegmentHeader::gpu) or refuses
// a GPU it does not manage. A 2.0 request (kRegisterRequestV0Size bytes, no UUID) is GPU 0.
inline constexpr uint32_t kRegisterGpuUuid = 1u << 0;  // gpu_uuid is set
inline constexpr uint32_t kRegisterFlagsKnown = kRegisterGpuUuid;
inline constexpr uint32_t kGpuUuidLen = 16;

struct RegisterRequest {
  MsgHeader hdr;
  uint32_t priority;  // 0 (highest) .. kPriorityLevels-1
  uint32_t flags;     // kRegister*; unknown bits are refused
  char name[kNameLen];
  uint8_t gpu_uuid[kGpuUuidLen];  // 2.1: the GPU of this registration (kRegisterGpuUuid)
};
inline constexpr uint32_t kRegisterRequestV0Size = 56;  // 2.0: without gpu_uuid

// ABI 2.1: a client may send RegisterRequest followed by the HP latency budget it asks for, as
// the text of FIKIT_HP_BUDGET ("p99=1.10"; empty: the broker's), which the broker parses and
// checks (refused if bad). A 2.0 client sends the kRegisterRequestV0Size bytes alone.
inline constexpr uint32_t kBudgetLen = 32;
struct RegisterRequestBudget {
  RegisterRequest req;
  char hp_budget[kBudgetLen];  // NUL-terminated
};

struct RegisterReply {
  MsgHeader hdr;
  int32_t status;  // 0, or -errno
  uint32_t tenant_id;
  uint64_t segment_size;  // bytes of the segment whose descriptor comes with the reply
  char error[kErrorLen];  // what failed and what to do, when status != 0
};

// kStatus and kStop carry only a header. Flags for StatusRequest could follow in minor versions.
struct SimpleRequest {
  MsgHeader hdr;
  uint32_t flags;
  uint32_t reserved;
};

// kStatusReply: the header, int32_t status, then status text (NUL-terminated) up to kStatusMax
// bytes. kStopReply: the same shape with an empty or error text.
struct TextReply {
  MsgHeader hdr;
  int32_t status;
  uint32_t text_len;  // bytes of text that follow, without the NUL
  char text[kStatusMax];
};

inline MsgHeader msg_header(MsgType type, uint32_t size) {
  return MsgHeader{kMsgMagic, kAbiMajor, kAbiMinor, static_cast<uint32_t>(type), size};
}

// Return nullptr if `h` (of a received message of `len` bytes) is a well-formed header of this ABI.
inline const char* msg_check(const MsgHeader* h, uint32_t len) {
  if (len < sizeof(MsgHeader)) return "message shorter than its header";
  if (h->magic != kMsgMagic) return "bad message magic (not a fikit client?)";
  if (h->abi_major != kAbiMajor) return "client speaks another ABI major version";
  if (h->size != len) return "message size field does not match its length";
  return nullptr;
}

// The reply type of a request type (kStatus -> kStatusReply, kStop -> kStopReply).
inline MsgType reply_type(MsgType request) {
  return static_cast<MsgType>(static_cast<uint32_t>(request) + 1);
}

// Send the header-only request `type` to the broker's control socket at `socket_path` and read
// its TextReply into `reply` (checked: magic, ABI major, type, size, text_len; text
// NUL-terminated), waiting at most timeout_ms for it. Return 0, or -errno: ENAMETOOLONG (path too
// long for a socket), ENOENT or ECONNREFUSED (no broker listens there), ETIMEDOUT (no answer),
// EPROTO (a malformed reply), or what socket, connect, send or recv failed with. With `keep_fd`
// the connection is left open there on success (`stop` waits for its end of file); else closed.
inline int ctl_request(const char* socket_path, MsgType type, TextReply* reply, int timeout_ms,
                       int* keep_fd = nullptr) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  size_t path_len = strlen(socket_path);
  if (path_len >= sizeof(addr.sun_path)) return -ENAMETOOLONG;
  memcpy(addr.sun_path, socket_path, path_len);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int err = 0;
  SimpleRequest req{msg_header(type, sizeof(SimpleRequest)), 0, 0};
  pollfd p{fd, POLLIN, 0};
  ssize_t n = -1;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
    err = errno;
  else if (send(fd, &req, sizeof(req), MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof(req)))
    err = errno ? errno : EPROTO;
  else if (int ready = poll(&p, 1, timeout_ms); ready != 1)
    err = ready == 0 ? ETIMEDOUT : errno;
  else if ((n = recv(fd, reply, sizeof(TextReply), 0)) < 0)
    err = errno;
  constexpr size_t kTextAt = offsetof(TextReply, text);
  if (err == 0) {
    auto len = static_cast<size_t>(n);
    if (len < kTextAt + 1 || reply->hdr.magic != kMsgMagic || reply->hdr.abi_major != kAbiMajor ||
        reply->hdr.type != static_cast<uint32_t>(reply_type(type)) || reply->hdr.size != len ||
        reply->text_len > len - kTextAt - 1)
      err = EPROTO;
    else
      reply->text[reply->text_len] = '\0';
  }
  if (err == 0 && keep_fd)
    *keep_fd = fd;
  else
    close(fd);
  return -err;
}

static_assert(sizeof(MsgHeader) == 16);
static_assert(sizeof(RegisterRequest) == kRegisterRequestV0Size + kGpuUuidLen);
static_assert(offsetof(RegisterRequest, gpu_uuid) == kRegisterRequestV0Size);
static_assert(sizeof(RegisterRequestBudget) == sizeof(RegisterRequest) + kBudgetLen);
static_assert(sizeof(RegisterReply) == 16 + 16 + kErrorLen);

}  // namespace fikit
