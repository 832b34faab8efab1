// The broker's options for the eBPF GPU-driver observer (docs/BPF.md): loaded by default;
// --no-bpf, --audit-launches and --bpf-btf FILE; and the hidden, test-only --bpf-test-device
// MAJ:MIN|PATH (decode a test character device as the NVIDIA driver) and --bpf-test-audit
// LIB:FN[,FN...] (audit these functions of this library instead of libcuda's launch calls).
#pragma once

#include <fikit/result.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fikit::broker {

struct DeviceNumber {
  uint32_t major = 0;
  uint32_t minor = 0;
};

struct GpuOptions {
  bool enabled = true;                      // --no-bpf clears it
  bool audit_launches = false;              // --audit-launches
  bool run_stats = false;                   // --bpf-stats: BPF run-time statistics on
  std::string btf;                          // --bpf-btf: "" = the kernel's /sys/kernel/btf/vmlinux
  std::optional<DeviceNumber> test_device;  // --bpf-test-device
  std::vector<DeviceNumber> test_gpu_devices;  // --bpf-test-gpu-device D0[,D1]: /dev/nvidia0, 1
  std::string audit_library;                   // --bpf-test-audit: "" = each process's libcuda
  std::vector<std::string> audit_functions;    // "" = libcuda's launch entry points
};

// --bpf-test-device: "MAJ:MIN" or the path of a character device.
Status parse_test_device(const char* arg, GpuOptions* o);
// --bpf-test-gpu-device: "DEV[,DEV]", devices standing for /dev/nvidia0 and /dev/nvidia1.
Status parse_test_gpu_device(const char* arg, GpuOptions* o);
// --bpf-test-audit: "LIB:FN[,FN...]"; implies --audit-launches.
Status parse_test_audit(const char* arg, GpuOptions* o);
// The options together: --audit-launches needs the observer.
Status check_gpu_options(const GpuOptions& o);

}  // namespace fikit::broker
