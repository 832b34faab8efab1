// The fake driver traffic of fikit_bpf_test_child: parameter blocks laid out as the NVIDIA driver's
// (x86-64, driver 580) and the handles, sizes and counts of its "script" mode, shared with the
// tests that check what the observer made of it.
#pragma once

#include <cstdint>

namespace t {

struct Nvos64 {  // RM_ALLOC, 48 bytes
  uint32_t root, parent, handle, cls;
  uint64_t alloc_params, rights;
  uint32_t params_size, flags, status, pad;
};
struct Nvos21 {  // RM_ALLOC, older 32-byte form
  uint32_t root, parent, handle, cls;
  uint64_t alloc_params;
  uint32_t params_size, status;
};
struct Nvos00 {  // RM_FREE
  uint32_t root, parent, handle, status;
};
struct Nvos54 {  // RM_CONTROL
  uint32_t client, object, cmd, flags;
  uint64_t params;
  uint32_t params_size, status;
};
struct MemoryParams {  // NV_MEMORY_ALLOCATION_PARAMS: size at offset 64
  uint8_t head[64];
  uint64_t size;
  uint8_t tail[64];
};
struct UvmRangeGroup {
  uint64_t id;
  uint32_t status, pad;
};
struct UvmMap {  // UVM_MAP_EXTERNAL_ALLOCATION_PARAMS head; the driver's is ~1 KiB or more
  uint64_t base, length, offset;
  uint8_t rest[1024];
};
struct UvmFree {
  uint64_t base, length;
  uint32_t status, pad;
};
static_assert(sizeof(Nvos64) == 48 && sizeof(Nvos21) == 32 && sizeof(Nvos00) == 16);
struct MapMemory {  // nv_ioctl_nvos33_parameters_with_fd (RM_MAP_MEMORY), 56 bytes
  uint32_t client, device, memory, pad0;
  uint64_t offset, length, linear_address;
  uint32_t status, flags;
  int32_t fd;
  uint32_t pad1;
};
struct AllocOsEvent {  // nv_ioctl_alloc_os_event_t
  uint32_t client, device, fd, status;
};
static_assert(sizeof(Nvos54) == 32 && sizeof(UvmFree) == 24);
static_assert(sizeof(MapMemory) == 56 && sizeof(AllocOsEvent) == 16);

// The "gpus" script: one client with devices on two GPUs and one whose GPU is never shown.
inline constexpr uint32_t kGpuDevice[3] = {0xde000001, 0xde000002, 0xde000003};
inline constexpr uint32_t kGpuSubdevice[3] = {0xde000011, 0xde000012, 0xde000013};
inline constexpr uint32_t kGpuTsg[3] = {0xde000021, 0xde000022, 0xde000023};
inline constexpr uint32_t kGpuVidmem[3] = {0xde000031, 0xde000032, 0xde000033};
inline constexpr uint64_t kGpuVidmemBytes[3] = {2ull << 20, 4ull << 20, 8ull << 20};
inline constexpr uint32_t kClassOsEvent = 0x79;  // NV01_EVENT_OS_EVENT: not tracked

// Handles and classes of the script.
inline constexpr uint32_t kClient = 0xc1d00001;
inline constexpr uint32_t kDevice = 0xcaf00001;
inline constexpr uint32_t kSubdevice = 0xcaf00002;
inline constexpr uint32_t kVaspace = 0xcaf00003;
inline constexpr uint32_t kTsg = 0xcaf00010;
inline constexpr uint32_t kChannel1 = 0xcaf00011;
inline constexpr uint32_t kChannel2 = 0xcaf00012;
inline constexpr uint32_t kFailedTsg = 0xcaf00013;
inline constexpr uint32_t kTsg21 = 0xcaf00014;
inline constexpr uint32_t kVidmem1 = 0xcaf00020;
inline constexpr uint32_t kVidmem2 = 0xcaf00021;
inline constexpr uint32_t kClassVaspace = 0x90f1;       // FERMI_VASPACE_A: not tracked
inline constexpr uint32_t kClassGpfifoHopper = 0xc86f;  // HOPPER_CHANNEL_GPFIFO_A

inline constexpr uint64_t kVidmem1Bytes = 2ull << 20;
inline constexpr uint64_t kVidmem2Bytes = 4ull << 20;
inline constexpr uint64_t kMapBase1 = 0x7f0000200000ull;
inline constexpr uint64_t kMapBase2 = 0x7f0000600000ull;
inline constexpr uint64_t kMap1Bytes = 2ull << 20;
inline constexpr uint64_t kMap2Bytes = 1ull << 20;
inline constexpr uint64_t kStream1 = 7;
inline constexpr uint64_t kStream2 = 8;
inline constexpr int kControls = 5;
inline constexpr int kScriptExitCode = 3;

// Calls per command in the script: 11 RM_ALLOC (9 tracked objects, one failed, one untracked),
// 2 RM_FREE, kControls RM_CONTROL, and the UVM commands.
inline constexpr uint64_t kScriptRmAllocs = 11;
inline constexpr uint64_t kScriptRmFrees = 2;

}  // namespace t
