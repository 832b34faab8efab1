// Entry-point lookup hooks. The CUDA runtime (static or shared) gets every driver function through
// cuGetProcAddress(_v2), itself found with dlsym: both hand out our hook where the driver would
// hand out a hooked function, so that no launch or sync escapes. Everything else, cuGetExportTable
// included, passes through untouched.
#include <cudaTypedefs.h>
#include <dlfcn.h>

#include "../hook_table.h"
#include "../log.h"
#include "../proc_select.h"
#include "hooks.h"

namespace fikit::client {
namespace {

void* const kHookAddresses[kHookRows] = {
#define FIKIT_HOOK(symbol, proc_name, since, variant) reinterpret_cast<void*>(&fikit_hook_##symbol),
#include "../hook_list.def"
};

// Return the hook to hand out instead of `real` (what the driver returned for `symbol`).
void* substitute(const char* symbol, void* real, int version, cuuint64_t flags) noexcept {
  void* const* reals = real_hook_pointers();
  if (!reals) return real;
  int row = select_hook_row(symbol, real, version, flags, reals);
  if (row < 0) return real;
  FIKIT_LOG_DEBUG("cuGetProcAddress(%s, %d, %#llx): %s hook of %s", symbol, version,
                  static_cast<unsigned long long>(flags),
                  reals[row] == real ? "exact" : "flag-selected", kHookTable[row].symbol);
  return kHookAddresses[row];
}

}  // namespace
}  // namespace fikit::client

void* fikit_hook_dlsym(void* handle, const char* name) noexcept {
  fikit::client::DlsymFn real = fikit::client::real_dlsym_fn();
  if (!real) return nullptr;
  // RTLD_NEXT depends on the caller's address: this must stay a tail call so that libc's dlsym
  // sees our caller's return address, not ours (checked by client_procaddress_test).
  if (handle == RTLD_NEXT) return real(handle, name);
  void* p = real(handle, name);
  if (!p) return p;
  int row = fikit::client::find_hook_row(name);
  return row < 0 ? p : fikit::client::kHookAddresses[row];
}

CUresult fikit_hook_cuGetProcAddress(const char* symbol, void** pfn, int cudaVersion,
                                     cuuint64_t flags) noexcept {
  using namespace fikit::client;
  auto real = real_fn<PFN_cuGetProcAddress_v11030>(HookId::k_cuGetProcAddress);
  if (!real) return CUDA_ERROR_NOT_FOUND;
  CUresult r = real(symbol, pfn, cudaVersion, flags);
  if (r == CUDA_SUCCESS && pfn && *pfn) *pfn = substitute(symbol, *pfn, cudaVersion, flags);
  return r;
}

CUresult fikit_hook_cuGetProcAddress_v2(const char* symbol, void** pfn, int cudaVersion,
                                        cuuint64_t flags,
                                        CUdriverProcAddressQueryResult* symbolStatus) noexcept {
  using namespace fikit::client;
  auto real = real_fn<PFN_cuGetProcAddress_v12000>(HookId::k_cuGetProcAddress_v2);
  if (!real) return CUDA_ERROR_NOT_FOUND;
  CUresult r = real(symbol, pfn, cudaVersion, flags, symbolStatus);
  if (r == CUDA_SUCCESS && pfn && *pfn) *pfn = substitute(symbol, *pfn, cudaVersion, flags);
  return r;
}
