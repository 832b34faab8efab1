#include "bpf_env.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

namespace fikit::bpf {

uint32_t char_major(const std::string& name, const std::string& proc_devices) {
  std::ifstream in(proc_devices);
  std::string line;
  bool in_char_section = false;
  while (std::getline(in, line)) {
    if (line.empty() || line.back() == ':') {  // a section heading, or the gap before one
      in_char_section = line == "Character devices:";
      continue;
    }
    if (!in_char_section) continue;
    std::istringstream fields(line);
    uint32_t major = 0;
    std::string registered;
    if (fields >> major >> registered && registered == name) return major;
  }
  return 0;
}

Result<DeviceId> char_device_of(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return errno_status(errno, "stat device " + path);
  if (!S_ISCHR(st.st_mode))
    return Status(StatusCode::kInvalidArgument,
                  path + " is not a character device: pass a device node (mknod c)");
  return DeviceId{major(st.st_rdev), minor(st.st_rdev)};
}

Status check_btf(const std::string& custom_path) {
  const std::string path = custom_path.empty() ? "/sys/kernel/btf/vmlinux" : custom_path;
  if (access(path.c_str(), R_OK) == 0) return {};
  if (custom_path.empty())
    return Status(StatusCode::kUnavailable,
                  "kernel has no BTF (/sys/kernel/btf/vmlinux missing): the GPU observer needs a "
                  "kernel built with CONFIG_DEBUG_INFO_BTF=y");
  return errno_status(errno, "read BTF file " + path);
}

Status ensure_tracefs() {
  for (const char* dir : {"/sys/kernel/debug/tracing/events", "/sys/kernel/tracing/events"})
    if (access(dir, F_OK) == 0) return {};
  if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, nullptr) != 0)
    return errno_status(errno,
                        "mount tracefs on /sys/kernel/tracing (needed to attach syscall "
                        "tracepoints; run as root or mount it yourself)");
  return {};
}

Result<std::string> mapped_library(pid_t pid, const std::string& needle) {
  const std::string proc = "/proc/" + std::to_string(pid);
  std::ifstream maps(proc + "/maps");
  if (!maps) return errno_status(errno, "read " + proc + "/maps");
  std::string line;
  while (std::getline(maps, line)) {
    const size_t slash = line.find('/');
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(slash);
    const size_t base = path.rfind('/');
    if (path.find(needle, base) == std::string::npos) continue;
    if (path.size() > 10 && path.compare(path.size() - 10, 10, " (deleted)") == 0) continue;
    return proc + "/root" + path;
  }
  return Status(StatusCode::kNotFound,
                "process " + std::to_string(pid) + " has no " + needle + " mapped");
}

}  // namespace fikit::bpf
