#include "gpu_attrib.h"

#include <atomic>
#include <cstring>

#include "hook_table.h"

namespace fikit::client {
namespace {

constexpr int kContexts = 256;  // contexts remembered process-wide; more are asked each time

enum : uint32_t { kFree = 0, kWriting = 1, kReady = 2 };

struct GpuSlot {
  std::atomic<uint32_t> state{kFree};
  CUuuid uuid{};
};
struct CtxEntry {
  std::atomic<CUcontext> ctx{nullptr};  // stored last (release)
  int slot = -1;
};

GpuSlot g_gpus[kMaxClientGpus];
CtxEntry g_ctxs[kContexts];
std::atomic<int> g_ctx_count{0};
std::atomic<uint32_t> g_epoch{1};  // bumped by reset: thread caches from before are stale

thread_local CUcontext t_ctx = nullptr;
thread_local int t_slot = -1;
thread_local uint32_t t_epoch = 0;

// The slot of `uuid`, claiming the first free one for a GPU not seen yet; -1 when all are taken.
int slot_of_uuid(const CUuuid& uuid) noexcept {
  for (int i = 0; i < kMaxClientGpus; i++) {
    GpuSlot& g = g_gpus[i];
    uint32_t st = g.state.load(std::memory_order_acquire);
    if (st == kFree) {
      uint32_t expected = kFree;
      if (g.state.compare_exchange_strong(expected, kWriting, std::memory_order_acq_rel)) {
        g.uuid = uuid;
        g.state.store(kReady, std::memory_order_release);
        return i;
      }
      st = expected;
    }
    while (st == kWriting) st = g.state.load(std::memory_order_acquire);  // a few stores away
    if (memcmp(g.uuid.bytes, uuid.bytes, sizeof(uuid.bytes)) == 0) return i;
  }
  return -1;
}

// Ask the driver which GPU the current context is on.
int ask_driver() noexcept {
  const DriverOps& d = driver();
  CUdevice dev = 0;
  CUuuid uuid{};
  if (!d.ctx_get_device || !d.device_get_uuid || d.ctx_get_device(&dev) != CUDA_SUCCESS ||
      d.device_get_uuid(&uuid, dev) != CUDA_SUCCESS)
    return kUnknownGpu;
  return slot_of_uuid(uuid);
}

}  // namespace

int current_gpu_slot() noexcept {
  CUcontext ctx = nullptr;
  auto get_current = driver().ctx_get_current;
  if (!get_current || get_current(&ctx) != CUDA_SUCCESS || !ctx) return kUnknownGpu;
  uint32_t epoch = g_epoch.load(std::memory_order_relaxed);
  if (ctx == t_ctx && t_epoch == epoch) return t_slot;
  int slot = -2;
  int n = std::min(g_ctx_count.load(std::memory_order_acquire), kContexts);
  for (int i = 0; i < n; i++)
    if (g_ctxs[i].ctx.load(std::memory_order_acquire) == ctx) {
      slot = g_ctxs[i].slot;
      break;
    }
  if (slot == -2) {
    slot = ask_driver();
    if (int i = g_ctx_count.fetch_add(1, std::memory_order_acq_rel); i < kContexts) {
      g_ctxs[i].slot = slot;
      g_ctxs[i].ctx.store(ctx, std::memory_order_release);
    }
  }
  t_ctx = ctx;
  t_slot = slot;
  t_epoch = epoch;
  return slot;
}

const CUuuid* gpu_slot_uuid(int slot) noexcept {
  if (slot < 0 || slot >= kMaxClientGpus) return nullptr;
  const GpuSlot& g = g_gpus[slot];
  return g.state.load(std::memory_order_acquire) == kReady ? &g.uuid : nullptr;
}

void gpu_attrib_reset_for_test() noexcept {
  int n = std::min(g_ctx_count.exchange(0), kContexts);
  for (int i = 0; i < n; i++) g_ctxs[i].ctx.store(nullptr, std::memory_order_relaxed);
  for (GpuSlot& g : g_gpus) g.state.store(kFree, std::memory_order_relaxed);
  g_epoch.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace fikit::client
