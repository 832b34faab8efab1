#include "gpu_event.h"

#include <sys/wait.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "gpu_observer.h"

namespace fikit::bpf {
namespace {

struct Named {
  uint32_t code;
  const char* name;
};

// NVIDIA escapes: RM (nv_escape.h) and frontend (nv-ioctl-numbers.h, nv-ioctl-numa.h).
constexpr Named kNvCommands[] = {
    {0x27, "RM_ALLOC_MEMORY"},
    {0x28, "RM_ALLOC_OBJECT"},
    {0x29, "RM_FREE"},
    {0x2a, "RM_CONTROL"},
    {0x2b, "RM_ALLOC"},
    {0x34, "RM_DUP_OBJECT"},
    {0x35, "RM_SHARE"},
    {0x39, "RM_I2C_ACCESS"},
    {0x41, "RM_IDLE_CHANNELS"},
    {0x4a, "RM_VID_HEAP_CONTROL"},
    {0x4d, "RM_ACCESS_REGISTRY"},
    {0x4e, "RM_MAP_MEMORY"},
    {0x4f, "RM_UNMAP_MEMORY"},
    {0x52, "RM_GET_EVENT_DATA"},
    {0x54, "RM_ALLOC_CONTEXT_DMA2"},
    {0x56, "RM_ADD_VBLANK_CALLBACK"},
    {0x57, "RM_MAP_MEMORY_DMA"},
    {0x58, "RM_UNMAP_MEMORY_DMA"},
    {0x59, "RM_BIND_CONTEXT_DMA"},
    {0x5c, "RM_EXPORT_OBJECT_TO_FD"},
    {0x5d, "RM_IMPORT_OBJECT_FROM_FD"},
    {0x5e, "RM_UPDATE_DEVICE_MAPPING_INFO"},
    {0x5f, "RM_LOCKLESS_DIAGNOSTIC"},
    {200, "CARD_INFO"},
    {201, "REGISTER_FD"},
    {206, "ALLOC_OS_EVENT"},
    {207, "FREE_OS_EVENT"},
    {209, "STATUS_CODE"},
    {210, "CHECK_VERSION_STR"},
    {211, "IOCTL_XFER_CMD"},
    {212, "ATTACH_GPUS_TO_FD"},
    {213, "QUERY_DEVICE_INTR"},
    {214, "SYS_PARAMS"},
    {215, "NUMA_INFO"},
    {216, "SET_NUMA_STATUS"},
    {217, "EXPORT_TO_DMABUF_FD"},
    {218, "WAIT_OPEN_COMPLETE"},
};

// nvidia-uvm commands (uvm_ioctl.h, uvm_linux_ioctl.h).
constexpr Named kUvmCommands[] = {
    {FIKIT_UVM_INITIALIZE, "UVM_INITIALIZE"},
    {FIKIT_UVM_DEINITIALIZE, "UVM_DEINITIALIZE"},
    {23, "UVM_CREATE_RANGE_GROUP"},
    {24, "UVM_DESTROY_RANGE_GROUP"},
    {25, "UVM_REGISTER_GPU_VASPACE"},
    {26, "UVM_UNREGISTER_GPU_VASPACE"},
    {27, "UVM_REGISTER_CHANNEL"},
    {28, "UVM_UNREGISTER_CHANNEL"},
    {31, "UVM_SET_RANGE_GROUP"},
    {33, "UVM_MAP_EXTERNAL_ALLOCATION"},
    {34, "UVM_FREE"},
    {37, "UVM_REGISTER_GPU"},
    {38, "UVM_UNREGISTER_GPU"},
    {39, "UVM_PAGEABLE_MEM_ACCESS"},
    {42, "UVM_SET_PREFERRED_LOCATION"},
    {43, "UVM_UNSET_PREFERRED_LOCATION"},
    {44, "UVM_ENABLE_READ_DUPLICATION"},
    {45, "UVM_DISABLE_READ_DUPLICATION"},
    {46, "UVM_SET_ACCESSED_BY"},
    {47, "UVM_UNSET_ACCESSED_BY"},
    {51, "UVM_MIGRATE"},
    {65, "UVM_MAP_DYNAMIC_PARALLELISM_REGION"},
    {66, "UVM_UNMAP_EXTERNAL"},
    {68, "UVM_ALLOC_SEMAPHORE_POOL"},
    {72, "UVM_VALIDATE_VA_RANGE"},
    {73, "UVM_CREATE_EXTERNAL_RANGE"},
    {75, "UVM_MM_INITIALIZE"},
};

template <size_t N>
const char* find_name(const Named (&table)[N], uint32_t code) {
  for (const Named& n : table)
    if (n.code == code) return n.name;
  return nullptr;
}

// Map an RM event's object kind to the event kinds for its allocation and its free.
bool rm_event_kind(uint32_t obj_kind, bool alloc, GpuEventKind* out) {
  switch (obj_kind) {
    case FIKIT_OBJ_CLIENT:
      *out = alloc ? GpuEventKind::kGpuClient : GpuEventKind::kClientFree;
      return true;
    case FIKIT_OBJ_DEVICE:
    case FIKIT_OBJ_SUBDEVICE:
      *out = alloc ? GpuEventKind::kDeviceAlloc : GpuEventKind::kDeviceFree;
      return true;
    case FIKIT_OBJ_CONTEXT:
      *out = alloc ? GpuEventKind::kContextCreate : GpuEventKind::kContextDestroy;
      return true;
    case FIKIT_OBJ_CHANNEL:
      *out = alloc ? GpuEventKind::kChannelCreate : GpuEventKind::kChannelDestroy;
      return true;
    case FIKIT_OBJ_VIDMEM:
      *out = alloc ? GpuEventKind::kMemAlloc : GpuEventKind::kMemFree;
      return true;
  }
  return false;
}

bool event_kind_of(const fikit_gpu_event& raw, GpuEventKind* out) {
  switch (raw.kind) {
    case FIKIT_EV_RM_ALLOC:
      return rm_event_kind(raw.obj_kind, true, out);
    case FIKIT_EV_RM_FREE:
      return rm_event_kind(raw.obj_kind, false, out);
    case FIKIT_EV_UVM_MAP:
      *out = GpuEventKind::kMemMap;
      return true;
    case FIKIT_EV_UVM_FREE:
      *out = GpuEventKind::kMemUnmap;
      return true;
    case FIKIT_EV_STREAM_CREATE:
      *out = GpuEventKind::kStreamCreate;
      return true;
    case FIKIT_EV_STREAM_DESTROY:
      *out = GpuEventKind::kStreamDestroy;
      return true;
    case FIKIT_EV_EXIT:
      *out = GpuEventKind::kProcessExit;
      return true;
    case FIKIT_EV_GPU_BIND:
      *out = GpuEventKind::kGpuBind;
      return true;
  }
  return false;
}

}  // namespace

bool decode_event(const void* data, size_t size, GpuEvent* out) {
  if (size < sizeof(fikit_gpu_event)) return false;
  fikit_gpu_event raw;
  std::memcpy(&raw, data, sizeof(raw));
  GpuEvent e;
  if (!event_kind_of(raw, &e.kind)) return false;
  e.object =
      raw.obj_kind <= FIKIT_OBJ_VIDMEM ? static_cast<ObjectKind>(raw.obj_kind) : ObjectKind::kNone;
  e.pid = static_cast<pid_t>(raw.pid);
  e.tid = static_cast<pid_t>(raw.tid);
  e.ts_ns = raw.ts_ns;
  e.dur_ns = raw.dur_ns;
  e.rm_class = raw.rm_class;
  e.client = raw.client;
  e.parent = raw.parent;
  e.handle = raw.handle;
  e.addr = raw.addr;
  e.bytes = raw.bytes;
  e.exit_status = raw.exit_code;
  e.minor = raw.minor;
  static_assert(sizeof(e.comm) == sizeof(raw.comm));
  std::memcpy(e.comm, raw.comm, sizeof(e.comm));
  e.comm[sizeof(e.comm) - 1] = '\0';
  *out = e;
  return true;
}

const char* event_kind_name(GpuEventKind kind) {
  switch (kind) {
    case GpuEventKind::kGpuClient:
      return "gpu-client";
    case GpuEventKind::kClientFree:
      return "client-free";
    case GpuEventKind::kDeviceAlloc:
      return "device-alloc";
    case GpuEventKind::kDeviceFree:
      return "device-free";
    case GpuEventKind::kContextCreate:
      return "context-create";
    case GpuEventKind::kContextDestroy:
      return "context-destroy";
    case GpuEventKind::kChannelCreate:
      return "channel-create";
    case GpuEventKind::kChannelDestroy:
      return "channel-destroy";
    case GpuEventKind::kMemAlloc:
      return "mem-alloc";
    case GpuEventKind::kMemFree:
      return "mem-free";
    case GpuEventKind::kMemMap:
      return "mem-map";
    case GpuEventKind::kMemUnmap:
      return "mem-unmap";
    case GpuEventKind::kStreamCreate:
      return "stream-create";
    case GpuEventKind::kStreamDestroy:
      return "stream-destroy";
    case GpuEventKind::kProcessExit:
      return "process-exit";
    case GpuEventKind::kGpuBind:
      return "gpu-bind";
  }
  return "unknown";
}

std::string describe_event(const GpuEvent& e) {
  char buf[192];
  int n =
      std::snprintf(buf, sizeof(buf), "pid %d (%s): %s", e.pid, e.comm, event_kind_name(e.kind));
  const size_t len = n > 0 ? static_cast<size_t>(n) : 0;
  char* rest = buf + len;
  const size_t room = sizeof(buf) - len;
  switch (e.kind) {
    case GpuEventKind::kProcessExit:
      std::snprintf(rest, room, ", wait status 0x%x", e.exit_status);
      break;
    case GpuEventKind::kMemMap:
    case GpuEventKind::kMemUnmap:
      std::snprintf(rest, room, ", %" PRIu64 " bytes at 0x%" PRIx64, e.bytes, e.addr);
      break;
    case GpuEventKind::kStreamCreate:
    case GpuEventKind::kStreamDestroy:
      std::snprintf(rest, room, ", range group %" PRIu64, e.addr);
      break;
    case GpuEventKind::kGpuBind:
      std::snprintf(rest, room, ", handle 0x%x used through /dev/nvidia%u", e.handle, e.minor);
      break;
    default:
      if (e.bytes)
        std::snprintf(rest, room, ", class 0x%x handle 0x%x, %" PRIu64 " bytes", e.rm_class,
                      e.handle, e.bytes);
      else
        std::snprintf(rest, room, ", class 0x%x handle 0x%x", e.rm_class, e.handle);
  }
  return buf;
}

std::string command_name(uint32_t driver, uint32_t code) {
  const char* name = nullptr;
  if (driver == FIKIT_DRIVER_NVIDIA) name = find_name(kNvCommands, code);
  if (driver == FIKIT_DRIVER_UVM) name = find_name(kUvmCommands, code);
  if (name) return name;
  char buf[32];
  if (driver == FIKIT_DRIVER_NVIDIA)
    std::snprintf(buf, sizeof(buf), "nv 0x%x", code);
  else
    std::snprintf(buf, sizeof(buf), "uvm %u", code);
  return buf;
}

std::string exit_text(int status) {
  if (status < 0) return "exit status unknown: its exit event was lost";
  if (WIFSIGNALED(status)) return std::string("killed by ") + sigabbrev_np(WTERMSIG(status));
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  return "wait status " + std::to_string(status);
}

}  // namespace fikit::bpf
