// What the sim's CUDA handles point to, and the table of the handles a process has handed out.
// Handles are process-local objects; the GPU-side state they name (context, stream and event
// slots) lives in the shared state.
#pragma once

#include <cuda.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "sim/sim_shared.h"

namespace fikit::sim {

enum class KernelKind : uint32_t { kSpin, kBurn, kOther };
enum class HandleKind : uint8_t {
  kContext,
  kStream,
  kModule,
  kFunction,
  kEvent,
  kGraph,
  kGraphExec
};

// The handles a process has handed out, by address and kind, as a real driver keeps its objects in
// tables: a destroyed or garbage handle is refused without being dereferenced, and the handles an
// application never destroys stay reachable (leak checkers do not report them).
class HandleTable {
 public:
  void add(const void* h, HandleKind kind) {
    std::lock_guard<std::mutex> l(mu_);
    kinds_[h] = kind;
  }
  bool has(const void* h, HandleKind kind) const {
    std::lock_guard<std::mutex> l(mu_);
    auto it = kinds_.find(h);
    return it != kinds_.end() && it->second == kind;
  }
  void remove(const void* h) {
    std::lock_guard<std::mutex> l(mu_);
    kinds_.erase(h);
  }
  // The live handles of one kind.
  std::vector<const void*> list(HandleKind kind) const {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<const void*> out;
    for (auto [h, k] : kinds_)
      if (k == kind) out.push_back(h);
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::unordered_map<const void*, HandleKind> kinds_;
};

}  // namespace fikit::sim

namespace fikit::sim {
struct Device;
}

struct CUctx_st {
  static constexpr fikit::sim::HandleKind kKind = fikit::sim::HandleKind::kContext;
  fikit::sim::Device* dev = nullptr;  // the GPU it lives on (its shm holds the slot)
  int32_t slot = -1;
  CUstream_st* legacy = nullptr;      // the legacy default stream (NULL, CU_STREAM_LEGACY)
  CUstream_st* per_thread = nullptr;  // the per-thread default stream (one per context here)
};

// A captured graph: the ops its launch enqueues, in order.
struct CUgraph_st {
  static constexpr fikit::sim::HandleKind kKind = fikit::sim::HandleKind::kGraph;
  std::vector<fikit::sim::SimOp> ops;
};

struct CUstream_st {
  static constexpr fikit::sim::HandleKind kKind = fikit::sim::HandleKind::kStream;
  int32_t slot = -1;
  uint32_t id = 0;  // per-process stream id (trace files)
  CUctx_st* ctx = nullptr;
  std::unique_ptr<CUgraph_st> capture;  // while capturing: launches are recorded here, not run
};

struct CUfunc_st {
  static constexpr fikit::sim::HandleKind kKind = fikit::sim::HandleKind::kFunction;
  fikit::sim::KernelKind kind = fikit::sim::KernelKind::kOther;
  uint32_t name_index = 0;  // index in the process's kernel-name table
  std::string name;
};

struct CUmod_st {
  static constexpr fikit::sim::HandleKind kKind = fikit::sim::HandleKind::kModule;
  std::vector<std::unique_ptr<CUfunc_st>> funcs;  // guarded by Process::mu
};

struct CUevent_st {
  static constexpr fikit::sim::HandleKind kKind = fikit::sim::HandleKind::kEvent;
  fikit::sim::Device* dev = nullptr;  // the GPU of the context current at creation
  int32_t slot = -1;
  uint32_t serial = 0;
  unsigned flags = 0;
  uint64_t id() const { return static_cast<uint64_t>(slot) | (uint64_t{serial} << 32); }
};

struct CUgraphExec_st {
  static constexpr fikit::sim::HandleKind kKind = fikit::sim::HandleKind::kGraphExec;
  std::vector<fikit::sim::SimOp> ops;
};
