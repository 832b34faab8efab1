// A tenant's shared-memory segment: an anonymous memfd the broker creates, sizes, seals and maps,
// and hands to the tenant over the control socket (SCM_RIGHTS, fd_passing.h). The seals
// (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) make its size final: the tenant can write its ring
// but can neither truncate the segment under the broker's mapping (which would SIGBUS the broker)
// nor grow it, nor remove the seals. It has no name in /dev/shm, so nobody can pre-create,
// open or replace it, and it goes away with the last process that maps it. Mode 0600, owned by
// the tenant's uid when the broker is root; zero-filled and segment_init()ed before it is sent.
#pragma once

#include <fcntl.h>
#include <fikit/result.h>
#include <sys/types.h>

#include <memory>
#include <string>

#include "sched/tenant.h"

namespace fikit::broker {

struct ShmSpec {
  uint32_t tenant_id;
  pid_t pid;
  uid_t uid;  // chown to it when running as root
  uint32_t priority;
  std::string tenant_name;
  uint32_t gpu = 0;  // SegmentHeader::gpu
};

// A created segment: the broker's mapping (kept alive by `keep`) and the sealed memfd to send to
// the tenant. The caller closes `fd` once it is sent; the mapping does not need it.
struct ShmSegment {
  Segment* seg = nullptr;
  std::shared_ptr<void> keep;
  int fd = -1;
};
Result<ShmSegment> shm_create(const ShmSpec& spec);

// The seals every segment carries.
inline constexpr int kSegmentSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

}  // namespace fikit::broker
