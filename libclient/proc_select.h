// Which hook to hand out when the CUDA runtime asks the driver for an entry point.
//
// cuGetProcAddress(symbol, version, flags) returns one of several exported variants of an entry
// point (cuLaunchKernel or cuLaunchKernel_ptsz, cuCtxSynchronize or cuCtxSynchronize_v2, ...). The
// hook handed out must be the hook of exactly that variant, or the caller's arguments are read with
// the wrong signature. The driver's answer is compared with the real variant pointers; only if it
// matches none of them (a driver that hands out internal aliases) is the variant derived from
// version and flags, and then only for versions this build's cuda.h knows.
#pragma once

#include <cstdint>

namespace fikit::client {

// Return the hook row (index into kHookTable) to hand out instead of `real`, which the driver
// returned for `symbol` at (`version`, `flags`); -1 to hand out `real` unchanged. `reals` holds the
// real pointer of each hook row (nullptr where libcuda lacks it).
int select_hook_row(const char* symbol, const void* real, int version, uint64_t flags,
                    void* const* reals) noexcept;

// Return the hook row exported under `symbol`, or -1.
int find_hook_row(const char* symbol) noexcept;

}  // namespace fikit::client
