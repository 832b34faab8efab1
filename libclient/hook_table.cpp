#include "hook_table.h"

#include <dlfcn.h>
#include <fikit/util.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>

#include "log.h"

namespace fikit::client {
namespace {

struct RealName {
  const char* symbol;
  const char* alt_symbol;
};

constexpr RealName kRealNames[kHookIds] = {
#define FIKIT_HOOK(symbol, proc_name, since, variant) {#symbol, #symbol},
#include "hook_list.def"
#define FIKIT_DRIVER(symbol, alt_symbol) {#symbol, #alt_symbol},
#include "hook_list.def"
};

// Resolution state: kUnresolved -> kResolving (by g_resolver) -> kResolved.
enum : int { kUnresolved = 0, kResolving = 1, kResolved = 2 };
std::atomic<int> g_state{kUnresolved};
std::atomic<pid_t> g_resolver{0};
void* g_real[kHookIds];  // written before g_state becomes kResolved (release)

std::atomic<DlsymFn> g_real_dlsym{nullptr};
std::atomic<const DriverOps*> g_ops{nullptr};
DriverOps g_real_ops;

DlsymFn find_real_dlsym() noexcept {
  // RTLD_NEXT from here is the objects loaded after libfikit (libc when preloaded). Versioned
  // lookups never return our unversioned hook from those objects.
  void* p = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
  if (!p) p = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
  if (!p) {
    // libfikit was linked after libc: ask libc's own handle.
    void* libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    if (libc) {
      p = dlvsym(libc, "dlsym", "GLIBC_2.34");
      if (!p) p = dlvsym(libc, "dlsym", "GLIBC_2.2.5");
    }
  }
  return reinterpret_cast<DlsymFn>(p);
}

void* lookup(void* handle, const RealName& n) noexcept {
  void* p = real_dlsym(handle, n.symbol);
  if (!p && n.alt_symbol != n.symbol) p = real_dlsym(handle, n.alt_symbol);
  return p;
}

void fill_real_ops() noexcept {
  auto get = [](HookId id) { return g_real[static_cast<size_t>(id)]; };
  g_real_ops.func_get_name =
      reinterpret_cast<decltype(g_real_ops.func_get_name)>(get(HookId::k_cuFuncGetName));
  g_real_ops.kernel_get_name =
      reinterpret_cast<decltype(g_real_ops.kernel_get_name)>(get(HookId::k_cuKernelGetName));
  g_real_ops.stream_is_capturing = reinterpret_cast<decltype(g_real_ops.stream_is_capturing)>(
      get(HookId::k_cuStreamIsCapturing));
  g_real_ops.stream_write_value64 = reinterpret_cast<decltype(g_real_ops.stream_write_value64)>(
      get(HookId::k_cuStreamWriteValue64_v2));
  g_real_ops.mem_host_register =
      reinterpret_cast<decltype(g_real_ops.mem_host_register)>(get(HookId::k_cuMemHostRegister_v2));
  g_real_ops.mem_host_get_device_pointer =
      reinterpret_cast<decltype(g_real_ops.mem_host_get_device_pointer)>(
          get(HookId::k_cuMemHostGetDevicePointer_v2));
  g_real_ops.ctx_get_current =
      reinterpret_cast<decltype(g_real_ops.ctx_get_current)>(get(HookId::k_cuCtxGetCurrent));
  g_real_ops.pointer_get_attribute = reinterpret_cast<decltype(g_real_ops.pointer_get_attribute)>(
      get(HookId::k_cuPointerGetAttribute));
  g_real_ops.ctx_get_device =
      reinterpret_cast<decltype(g_real_ops.ctx_get_device)>(get(HookId::k_cuCtxGetDevice));
  g_real_ops.device_get_uuid =
      reinterpret_cast<decltype(g_real_ops.device_get_uuid)>(get(HookId::k_cuDeviceGetUuid_v2));
}

void resolve_all() noexcept {
  // The application has usually loaded libcuda already; then this only takes a reference.
  void* handle = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (!handle) {
    const char* err = dlerror();
    FIKIT_LOG_DEBUG("dlopen libcuda.so.1 failed (%s): looking up driver symbols with RTLD_NEXT",
                    err ? err : "unknown error");
    handle = RTLD_NEXT;
  }
  size_t missing = 0;
  for (size_t i = 0; i < kHookIds; i++) {
    g_real[i] = lookup(handle, kRealNames[i]);
    if (!g_real[i]) missing++;
  }
  fill_real_ops();
  FIKIT_LOG_DEBUG("resolved %zu of %zu driver symbols", kHookIds - missing, kHookIds);
}

}  // namespace

DlsymFn real_dlsym_fn() noexcept {
  DlsymFn f = g_real_dlsym.load(std::memory_order_acquire);
  if (!f) {
    f = find_real_dlsym();  // idempotent: racing callers find the same pointer
    if (f) g_real_dlsym.store(f, std::memory_order_release);
  }
  return f;
}

bool hook_table_resolve() noexcept {
  // Acquire pairs with the release store of kResolved below: g_real is filled.
  if (g_state.load(std::memory_order_acquire) == kResolved) return true;
  pid_t self = gettid();
  int expected = kUnresolved;
  if (g_state.compare_exchange_strong(expected, kResolving, std::memory_order_acq_rel)) {
    g_resolver.store(self, std::memory_order_relaxed);
    resolve_all();
    g_state.store(kResolved, std::memory_order_release);
    return true;
  }
  // libcuda's initialisers may call back into a hook while this thread resolves: do not wait on
  // ourselves.
  if (g_resolver.load(std::memory_order_relaxed) == self) return false;
  while (g_state.load(std::memory_order_acquire) != kResolved) sched_yield();
  return true;
}

void* real_symbol(HookId id) noexcept {
  if (g_state.load(std::memory_order_acquire) != kResolved && !hook_table_resolve()) return nullptr;
  return g_real[static_cast<size_t>(id)];
}

void* const* real_hook_pointers() noexcept {
  // The hook rows come first in HookId order.
  static_assert(static_cast<size_t>(HookId::k_cuGetProcAddress) == 0);
  if (g_state.load(std::memory_order_acquire) != kResolved && !hook_table_resolve()) return nullptr;
  return g_real;
}

const DriverOps& driver() noexcept {
  const DriverOps* ops = g_ops.load(std::memory_order_acquire);
  if (ops) return *ops;
  static const DriverOps kNone{};
  if (!hook_table_resolve()) return kNone;
  const DriverOps* expected = nullptr;
  g_ops.compare_exchange_strong(expected, &g_real_ops, std::memory_order_acq_rel);
  return *g_ops.load(std::memory_order_acquire);
}

void driver_override_for_test(const DriverOps* ops) noexcept {
  g_ops.store(ops, std::memory_order_release);
}

}  // namespace fikit::client
