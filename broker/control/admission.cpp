#include "control/admission.h"

#include <fikit/tenant_name.h>
#include <fikit/util.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "base/kube_pod.h"
#include "control/access.h"
#include "control/shm_region.h"
#include "policy/budget.h"

namespace fikit::broker {
namespace {

std::string printf_string(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string printf_string(const char* fmt, ...) {
  char buf[kErrorLen];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  return buf;
}

// The process's command name, for tenants that did not name themselves. The kernel keeps any
// bytes of the program's file name there: make a valid tenant name of them.
std::string comm_of(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/comm");
  std::string comm;
  std::getline(f, comm);
  char name[kNameLen];
  tenant_name__sanitize(name, sizeof(name), comm.c_str());
  return name[0] ? name : "pid-" + std::to_string(pid);
}

// Return a refusal if the tenant name is not a NUL-terminated UTF-8 string without control
// characters (it goes into the log, the status JSON and profile files).
Status check_name(const char (&name)[kNameLen]) {
  size_t at = 0;
  const char* why = tenant_name__check(name, kNameLen, &at);
  if (!why) return Status();
  if (at >= kNameLen)
    return Status(StatusCode::kInvalidArgument,
                  printf_string("tenant name is not NUL-terminated within %u bytes: use a name "
                                "of at most %u bytes",
                                kNameLen, kNameLen - 1));
  return Status(StatusCode::kInvalidArgument,
                printf_string("tenant name %s (byte 0x%02x at offset %zu): use printable UTF-8 "
                              "(FIKIT_TENANT or fikit-run --name)",
                              why, static_cast<unsigned char>(name[at]), at));
}

Status check_request(const RegisterRequest& req, uint32_t len, const Peer& peer) {
  // 2.0 clients send the request without gpu_uuid (their launches are GPU 0's); 2.1 clients
  // with it, and maybe the HP budget after it.
  if (req.hdr.size != len || (len != sizeof(RegisterRequestBudget) &&
                              len != sizeof(RegisterRequest) && len != kRegisterRequestV0Size))
    return Status(StatusCode::kInvalidArgument,
                  printf_string("register request of %u bytes (size field %u), expected %zu: "
                                "client and broker builds disagree",
                                len, req.hdr.size, sizeof(RegisterRequestBudget)));
  if (req.priority >= kPriorityLevels)
    return Status(StatusCode::kInvalidArgument,
                  printf_string("priority %u out of range: use 0 (highest) to %u, or "
                                "FIKIT_PRIORITY=high|normal|low",
                                req.priority, kPriorityLevels - 1));
  if ((req.flags & ~kRegisterFlagsKnown) ||
      ((req.flags & kRegisterGpuUuid) && len < sizeof(RegisterRequest)))
    return Status(StatusCode::kInvalidArgument,
                  printf_string("unknown register flags 0x%x (broker ABI %u.%u knows 0x%x): "
                                "upgrade fikit-broker",
                                req.flags, kAbiMajor, kAbiMinor, kRegisterFlagsKnown));
  if (Status s = check_name(req.name); !s.ok()) return s;
  uid_t self = geteuid();
  if (self != 0 && peer.uid != self)
    return Status(StatusCode::kPermissionDenied,
                  printf_string("the broker runs as uid %u, not root, and cannot give its "
                                "segment to uid %u: start it as root (sudo fikit-broker start)",
                                self, peer.uid));
  return Status();
}

// The HP budget a 2.1 client asks for after its RegisterRequest (protocol.h), if any.
Status decode_budget(const char* msg, int len, uint32_t priority, TenantDesc* desc) {
  if (len < static_cast<int>(sizeof(RegisterRequestBudget))) return Status();
  RegisterRequestBudget r;
  memcpy(&r, msg, sizeof(r));
  if (!memchr(r.hp_budget, '\0', kBudgetLen))
    return Status(StatusCode::kInvalidArgument,
                  printf_string("FIKIT_HP_BUDGET is not NUL-terminated within %u bytes: write "
                                "p99=1.10 or p50=1.05,p99=1.10",
                                kBudgetLen));
  if (r.hp_budget[0] == '\0') return Status();
  std::string err;
  if (!hp_budget_parse(r.hp_budget, &desc->budget, &err))
    return Status(StatusCode::kInvalidArgument,
                  printf_string("FIKIT_HP_BUDGET '%.31s': %s", r.hp_budget, err.c_str()));
  if (priority != kPriorityHigh) {
    desc->note += std::string(desc->note.empty() ? "" : "; ") +
                  "FIKIT_HP_BUDGET is for high-priority tenants: ignored";
    return Status();
  }
  desc->has_budget = true;
  return Status();
}

}  // namespace

Status check_header(const char* msg, int len) {
  if (len < static_cast<int>(sizeof(MsgHeader)))
    return Status(StatusCode::kInvalidArgument, "message shorter than its header");
  MsgHeader h;
  memcpy(&h, msg, sizeof(h));
  if (h.magic != kMsgMagic)
    return Status(StatusCode::kInvalidArgument, "bad message magic: not a fikit client");
  if (h.abi_major != kAbiMajor)
    return Status(StatusCode::kFailedPrecondition,
                  printf_string("client speaks fikit ABI %u.%u, this broker ABI %u.%u: use "
                                "libfikit.so and fikit-broker from the same fikit release",
                                h.abi_major, h.abi_minor, kAbiMajor, kAbiMinor));
  return Status();
}

Result<RegisterRequest> decode_register(const char* msg, int len, const Peer& peer) {
  if (Status s = check_header(msg, len); !s.ok()) return s;
  RegisterRequest req{};
  memcpy(&req, msg, std::min(sizeof(req), static_cast<size_t>(len)));
  if (Status s = check_request(req, static_cast<uint32_t>(len), peer); !s.ok()) return s;
  return req;
}

Result<Admitted> admit(const char* msg, int len, const Peer& peer, uint32_t id, GpuDomains& gpus) {
  Result<RegisterRequest> decoded = decode_register(msg, len, peer);
  if (!decoded.ok()) return decoded.status();
  RegisterRequest req = *decoded;
  Result<uint32_t> gpu = gpus.index_of(req.flags & kRegisterGpuUuid ? req.gpu_uuid : nullptr);
  if (!gpu.ok()) return gpu.status();
  std::string note;
  Result<uint32_t> granted = grant_priority(peer.uid, req.priority, &note);
  if (!granted.ok()) return granted.status();
  req.priority = *granted;
  auto desc = std::make_shared<TenantDesc>();
  desc->note = note;
  desc->id = id;
  desc->pid = peer.pid;
  desc->uid = peer.uid;
  desc->priority = req.priority;
  desc->gpu = *gpu;
  desc->name = req.name[0] ? std::string(req.name) : comm_of(peer.pid);
  desc->admitted_ns = now_ns();
  desc->kube = kube_ref_of_pid(peer.pid);
  if (Status s = decode_budget(msg, len, req.priority, desc.get()); !s.ok()) return s;
  Result<ShmSegment> shm =
      shm_create(ShmSpec{id, peer.pid, peer.uid, req.priority, desc->name, desc->gpu});
  if (!shm.ok()) return shm.status();
  desc->seg = shm->seg;
  desc->keep = shm->keep;
  return Admitted{desc, shm->fd};
}

RegisterReply register_reply(const Result<Admitted>& r) {
  RegisterReply reply{};
  reply.hdr = msg_header(MsgType::kRegisterReply, sizeof(reply));
  if (r.ok()) {
    reply.tenant_id = r.value().desc->id;
    reply.segment_size = sizeof(Segment);
    // With status 0, the error text is a note the client prints (the granted priority is the
    // segment's).
    snprintf(reply.error, sizeof(reply.error), "%s", r.value().desc->note.c_str());
  } else {
    reply.status = status_errno(r.status());
    snprintf(reply.error, sizeof(reply.error), "%s", r.status().message().c_str());
  }
  return reply;
}

int status_errno(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return 0;
    case StatusCode::kInvalidArgument:
      return -EINVAL;
    case StatusCode::kNotFound:
      return -ESRCH;
    case StatusCode::kAlreadyExists:
      return -EALREADY;
    case StatusCode::kPermissionDenied:
      return -EPERM;
    case StatusCode::kFailedPrecondition:
      return -EPROTONOSUPPORT;
    case StatusCode::kUnavailable:
      return -EAGAIN;
    case StatusCode::kInternal:
      return -EIO;
  }
  return -EIO;
}

}  // namespace fikit::broker
