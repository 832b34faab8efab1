#include "gpu/gpu_options.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace fikit::broker {
namespace {

Status usage_error(const std::string& what) { return Status(StatusCode::kInvalidArgument, what); }

bool parse_u32(const std::string& s, uint32_t* out) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return false;
  errno = 0;
  unsigned long v = strtoul(s.c_str(), nullptr, 10);
  if (errno != 0 || v > 0xfffff) return false;  // the kernel's dev_t has 12+20 bits
  *out = static_cast<uint32_t>(v);
  return true;
}

}  // namespace

Status parse_test_device(const char* arg, GpuOptions* o) {
  std::string s = arg;
  size_t colon = s.find(':');
  DeviceNumber d;
  if (colon != std::string::npos && s[0] != '/') {
    if (!parse_u32(s.substr(0, colon), &d.major) || !parse_u32(s.substr(colon + 1), &d.minor))
      return usage_error("--bpf-test-device wants MAJOR:MINOR or a device path, not '" + s + "'");
  } else {
    struct stat st {};
    if (stat(arg, &st) != 0)
      return usage_error("--bpf-test-device: cannot stat " + s + ": " + strerror(errno));
    if (!S_ISCHR(st.st_mode))
      return usage_error("--bpf-test-device: " + s + " is no character device");
    d = DeviceNumber{major(st.st_rdev), minor(st.st_rdev)};
  }
  o->test_device = d;
  return Status();
}

Status parse_test_gpu_device(const char* arg, GpuOptions* o) {
  const std::string list = arg;
  o->test_gpu_devices.clear();
  for (size_t pos = 0; pos <= list.size();) {
    size_t comma = list.find(',', pos);
    if (comma == std::string::npos) comma = list.size();
    GpuOptions one;
    if (Status s = parse_test_device(list.substr(pos, comma - pos).c_str(), &one); !s.ok())
      return s;
    o->test_gpu_devices.push_back(*one.test_device);
    pos = comma + 1;
  }
  if (o->test_gpu_devices.size() > 2) return usage_error("--bpf-test-gpu-device: at most 2");
  return Status();
}

Status parse_test_audit(const char* arg, GpuOptions* o) {
  std::string s = arg;
  size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size())
    return usage_error("--bpf-test-audit wants LIBRARY:FUNCTION[,FUNCTION...], not '" + s + "'");
  o->audit_library = s.substr(0, colon);
  o->audit_functions.clear();
  std::string list = s.substr(colon + 1);
  for (size_t pos = 0; pos <= list.size();) {
    size_t comma = list.find(',', pos);
    if (comma == std::string::npos) comma = list.size();
    if (comma > pos) o->audit_functions.push_back(list.substr(pos, comma - pos));
    pos = comma + 1;
  }
  o->audit_launches = true;
  return Status();
}

Status check_gpu_options(const GpuOptions& o) {
  if (!o.enabled && o.audit_launches)
    return usage_error("--audit-launches needs the GPU-driver observer: drop --no-bpf");
  return Status();
}

}  // namespace fikit::broker
