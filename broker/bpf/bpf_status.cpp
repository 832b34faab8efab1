#include "bpf_status.h"

#include <cerrno>
#include <cstring>

namespace fikit::bpf {

Status errno_status(int err, const std::string& what) {
  if (err < 0) err = -err;
  StatusCode code = StatusCode::kInternal;
  switch (err) {
    case EINVAL:
    case E2BIG:
      code = StatusCode::kInvalidArgument;
      break;
    case ENOENT:
      code = StatusCode::kNotFound;
      break;
    case EPERM:
    case EACCES:
      code = StatusCode::kPermissionDenied;
      break;
    case ENOSYS:
    case EOPNOTSUPP:
    case ENODEV:
      code = StatusCode::kUnavailable;
      break;
    default:
      break;
  }
  return Status(code, "failed to " + what + ": " + std::strerror(err));
}

}  // namespace fikit::bpf
