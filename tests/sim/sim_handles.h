// What the sim's CUDA handles point to. They are process-local objects; the GPU-side state they
// name (context, stream and event slots) lives in the shared state. Each starts with a magic word
// so that a garbage or destroyed handle is refused with CUDA_ERROR_INVALID_HANDLE (best effort).
#pragma once

#include <cuda.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sim/sim_shared.h"

namespace fikit::sim {
enum class KernelKind : uint32_t { kSpin, kBurn, kOther };
}  // namespace fikit::sim

struct CUctx_st {
  static constexpr uint32_t kMagic = 0x31585443;  // "CTX1"
  uint32_t magic = kMagic;
  int32_t slot = -1;
  CUstream_st* legacy = nullptr;      // the legacy default stream (NULL, CU_STREAM_LEGACY)
  CUstream_st* per_thread = nullptr;  // the per-thread default stream (one per context here)
};

struct CUstream_st {
  static constexpr uint32_t kMagic = 0x31525453;  // "STR1"
  uint32_t magic = kMagic;
  int32_t slot = -1;
  uint32_t id = 0;  // per-process stream id (trace files)
  CUctx_st* ctx = nullptr;
  CUgraph_st* capture = nullptr;  // while capturing: launches are recorded here, not run
};

struct CUfunc_st {
  static constexpr uint32_t kMagic = 0x31434e46;  // "FNC1"
  uint32_t magic = kMagic;
  fikit::sim::KernelKind kind = fikit::sim::KernelKind::kOther;
  uint32_t name_index = 0;  // index in the process's kernel-name table
  std::string name;
};

struct CUmod_st {
  static constexpr uint32_t kMagic = 0x31444f4d;  // "MOD1"
  uint32_t magic = kMagic;
  std::vector<std::unique_ptr<CUfunc_st>> funcs;  // guarded by Process::mu
};

struct CUevent_st {
  static constexpr uint32_t kMagic = 0x31545645;  // "EVT1"
  uint32_t magic = kMagic;
  int32_t slot = -1;
  uint32_t serial = 0;
  unsigned flags = 0;
  uint64_t id() const { return static_cast<uint64_t>(slot) | (uint64_t{serial} << 32); }
};

// A captured graph: the ops its launch enqueues, in order.
struct CUgraph_st {
  static constexpr uint32_t kMagic = 0x31485047;  // "GPH1"
  uint32_t magic = kMagic;
  std::vector<fikit::sim::SimOp> ops;
};

struct CUgraphExec_st {
  static constexpr uint32_t kMagic = 0x31584547;  // "GEX1"
  uint32_t magic = kMagic;
  std::vector<fikit::sim::SimOp> ops;
};

namespace fikit::sim {

// Return true if `h` looks like a live handle of its type. Small values are never handles
// (CU_STREAM_LEGACY and CU_STREAM_PER_THREAD are 1 and 2).
template <class T>
bool valid(const T* h) {
  return reinterpret_cast<uintptr_t>(h) >= 4096 && h->magic == T::kMagic;
}

// Invalidate and delete a handle.
template <class T>
void retire(T* h) {
  h->magic = 0;
  delete h;
}

}  // namespace fikit::sim
