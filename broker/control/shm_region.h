// A tenant's shared-memory segment, created by the broker with Boost.Interprocess
// (shared_memory_object + mapped_region): mode 0600, owned by the tenant's uid when the broker is
// root, zero-filled and segment_init()ed before the tenant learns its name.
#pragma once

#include <fikit/result.h>
#include <sys/types.h>

#include <memory>
#include <string>

#include "sched/tenant.h"

namespace fikit::broker {

struct ShmSpec {
  std::string name;  // shm_open name, "/fikit-<broker pid>-<tenant id>"
  uint32_t tenant_id;
  pid_t pid;
  uid_t uid;  // chown to it when running as root
  uint32_t priority;
  std::string tenant_name;
};

// Create, map and initialise a segment. The returned handle keeps the mapping (not the name).
struct ShmSegment {
  Segment* seg = nullptr;
  std::shared_ptr<void> keep;
};
Result<ShmSegment> shm_create(const ShmSpec& spec);
// Remove the name (existing mappings stay valid). Return 0 or -errno.
int shm_remove(const std::string& name);
// Remove the segments of brokers that died without cleaning up ("/fikit-<pid>-<id>" whose pid is
// gone). Return how many were removed.
int shm_remove_stale();

}  // namespace fikit::broker
