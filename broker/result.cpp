#include "result.h"

#include <cerrno>
#include <cstring>

namespace fikit::broker {

Status Status::from_errno(int err, const std::string& what) {
  StatusCode code = StatusCode::kInternal;
  switch (err) {
    case EINVAL:
    case ENAMETOOLONG:
      code = StatusCode::kInvalidArgument;
      break;
    case ENOENT:
      code = StatusCode::kNotFound;
      break;
    case EEXIST:
      code = StatusCode::kAlreadyExists;
      break;
    case EPERM:
    case EACCES:
      code = StatusCode::kPermissionDenied;
      break;
    case ECONNREFUSED:
    case EAGAIN:
      code = StatusCode::kUnavailable;
      break;
    default:
      break;
  }
  char buf[128];
  const char* text = strerror_r(err, buf, sizeof(buf));
  return Status(code, "failed to " + what + ": " + text);
}

}  // namespace fikit::broker
