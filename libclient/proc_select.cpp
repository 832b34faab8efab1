#include "proc_select.h"

#include <cstring>

#include "hook_table.h"

namespace fikit::client {
namespace {

bool names_row(const HookRow& row, const char* symbol) noexcept {
  return !strcmp(row.proc_name, symbol) || !strcmp(row.symbol, symbol);
}

bool variant_fits(Variant v, uint64_t flags) noexcept {
  if (v == Variant::kAny) return true;
  bool per_thread = (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) != 0;
  return per_thread ? v == Variant::kPerThread : v == Variant::kLegacy;
}

}  // namespace

int select_hook_row(const char* symbol, const void* real, int version, uint64_t flags,
                    void* const* reals) noexcept {
  if (!symbol || !real || symbol[0] != 'c' || symbol[1] != 'u') return -1;
  bool known_name = false;
  for (size_t i = 0; i < kHookRows; i++) {
    if (!names_row(kHookTable[i], symbol)) continue;
    known_name = true;
    if (reals[i] == real) return static_cast<int>(i);
  }
  // A newer cudaVersion may select a variant this build has never heard of: hand it out untouched.
  if (!known_name || version > CUDA_VERSION) return -1;
  int best = -1;
  for (size_t i = 0; i < kHookRows; i++) {
    const HookRow& row = kHookTable[i];
    if (strcmp(row.proc_name, symbol) || !reals[i] || row.since > version) continue;
    if (!variant_fits(row.variant, flags)) continue;
    if (best < 0 || row.since > kHookTable[best].since) best = static_cast<int>(i);
  }
  return best;
}

int find_hook_row(const char* symbol) noexcept {
  if (!symbol || symbol[0] != 'c' || symbol[1] != 'u') return -1;
  for (size_t i = 0; i < kHookRows; i++)
    if (!strcmp(kHookTable[i].symbol, symbol)) return static_cast<int>(i);
  return -1;
}

}  // namespace fikit::client
