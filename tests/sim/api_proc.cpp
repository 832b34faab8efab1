// cuGetProcAddress: how the CUDA runtime (and the fikit client library) find driver entry points.
// Resolved from the export list itself rather than with dlsym, because an LD_PRELOADed library
// (libfikit.so) hooks dlsym and cuGetProcAddress and must get the sim's own functions here.
#include <cstring>
#include <string>

#include "sim/sim_process.h"

namespace {

struct Entry {
  const char* name;
  void* fn;
};

#define SIM_EXPORT(name) {#name, reinterpret_cast<void*>(&name)},
const Entry kEntries[] = {
#include "sim/exports.def"
};
#undef SIM_EXPORT

void* find(const std::string& name) {
  for (const Entry& e : kEntries)
    if (name == e.name) return e.fn;
  return nullptr;
}

// Resolve `symbol` as the driver does: the highest `<symbol>_vN` that exists, else `<symbol>`;
// then, if asked for per-thread default-stream semantics, its `_ptsz` or `_ptds` variant if one
// exists. The requested CUDA version is not consulted: the newest version is always returned.
void* resolve(const char* symbol, bool per_thread) {
  std::string base;
  for (int v = 9; v >= 2 && base.empty(); v--) {
    std::string versioned = std::string(symbol) + "_v" + std::to_string(v);
    if (find(versioned)) base = versioned;
  }
  if (base.empty()) base = symbol;
  if (per_thread) {
    if (void* f = find(base + "_ptsz")) return f;
    if (void* f = find(base + "_ptds")) return f;
  }
  return find(base);
}

CUresult get_proc(const char* symbol, void** pfn, cuuint64_t flags,
                  CUdriverProcAddressQueryResult* status) {
  if (!symbol || !pfn) return CUDA_ERROR_INVALID_VALUE;
  *pfn = resolve(symbol, flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
  if (status) *status = *pfn ? CU_GET_PROC_ADDRESS_SUCCESS : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  return *pfn ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

}  // namespace

CUresult CUDAAPI cuGetProcAddress_v2(const char* symbol, void** pfn, int, cuuint64_t flags,
                                     CUdriverProcAddressQueryResult* status) {
  return get_proc(symbol, pfn, flags, status);
}

CUresult CUDAAPI cuGetProcAddress(const char* symbol, void** pfn, int, cuuint64_t flags) {
  return get_proc(symbol, pfn, flags, nullptr);
}
