#include "control/shm_region.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <new>

namespace fikit::broker {

Result<ShmSegment> shm_create(const ShmSpec& spec) {
  int fd = memfd_create("fikit-segment", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return Status::from_errno(errno, "create a segment (memfd_create)");
  auto fail = [fd](const std::string& what) {
    int err = errno;
    close(fd);
    return Status::from_errno(err, what);
  };
  if (ftruncate(fd, sizeof(Segment)) != 0) return fail("size a segment");
  if (fchmod(fd, 0600) != 0) return fail("set the mode of a segment");
  if (geteuid() == 0 && spec.uid != 0 && fchown(fd, spec.uid, static_cast<gid_t>(-1)) != 0)
    return fail("give a segment to uid " + std::to_string(spec.uid));
  // Sealed before the tenant can see it: from then on its size cannot change.
  if (fcntl(fd, F_ADD_SEALS, kSegmentSeals) != 0) return fail("seal a segment");
  void* p = mmap(nullptr, sizeof(Segment), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return fail("map a segment");
  // ftruncate zero-fills; the constructor calls make the atomics formally alive.
  Segment* seg = new (p) Segment();
  segment_init(seg, spec.tenant_id, spec.pid, spec.priority, spec.tenant_name.c_str());
  seg->hdr.gpu = spec.gpu;
  std::shared_ptr<void> keep(p, [](void* q) { munmap(q, sizeof(Segment)); });
  return ShmSegment{seg, std::move(keep), fd};
}

}  // namespace fikit::broker
