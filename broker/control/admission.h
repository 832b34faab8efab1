// Admission of a tenant: validate its RegisterRequest completely, then create its segment. Every
// refusal carries a text for the client that says what is wrong and what to do.
#pragma once

#include <fikit/protocol.h>
#include <fikit/result.h>
#include <sys/types.h>

#include <memory>

#include "gpu/gpu_domains.h"
#include "sched/tenant.h"

namespace fikit::broker {

struct Peer {  // SO_PEERCRED of the connection
  pid_t pid = 0;
  uid_t uid = 0;
};

// Check the common header of any request (`len` bytes received). Return a refusal naming both ABI
// versions when the majors differ.
Status check_header(const char* msg, int len);

// An admitted tenant and its segment's descriptor, to send with the reply (the caller closes it).
struct Admitted {
  std::shared_ptr<TenantDesc> desc;
  int segment_fd = -1;
};

// Decode and validate a kRegister message of `len` bytes from `peer`: the request, or the
// refusal. Touches nothing but its arguments (fuzzed: tests/fuzz/).
Result<RegisterRequest> decode_register(const char* msg, int len, const Peer& peer);

// Validate a kRegister message from `peer` (decode_register), find its GPU's domain in `gpus`
// and create the tenant's segment as tenant `id`.
Result<Admitted> admit(const char* msg, int len, const Peer& peer, uint32_t id, GpuDomains& gpus);

// The reply to `admit`'s result.
RegisterReply register_reply(const Result<Admitted>& r);

// -errno for a refusal's code (for the replies' status fields).
int status_errno(const Status& s);

}  // namespace fikit::broker
