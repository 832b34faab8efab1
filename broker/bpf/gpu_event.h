// GPU driver events as the broker sees them: the ring-buffer records of gpu_observer.bpf.c decoded
// into what happened to a process (became a GPU client, created a context, mapped memory, ...),
// plus display names for driver commands and events.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace fikit::bpf {

enum class GpuEventKind : uint8_t {
  kGpuClient,       // RM client allocated: the process became a GPU client (cuInit)
  kClientFree,      // RM client freed: everything it owned goes with it
  kDeviceAlloc,     // device or subdevice object (kept for the parent chain)
  kDeviceFree,      //
  kContextCreate,   // channel group (TSG): a CUDA context creates several
  kContextDestroy,  //
  kChannelCreate,   // GPFIFO channel
  kChannelDestroy,  //
  kMemAlloc,        // device memory (vidmem) allocated: bytes
  kMemFree,         // device memory freed: bytes
  kMemMap,          // UVM external mapping (device or pinned host memory): addr, bytes
  kMemUnmap,        // UVM mapping freed: addr, bytes
  kStreamCreate,    // UVM range group, one per CUDA stream: addr = id
  kStreamDestroy,   //
  kProcessExit,     // the last thread of a process that used the driver exited
  kGpuBind,         // (client, handle) was used through /dev/nvidia<minor>: its device is that GPU
};

// `minor` values that are no GPU: nvidiactl, and calls that went to no /dev/nvidia* file.
inline constexpr uint32_t kMinorGpuMax = 253;
inline constexpr uint32_t kMinorCtl = 255;

// What a tracked RM object is (mirrors enum fikit_obj_kind).
enum class ObjectKind : uint8_t {
  kNone,
  kClient,
  kDevice,
  kSubdevice,
  kContext,
  kChannel,
  kVidmem
};

struct GpuEvent {
  GpuEventKind kind = GpuEventKind::kProcessExit;
  ObjectKind object = ObjectKind::kNone;  // RM events
  pid_t pid = 0;                          // process (tgid)
  pid_t tid = 0;
  uint64_t ts_ns = 0;   // CLOCK_MONOTONIC
  uint64_t dur_ns = 0;  // the ioctl's duration
  uint32_t rm_class = 0;
  uint32_t client = 0;  // RM client handle (hRoot)
  uint32_t parent = 0;
  uint32_t handle = 0;
  uint64_t addr = 0;  // UVM base address or range group id
  uint64_t bytes = 0;
  int exit_status = 0;  // wait status (WIFEXITED/WEXITSTATUS apply), kProcessExit
  // RM events: the minor of the /dev/nvidia* file of the call (kMinorCtl: nvidiactl); kGpuBind:
  // the GPU's minor. > kMinorGpuMax: no GPU.
  uint32_t minor = 0xffff;
  char comm[16] = {};
};

// Decode one ring-buffer record of `size` bytes into `out`. Return false if it is malformed
// (wrong size or unknown kind): the caller counts it and goes on.
bool decode_event(const void* data, size_t size, GpuEvent* out);

// "context-create", "mem-map", ...
const char* event_kind_name(GpuEventKind kind);

// One log line for an event: "pid 42 (python): device memory allocated, 2097152 bytes".
std::string describe_event(const GpuEvent& e);

// How a process ended, from its wait status: "exit code 3", "killed by KILL", or (status < 0)
// "exit status unknown: its exit event was lost".
std::string exit_text(int wait_status);

// Name of a driver command: "RM_ALLOC", "UVM_MAP_EXTERNAL_ALLOCATION", or "nv 0x2c" / "uvm 50"
// when unknown. `driver` is enum fikit_driver.
std::string command_name(uint32_t driver, uint32_t code);

}  // namespace fikit::bpf
