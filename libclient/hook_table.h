// The real driver entry points behind the hooks, resolved once from libcuda.so.1, and the driver
// functions the client calls itself (DriverOps, replaceable by tests).
#pragma once

#include <cuda.h>

#include <cstddef>
#include <cstdint>

namespace fikit::client {

// One id per row of hook_list.def: the hooks first, then the driver functions.
enum class HookId : uint16_t {
#define FIKIT_HOOK(symbol, proc_name, since, variant) k_##symbol,
#include "hook_list.def"
#define FIKIT_DRIVER(symbol, alt_symbol) k_##symbol,
#include "hook_list.def"
  kCount,
};

inline constexpr size_t kHookIds = static_cast<size_t>(HookId::kCount);
inline constexpr size_t kHookRows = 0
#define FIKIT_HOOK(symbol, proc_name, since, variant) +1
#include "hook_list.def"
    ;

// Which default stream an entry point's stream 0 means.
enum class Variant : uint8_t { kAny, kLegacy, kPerThread };

struct HookRow {
  const char* symbol;     // exported name
  const char* proc_name;  // name passed to cuGetProcAddress
  int since;              // first cudaVersion that gets this symbol for proc_name
  Variant variant;
};

inline constexpr HookRow kHookTable[kHookRows] = {
#define FIKIT_HOOK(symbol, proc_name, since, variant) \
  {#symbol, #proc_name, since, Variant::k##variant},
#include "hook_list.def"
};

// libc's dlsym (found with dlvsym, so it never resolves to our own dlsym hook); nullptr if absent.
using DlsymFn = void* (*)(void* handle, const char* name);
DlsymFn real_dlsym_fn() noexcept;

// Call libc's dlsym. (Not for RTLD_NEXT: that must be a tail call from the caller's frame.)
inline void* real_dlsym(void* handle, const char* name) noexcept {
  DlsymFn f = real_dlsym_fn();
  return f ? f(handle, name) : nullptr;
}

// Resolve every row once (thread-safe; a re-entrant call from the resolving thread returns false).
// Return true once the table is resolved.
bool hook_table_resolve() noexcept;

// The real pointer for `id`, resolving the table first if needed; nullptr if libcuda lacks it.
void* real_symbol(HookId id) noexcept;

// The real pointers of the hook rows (kHookRows entries, in kHookTable order), resolving the table
// first; nullptr if it cannot be resolved now.
void* const* real_hook_pointers() noexcept;

template <class Fn>
inline Fn real_fn(HookId id) noexcept {
  return reinterpret_cast<Fn>(real_symbol(id));
}

// Driver functions the client calls on its own account. Members are nullptr when missing.
struct DriverOps {
  CUresult (*func_get_name)(const char** name, CUfunction f);
  CUresult (*kernel_get_name)(const char** name, CUkernel k);
  CUresult (*stream_is_capturing)(CUstream stream, CUstreamCaptureStatus* status);
  CUresult (*stream_write_value64)(CUstream stream, CUdeviceptr addr, cuuint64_t value,
                                   unsigned int flags);
  CUresult (*mem_host_register)(void* p, size_t bytes, unsigned int flags);
  CUresult (*mem_host_get_device_pointer)(CUdeviceptr* dptr, void* p, unsigned int flags);
  CUresult (*ctx_get_current)(CUcontext* ctx);
  CUresult (*pointer_get_attribute)(void* data, CUpointer_attribute attribute, CUdeviceptr ptr);
  // The device of the current context and its UUID (gpu_attrib.cpp); nullptr: launches are
  // attributed to no particular GPU (the broker's first).
  CUresult (*ctx_get_device)(CUdevice* dev);
  CUresult (*device_get_uuid)(CUuuid* uuid, CUdevice dev);
};

// The driver functions: from the real table, or the test override.
const DriverOps& driver() noexcept;

// Replace the driver functions (tests); nullptr restores the real ones.
void driver_override_for_test(const DriverOps* ops) noexcept;

}  // namespace fikit::client
