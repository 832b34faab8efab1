#include "control/shm_region.h"

#include <dirent.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <cerrno>
#include <cstdio>
#include <new>

namespace fikit::broker {
namespace bip = boost::interprocess;

namespace {

// The object and its mapping, kept alive together.
struct Mapping {
  bip::shared_memory_object shm;
  bip::mapped_region region;
};

}  // namespace

Result<ShmSegment> shm_create(const ShmSpec& spec) {
  auto m = std::make_shared<Mapping>();
  try {
    bip::permissions perm;
    perm.set_permissions(0600);
    m->shm = bip::shared_memory_object(bip::create_only, spec.name.c_str(), bip::read_write, perm);
    m->shm.truncate(static_cast<bip::offset_t>(sizeof(Segment)));
    if (geteuid() == 0 && spec.uid != 0 &&
        fchown(m->shm.get_mapping_handle().handle, spec.uid, static_cast<gid_t>(-1)) != 0) {
      int err = errno;
      bip::shared_memory_object::remove(spec.name.c_str());
      return Status::from_errno(
          err, "give segment " + spec.name + " to uid " + std::to_string(spec.uid));
    }
    m->region = bip::mapped_region(m->shm, bip::read_write, 0, sizeof(Segment));
  } catch (const bip::interprocess_exception& e) {
    bip::shared_memory_object::remove(spec.name.c_str());
    int err = e.get_native_error() ? e.get_native_error() : EIO;
    return Status::from_errno(err, "create segment " + spec.name + " (" + e.what() + ")");
  }
  // ftruncate zero-fills; the constructor calls make the atomics formally alive.
  Segment* seg = new (m->region.get_address()) Segment();
  segment_init(seg, spec.tenant_id, spec.pid, spec.priority, spec.tenant_name.c_str());
  return ShmSegment{seg, std::shared_ptr<void>(m, seg)};
}

int shm_remove(const std::string& name) {
  return bip::shared_memory_object::remove(name.c_str()) ? 0 : -ENOENT;
}

int shm_remove_stale() {
  DIR* dir = opendir("/dev/shm");
  if (!dir) return 0;
  int removed = 0;
  while (dirent* e = readdir(dir)) {
    int pid = 0;
    unsigned id = 0;
    char rest = 0;
    if (sscanf(e->d_name, "fikit-%d-%u%c", &pid, &id, &rest) != 2 || pid <= 0) continue;
    if (kill(pid, 0) == 0 || errno != ESRCH) continue;  // its broker lives (or is not ours)
    if (shm_unlink((std::string("/") + e->d_name).c_str()) == 0) removed++;
  }
  closedir(dir);
  return removed;
}

}  // namespace fikit::broker
