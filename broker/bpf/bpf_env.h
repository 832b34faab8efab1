// What the machine offers the BPF observer, found at run time: device numbers (/proc/devices,
// device nodes), BTF, tracefs (mounted when missing) and the libraries a process has mapped.
// Nothing here depends on one machine's paths.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "bpf_status.h"

namespace fikit::bpf {

struct DeviceId {
  uint32_t major = 0;
  uint32_t minor = 0;
};

// The kernel's internal dev_t encoding (MINORBITS = 20), as BPF programs read it from inodes.
constexpr uint32_t kernel_dev(DeviceId d) { return (d.major << 20) | (d.minor & 0xfffff); }

// Return the major of the character device registered as `name` in `proc_devices`, or 0 if it
// is absent (driver not loaded) or the file cannot be read.
uint32_t char_major(const std::string& name, const std::string& proc_devices = "/proc/devices");

// Return the device numbers of the character device node at `path`.
Result<DeviceId> char_device_of(const std::string& path);

// Check that CO-RE relocation has BTF: the kernel's /sys/kernel/btf/vmlinux, or `custom_path`
// if it is not empty.
Status check_btf(const std::string& custom_path);

// Make tracefs reachable where libbpf looks up tracepoint ids (/sys/kernel/debug/tracing or
// /sys/kernel/tracing), mounting it at /sys/kernel/tracing if neither has events/.
Status ensure_tracefs();

// Return a path to the first file mapped by process `pid` whose name contains `needle` (e.g.
// "libcuda.so"), reachable from this mount namespace (through /proc/<pid>/root).
Result<std::string> mapped_library(pid_t pid, const std::string& needle);

}  // namespace fikit::bpf
